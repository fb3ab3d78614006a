import XCTest
@testable import EtokFormat

final class Float16BitsTests: XCTestCase {
    func testEveryHalfPatternRoundTripsThroughFloat() {
        for h in 0...0xFFFF {
            let bits = UInt16(h)
            let f = Float16Bits.float(bits)
            let native = Float(Float16(bitPattern: bits))
            if native.isNaN {
                XCTAssertTrue(f.isNaN)
                XCTAssertTrue(Float16Bits.float(Float16Bits.bits(f)).isNaN)
            } else {
                XCTAssertEqual(f.bitPattern, native.bitPattern, "pattern \(h)")
                XCTAssertEqual(Float16Bits.bits(f), bits, "pattern \(h)")
            }
        }
    }

    func testRoundingMatchesNativeFloat16OnRandomFloats() {
        var rng = SeededRandom(seed: 11)
        for _ in 0..<200_000 {
            // Random bit patterns cover every exponent; keep non-NaN.
            let x = Float(bitPattern: UInt32.random(in: 0...UInt32.max, using: &rng))
            if x.isNaN { continue }
            XCTAssertEqual(Float16Bits.bits(x), Float16(x).bitPattern, "x = \(x)")
        }
        // Ties and the edges of the subnormal range.
        for x: Float in [65504, 65520, 65519.99, 6.1035156e-05, 5.9604645e-08, 2.9802322e-08, 2.9802326e-08,
                         1.0009765625 / 2 + 0.5, 1 + 0x1p-11, 1 + 3 * 0x1p-11] {
            XCTAssertEqual(Float16Bits.bits(x), Float16(x).bitPattern, "x = \(x)")
            XCTAssertEqual(Float16Bits.bits(-x), Float16(-x).bitPattern, "x = \(-x)")
        }
    }
}
