// Shared helpers for the EtokTensor tests: a seeded generator and comparison functions.
import XCTest

/// SplitMix64: small, seeded, reproducible.
struct SeededRandom {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [lo, hi).
    mutating func uniform(_ lo: Float, _ hi: Float) -> Float {
        lo + (hi - lo) * Float(next() >> 40) / Float(1 << 24)
    }

    mutating func floats(_ count: Int, _ lo: Float = -1, _ hi: Float = 1) -> [Float] {
        (0..<count).map { _ in uniform(lo, hi) }
    }

    mutating func int(_ range: Range<Int>) -> Int {
        range.lowerBound + Int(next() % UInt64(range.count))
    }
}

/// Asserts |a - b| <= abs + rel·|b| elementwise, reporting the worst index.
func assertClose(_ a: [Float], _ b: [Float], rel: Float, abs: Float = 0, _ what: String,
                 file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, "\(what): count", file: file, line: line)
    var worst = -1
    var worstExcess: Float = 0
    for i in 0..<min(a.count, b.count) {
        let err = Swift.abs(a[i] - b[i])
        let allowed = abs + rel * Swift.abs(b[i])
        if !(err <= allowed) && (worst < 0 || err - allowed > worstExcess) {
            worst = i
            worstExcess = err - allowed
        }
    }
    if worst >= 0 {
        XCTFail("\(what): index \(worst): \(a[worst]) vs \(b[worst])", file: file, line: line)
    }
}

/// Bit patterns, for exact comparisons that treat -0 and 0 as different and NaN as equal to itself.
func bits(_ a: [Float]) -> [UInt32] { a.map(\.bitPattern) }
