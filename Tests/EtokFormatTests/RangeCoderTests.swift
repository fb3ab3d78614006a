import XCTest
@testable import EtokFormat

/// The range coder of §6.1 on its own (the FSQ coding over it: FSQTokenCoderTests).
final class RangeCoderTests: XCTestCase {
    /// Codes symbols with a fixed frequency table through the raw coder and decodes them back.
    func testRandomSymbolsRoundTripWithStaticTables() {
        for seed in 0..<50 as Range<UInt64> {
            var rng = SeededRandom(seed: seed)
            let alphabet = Int.random(in: 1...40, using: &rng)
            let freq = (0..<alphabet).map { _ in UInt32.random(in: 1...1500, using: &rng) }
            let cum = freq.indices.map { i in freq[0..<i].reduce(0, +) }
            let total = freq.reduce(0, +)
            let symbols = (0..<Int.random(in: 0...3000, using: &rng)).map { _ in Int.random(in: 0..<alphabet, using: &rng) }
            var enc = RangeEncoder()
            for s in symbols { enc.encode(cum: cum[s], freq: freq[s], total: total) }
            let bytes = enc.finish()
            XCTAssertEqual(bytes.first, 0, "the first byte is always 0 (§6.1)")
            var dec = RangeDecoder(bytes)
            var decoded: [Int] = []
            for _ in symbols {
                let v = dec.target(total: total)
                let s = cum.lastIndex(where: { $0 <= v })!
                dec.consume(cum: cum[s], freq: freq[s], total: total)
                decoded.append(s)
            }
            XCTAssertEqual(decoded, symbols, "seed \(seed)")
            XCTAssertTrue(dec.isExactlyAtEnd, "the decoder reads exactly the encoder's bytes (seed \(seed))")
        }
    }
}
