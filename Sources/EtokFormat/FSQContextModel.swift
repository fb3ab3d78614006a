/// The adaptive context model of `rc-fsq-1` (§6.1): one frequency table per `(d, prev)`, where `d` is
/// the FSQ dimension and `prev` the same digit of the token at the same position in the previous
/// block of the chunk (or `L_d`, "none"). `D × (L_d + 1)` tables of `L_d` symbols each.
///
/// Every table starts with every frequency `initialFrequency`; after coding symbol `s`,
/// `freq[s] += increment`, then if the total exceeds `limit` every frequency becomes `(freq + 1) >> 1`.
/// The total therefore stays at most `limit` when a symbol is coded, so `range / total >= 256`.
///
/// Owns all tables in one flat array. Cost per symbol: O(L_d) for the cumulative sum and the symbol
/// search (L_d is 5 to 8 in practice). A value type; reset (recreate) at the start of every chunk.
public struct FSQContextModel: Sendable {
    /// Frequency every symbol starts with (§6.1).
    public static let initialFrequency: UInt32 = 4
    /// Added to a symbol's frequency after it is coded (§6.1).
    public static let increment: UInt32 = 32
    /// Totals above this are halved (§6.1: 65536 − 32).
    public static let limit: UInt32 = 65536 - 32

    /// The FSQ levels `L_d`.
    public let levels: [Int]
    /// Offset of table `(d, 0)` in `freq`; table `(d, p)` starts at `tableBase[d] + p * L_d`.
    private let tableBase: [Int]
    private var freq: [UInt32]
    /// Total frequency per table, indexed like `tableIndex`.
    private var totals: [UInt32]
    /// Index of table `(d, 0)` in `totals`.
    private let totalBase: [Int]

    /// Fresh tables for `levels` (each 1 or more; the header validation bounds them, §4).
    public init(levels: [Int]) {
        self.levels = levels
        var base: [Int] = []
        var tBase: [Int] = []
        var n = 0
        var t = 0
        for l in levels {
            base.append(n)
            tBase.append(t)
            n += (l + 1) * l
            t += l + 1
        }
        tableBase = base
        totalBase = tBase
        freq = [UInt32](repeating: FSQContextModel.initialFrequency, count: n)
        totals = []
        totals.reserveCapacity(t)
        for l in levels {
            for _ in 0...l { totals.append(FSQContextModel.initialFrequency * UInt32(l)) }
        }
    }

    /// Codes `symbol` (0 ..< L_d) of dimension `d` in context `prev` (0 ... L_d) and adapts the table.
    public mutating func encode(_ symbol: Int, dimension d: Int, prev: Int, into rc: inout RangeEncoder) {
        let l = levels[d]
        let base = tableBase[d] + prev * l
        let ti = totalBase[d] + prev
        var cum: UInt32 = 0
        for k in 0..<symbol { cum += freq[base + k] }
        rc.encode(cum: cum, freq: freq[base + symbol], total: totals[ti])
        update(base: base, tableIndex: ti, length: l, symbol: symbol)
    }

    /// Decodes a symbol of dimension `d` in context `prev` and adapts the table (§6.1 `decode`).
    public mutating func decode(dimension d: Int, prev: Int, from rc: inout RangeDecoder) -> Int {
        let l = levels[d]
        let base = tableBase[d] + prev * l
        let ti = totalBase[d] + prev
        let total = totals[ti]
        let v = rc.target(total: total)
        var cum: UInt32 = 0
        var s = 0
        // v < total, so the loop stops at the last symbol at the latest.
        while s < l - 1, cum + freq[base + s] <= v {
            cum += freq[base + s]
            s += 1
        }
        rc.consume(cum: cum, freq: freq[base + s], total: total)
        update(base: base, tableIndex: ti, length: l, symbol: s)
        return s
    }

    private mutating func update(base: Int, tableIndex ti: Int, length l: Int, symbol s: Int) {
        freq[base + s] += FSQContextModel.increment
        totals[ti] += FSQContextModel.increment
        if totals[ti] > FSQContextModel.limit {
            var total: UInt32 = 0
            for k in base..<(base + l) {
                freq[k] = (freq[k] + 1) >> 1
                total += freq[k]
            }
            totals[ti] = total
        }
    }
}

/// Token coding `rc-fsq-1` for a whole chunk (§6.1): digits of every kept token of every block, in
/// order, through one range coder and one fresh `FSQContextModel`.
///
/// Cost: O(D · L) per token; measured about 0.5 µs per token (encode or decode) in a release build
/// on a shared, loaded 2-core machine: milliseconds per second of video, negligible next to the model.
/// Pure functions; `Sendable`.
public enum FSQTokenCoder {
    /// `basis_d`: `basis_0 = 1`, `basis_{d+1} = basis_d · L_d`.
    public static func basis(_ levels: [Int]) -> [Int] {
        var b: [Int] = []
        var acc = 1
        for l in levels {
            b.append(acc)
            acc *= l
        }
        return b
    }

    /// The token data for `blocks` (each an array of kept FSQ indices). Indices must be in
    /// `0 ..< Π L_d` (the writer checks this before calling).
    public static func encode(blocks: [[Int32]], levels: [Int]) -> [UInt8] {
        let basis = basis(levels)
        let dims = levels.count
        var model = FSQContextModel(levels: levels)
        var rc = RangeEncoder()
        var prevDigits: [Int] = []  // digits of the previous block, token-major
        for tokens in blocks {
            var digits = [Int](repeating: 0, count: tokens.count * dims)
            for (t, token) in tokens.enumerated() {
                let i = Int(token)
                for d in 0..<dims {
                    let digit = (i / basis[d]) % levels[d]
                    digits[t * dims + d] = digit
                    let prev = t * dims + d < prevDigits.count ? prevDigits[t * dims + d] : levels[d]
                    model.encode(digit, dimension: d, prev: prev, into: &rc)
                }
            }
            prevDigits = digits
        }
        return rc.finish()
    }

    /// Why token data could not be decoded.
    public enum Failure: Error, Sendable, Equatable {
        /// The decoder needed bytes past the token data (block index where it was noticed).
        case overrun(block: Int)
        /// All tokens decoded but bytes were left over.
        case trailingBytes(Int)
    }

    /// Decodes `kept[k]` tokens per block from `data[start..<end]`. Checks for overrun after each
    /// block (so a corrupt stream stops early) and that the data is used exactly. The caller bounds
    /// `Σ kept` (`EtokFormat.maxTokensPerChunk`).
    public static func decode(_ data: [UInt8], start: Int, end: Int, kept: [Int],
                              levels: [Int]) -> Result<[[Int32]], Failure> {
        let basis = basis(levels)
        let dims = levels.count
        var model = FSQContextModel(levels: levels)
        var rc = RangeDecoder(data, start: start, end: end)
        var blocks: [[Int32]] = []
        blocks.reserveCapacity(kept.count)
        var prevDigits: [Int] = []
        for (k, n) in kept.enumerated() {
            var tokens = [Int32](repeating: 0, count: n)
            var digits = [Int](repeating: 0, count: n * dims)
            for t in 0..<n {
                var index = 0
                for d in 0..<dims {
                    let prev = t * dims + d < prevDigits.count ? prevDigits[t * dims + d] : levels[d]
                    let digit = model.decode(dimension: d, prev: prev, from: &rc)
                    digits[t * dims + d] = digit
                    index += digit * basis[d]
                }
                tokens[t] = Int32(truncatingIfNeeded: index)
            }
            if rc.overrun { return .failure(.overrun(block: k)) }
            blocks.append(tokens)
            prevDigits = digits
        }
        if !rc.isExactlyAtEnd { return .failure(.trailingBytes(end - start - rc.consumed)) }
        return .success(blocks)
    }
}
