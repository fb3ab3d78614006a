/// The FSQ token coding `rc-fsq-2` for a whole chunk (§6.3), the only one: the digits of every kept
/// token of every block, in order, through one range coder (§6.1) and one fresh `FSQContextModel`.
///
/// A digit whose token position the previous block kept is coded as "equal to the previous
/// block's digit?" (mixing three contexts: how many earlier digits of the token differed, whether
/// the left and upper tokens' digits stayed, and the previous digit's value), then, if not, "off
/// by one?" and which side, or the value among the rest ("previous block": the chunk's last block
/// that coded tokens, repeat blocks skipped). A digit without one (the chunk's first
/// block, or a position the previous block did not keep) is coded as a binary tree whose nodes mix
/// four contexts: none, the left token's digit, the upper token's digit, and the token's lower digit.
/// On real streams this spends 6-10 % fewer bits than the per-(dimension, previous digit) frequency
/// tables of the draft coding `rc-fsq-1` it replaced (docs/etok-format.md §6.3, "Measured").
///
/// Levels are limited to 2 ... 16 (`maxLevel`): the tree and neighbour contexts grow with `L_d²`, and
/// no ElasticTok model uses more (the paper's FSQ levels are 5 to 8). The header limits of §4 refuse
/// larger levels, and so does the model loader, so no stream or model outside them exists.
///
/// Cost: per digit 1 to 3 binary decisions of up to 4 table lookups each. Measured 2-3 µs per token
/// (encode; decode is the same walk) in a release build on a loaded 2-core machine: under 1 ms per
/// 256-token frame, small next to the model's forward passes. Pure functions; `Sendable`.
public enum FSQTokenCoder {
    /// The largest FSQ level this coding codes (§4 limits).
    public static let maxLevel = 16

    /// Whether the coding can code tokens of these levels (every `L_d` in 2 ... `maxLevel`).
    public static func supports(levels: [Int]) -> Bool {
        !levels.isEmpty && levels.allSatisfy { (2...maxLevel).contains($0) }
    }

    /// `basis_d`: `basis_0 = 1`, `basis_{d+1} = basis_d · L_d` (§6.1: dimension 0 least significant).
    public static func basis(_ levels: [Int]) -> [Int] {
        var b: [Int] = []
        var acc = 1
        for l in levels {
            b.append(acc)
            acc *= l
        }
        return b
    }

    /// Why token data could not be decoded.
    public enum Failure: Error, Sendable, Equatable {
        /// The decoder needed bytes past the token data (block index where it was noticed).
        case overrun(block: Int)
        /// All tokens decoded but bytes were left over.
        case trailingBytes(Int)
    }

    /// The token data for `blocks` (each an array of kept FSQ indices in `0 ..< Π L_d`, which the
    /// writer checks) with `width` tokens per row of the token grid (§6.3 `W`). `repeats`: the header
    /// declares repeat blocks (§4 `repeat_blocks`), so an empty block is a repeat block, which codes
    /// nothing and is not a `prev` (§6.3: the next block's `prev` is the chunk's last coded block);
    /// otherwise an empty block is the model's empty block and the next block has no `prev`.
    /// Precondition: `supports(levels:)`.
    public static func encode(blocks: [[Int32]], levels: [Int], width: Int, repeats: Bool) -> [UInt8] {
        let basis = Self.basis(levels)
        var rc = RangeEncoder()
        var model = FSQContextModel(levels: levels)
        var prev: [Int] = []
        for tokens in blocks {
            if repeats && tokens.isEmpty { continue }
            var digits = [Int](repeating: 0, count: tokens.count * levels.count)
            for (t, token) in tokens.enumerated() {
                for d in 0..<levels.count { digits[t * levels.count + d] = (Int(token) / basis[d]) % levels[d] }
            }
            prev = walk(&rc, &model, count: tokens.count, given: digits, prev: prev, width: width)
        }
        return rc.finish()
    }

    /// Decodes `kept[k]` tokens per block from `data[start..<end]` (§6.3). Checks for overrun after
    /// each block (so a corrupt stream stops early) and that the data is used exactly (§6.1). The
    /// caller bounds `Σ kept` (`EtokFormat.maxTokensPerChunk`) and checks `supports(levels:)`.
    /// `repeats` as for `encode`.
    public static func decode(_ data: [UInt8], start: Int, end: Int, kept: [Int], levels: [Int],
                              width: Int, repeats: Bool) -> Result<[[Int32]], Failure> {
        let basis = Self.basis(levels)
        let dims = levels.count
        var rc = RangeDecoder(data, start: start, end: end)
        var model = FSQContextModel(levels: levels)
        var prev: [Int] = []
        var blocks: [[Int32]] = []
        blocks.reserveCapacity(kept.count)
        for (k, n) in kept.enumerated() {
            if repeats && n == 0 {
                blocks.append([])
                continue
            }
            prev = walk(&rc, &model, count: n, given: nil, prev: prev, width: width)
            if rc.overrun { return .failure(.overrun(block: k)) }
            var tokens = [Int32](repeating: 0, count: n)
            for t in 0..<n {
                var index = 0
                for d in 0..<dims { index += prev[t * dims + d] * basis[d] }
                tokens[t] = Int32(truncatingIfNeeded: index)
            }
            blocks.append(tokens)
        }
        if !rc.isExactlyAtEnd { return .failure(.trailingBytes(end - start - rc.consumed)) }
        return .success(blocks)
    }

    /// Codes one block of `count` tokens (§6.3) and returns its digits, token-major. The encoder
    /// passes the digits in `given`; the decoder passes nil and gets them back. `prev` holds the
    /// previous coded block's digits (empty for a chunk's first block).
    static func walk<C: FSQSymbolCoder>(_ coder: inout C, _ model: inout FSQContextModel, count n: Int,
                                     given: [Int]?, prev: [Int], width: Int) -> [Int] {
        let levels = model.levels
        let dims = levels.count
        var digits = [Int](repeating: 0, count: n * dims)
        // Per digit: 1 if it equalled its previous-block digit, 0 if not, 2 if it had none.
        var same = [UInt8](repeating: 2, count: n * dims)
        let prevCount = prev.count / max(dims, 1)
        for t in 0..<n {
            let at = t * dims
            if t < prevCount {
                var m = 0
                for d in 0..<dims {
                    let l = levels[d]
                    let p = prev[at + d]
                    let s = given?[at + d] ?? 0
                    let le = t > 0 ? Int(same[at - dims + d]) : 2
                    let ue = t >= width ? Int(same[at - width * dims + d]) : 2
                    let (a, b, c) = model.equalContexts(d: d, m: m, le: le, ue: ue, prev: p)
                    let p0 = (model.probability(a) + model.probability(b) + model.probability(c)) / 3
                    let differs = coder.bit(p0, s != p ? 1 : 0)
                    model.update(a, bit: differs)
                    model.update(b, bit: differs)
                    model.update(c, bit: differs)
                    if differs == 0 {
                        digits[at + d] = p
                        same[at + d] = 1
                        continue
                    }
                    same[at + d] = 0
                    m = min(m + 1, 2)
                    let below = p > 0, above = p < l - 1
                    let rest = l - 1 - (below ? 1 : 0) - (above ? 1 : 0)
                    var far = 0
                    if rest > 0 {
                        far = coder.bit(model.probability(model.oneContext(d: d)), abs(s - p) != 1 ? 1 : 0)
                        model.update(model.oneContext(d: d), bit: far)
                    }
                    if far == 0 {
                        if below && above {
                            let up = coder.bit(model.probability(model.sideContext(d: d)), s > p ? 1 : 0)
                            model.update(model.sideContext(d: d), bit: up)
                            digits[at + d] = up == 1 ? p + 1 : p - 1
                        } else {
                            digits[at + d] = below ? p - 1 : p + 1
                        }
                    } else {
                        // The values at distance 2 or more, ascending: 0 ... p−2, then p+2 ... L−1.
                        let lowCount = max(p - 1, 0)
                        let j = coder.uniform(rest, s < p ? s : s - p - 2 + lowCount)
                        digits[at + d] = j < lowCount ? j : j - lowCount + p + 2
                    }
                }
            } else {
                for d in 0..<dims {
                    let s = given?[at + d] ?? 0
                    let left = t > 0 ? digits[at - dims + d] : levels[d]
                    let up = t >= width ? digits[at - width * dims + d] : levels[d]
                    let lower = d > 0 ? digits[at + d - 1] : 0
                    let bits = model.treeBits[d]
                    var node = 1
                    var prefix = 0
                    for i in stride(from: bits - 1, through: 0, by: -1) {
                        var bit = 0
                        if ((2 * prefix + 1) << i) < levels[d] {
                            let (a, b, c, e) = model.treeContexts(d: d, node: node, left: left, up: up, lower: lower)
                            let sum = model.probability(a) + model.probability(b) + model.probability(c) + model.probability(e)
                            bit = coder.bit(sum / 4, (s >> i) & 1)
                            model.update(a, bit: bit)
                            model.update(b, bit: bit)
                            model.update(c, bit: bit)
                            model.update(e, bit: bit)
                        }
                        prefix = 2 * prefix + bit
                        node = 2 * node + bit
                    }
                    digits[at + d] = prefix
                }
            }
        }
        return digits
    }
}
