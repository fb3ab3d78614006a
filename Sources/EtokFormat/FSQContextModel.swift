/// The adaptive binary probabilities of the FSQ token coding `rc-fsq-2` (§6.3), all in one flat
/// array, reset every chunk.
///
/// Each context holds `p`, the probability of a 0 bit in units of 1/4096 (1 ... 4095, starts at
/// 2048), and a count `c` (0 ... 30, starts at 0). A bit is coded with the *mean* of the `p` of
/// several contexts (integer division); afterwards each of those contexts adapts on its own with
/// `shift = min(5, floor(log2(c + 2)))`: on a 0, `p += (4096 − p) >> shift`, on a 1,
/// `p −= p >> shift`; then `c = min(c + 1, 30)`. Early bits move `p` far (it averages like a count),
/// later ones like LZMA's shift-5 probabilities.
///
/// Context groups, with `D` dimensions, levels `L_d` (each 2 ... 16) and `B_d` tree bits per digit:
/// `eqA (d, m)`, `eqN (d, m, le, ue)`, `eqP (d, m, p)`, `one (d)`, `side (d)`, and per tree node
/// `npA (d, node)`, `npL (d, left, node)`, `npU (d, up, node)`, `npO (d, lower, node)`. A few
/// thousand contexts at most; cost per coded bit: 1 to 4 lookups and updates.
struct FSQContextModel {
    /// The FSQ levels `L_d`.
    let levels: [Int]
    /// Bits of the binary tree that codes a digit without a previous-block digit: the smallest `B`
    /// with `2^B ≥ L_d`.
    let treeBits: [Int]
    private var p: [UInt16]
    private var count: [UInt8]
    private let eqA: Int, eqN: Int, one: Int, side: Int
    private let eqP: [Int], npA: [Int], npL: [Int], npU: [Int], npO: [Int]

    /// Fresh contexts (every `p` 2048, every count 0) for `levels`, each 2 ... `FSQTokenCoder.maxLevel`
    /// (§4 limits).
    init(levels: [Int]) {
        self.levels = levels
        let dims = levels.count
        treeBits = levels.map { l in
            var b = 0
            while (1 << b) < l { b += 1 }
            return b
        }
        var n = 0
        func take(_ size: Int) -> Int {
            defer { n += size }
            return n
        }
        eqA = take(dims * 3)
        eqN = take(dims * 27)
        one = take(dims)
        side = take(dims)
        var eqP: [Int] = [], npA: [Int] = [], npL: [Int] = [], npU: [Int] = [], npO: [Int] = []
        for d in 0..<dims {
            let nodes = 1 << treeBits[d]
            eqP.append(take(3 * levels[d]))
            npA.append(take(nodes))
            npL.append(take((levels[d] + 1) * nodes))
            npU.append(take((levels[d] + 1) * nodes))
            npO.append(take((d > 0 ? levels[d - 1] : 1) * nodes))
        }
        (self.eqP, self.npA, self.npL, self.npU, self.npO) = (eqP, npA, npL, npU, npO)
        p = [UInt16](repeating: 2048, count: n)
        count = [UInt8](repeating: 0, count: n)
    }

    /// Context indices of the bit "digit differs from `prev`" (§6.3): `m` earlier digits of the token
    /// differed (capped at 2), `le`/`ue` whether digit `d` of the left/up token equalled its own
    /// previous-block digit (1), did not (0), or there is no such token (2).
    func equalContexts(d: Int, m: Int, le: Int, ue: Int, prev: Int) -> (Int, Int, Int) {
        (eqA + d * 3 + m, eqN + ((d * 3 + m) * 3 + le) * 3 + ue, eqP[d] + m * levels[d] + prev)
    }

    /// Context of the bit "not off by one" of dimension `d`.
    func oneContext(d: Int) -> Int { one + d }
    /// Context of the bit "above, not below" of dimension `d`.
    func sideContext(d: Int) -> Int { side + d }

    /// Context indices of tree node `node` (1 ..< 2^B_d) for a digit with no previous-block digit:
    /// `left`/`up` the same digit of the left/up token of this block (`L_d` if none), `lower` digit
    /// `d − 1` of this token (0 for `d = 0`).
    func treeContexts(d: Int, node: Int, left: Int, up: Int, lower: Int) -> (Int, Int, Int, Int) {
        let b = treeBits[d]
        return (npA[d] + node, npL[d] + (left << b) + node, npU[d] + (up << b) + node, npO[d] + (lower << b) + node)
    }

    /// The probability of a 0 for one context.
    func probability(_ i: Int) -> UInt32 { UInt32(p[i]) }

    /// Adapts context `i` to `bit` (§6.3).
    mutating func update(_ i: Int, bit: Int) {
        let c = count[i]
        let shift: UInt16 = c < 2 ? 1 : c < 6 ? 2 : c < 14 ? 3 : c < 30 ? 4 : 5  // min(5, log2(c + 2))
        if bit == 0 { p[i] += (4096 - p[i]) >> shift } else { p[i] -= p[i] >> shift }
        if c < 30 { count[i] = c + 1 }
    }
}

/// One side of the range coder as the FSQ token coding uses it: binary symbols with a 12-bit probability and
/// uniform symbols. The encoder codes the value it is given and returns it; the decoder ignores it
/// and returns what it reads. This lets one walk (`FSQTokenCoder.walk`) serve both directions.
protocol FSQSymbolCoder {
    /// Codes a bit whose probability of being 0 is `p0` / 4096 (1 ... 4095).
    mutating func bit(_ p0: UInt32, _ value: Int) -> Int
    /// Codes `value` in `0 ..< m` with every value equally likely (`m` ≤ 16).
    mutating func uniform(_ m: Int, _ value: Int) -> Int
}

extension RangeEncoder: FSQSymbolCoder {
    mutating func bit(_ p0: UInt32, _ value: Int) -> Int {
        if value == 0 { encode(cum: 0, freq: p0, total: 4096) } else { encode(cum: p0, freq: 4096 - p0, total: 4096) }
        return value
    }

    mutating func uniform(_ m: Int, _ value: Int) -> Int {
        encode(cum: UInt32(value), freq: 1, total: UInt32(m))
        return value
    }
}

extension RangeDecoder: FSQSymbolCoder {
    mutating func bit(_ p0: UInt32, _ value: Int) -> Int {
        if target(total: 4096) < p0 {
            consume(cum: 0, freq: p0, total: 4096)
            return 0
        }
        consume(cum: p0, freq: 4096 - p0, total: 4096)
        return 1
    }

    mutating func uniform(_ m: Int, _ value: Int) -> Int {
        let v = Int(target(total: UInt32(m)))
        consume(cum: UInt32(v), freq: 1, total: UInt32(m))
        return v
    }
}
