import XCTest
@testable import EtokFormat

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

    func testFSQTokensRoundTripOverManySeeds() {
        for seed in 0..<200 as Range<UInt64> {
            var rng = SeededRandom(seed: seed)
            let levels = (0..<Int.random(in: 1...6, using: &rng)).map { _ in Int.random(in: 2...9, using: &rng) }
            let size = levels.reduce(1, *)
            let blocks: [[Int32]] = (0..<Int.random(in: 1...5, using: &rng)).map { _ in
                let n = Int.random(in: 0...40, using: &rng)
                let base = Int.random(in: 0..<size, using: &rng)
                return (0..<n).map { _ in
                    // Mix of repeats and uniform draws, so contexts see both.
                    Int32(Bool.random(using: &rng) ? base : Int.random(in: 0..<size, using: &rng))
                }
            }
            let data = FSQTokenCoder.encode(blocks: blocks, levels: levels)
            let kept = blocks.map(\.count)
            let decoded = FSQTokenCoder.decode(data, start: 0, end: data.count, kept: kept, levels: levels)
            XCTAssertEqual(try decoded.get(), blocks, "seed \(seed), levels \(levels)")
        }
    }

    func testLongStreamKeepsAdaptingAcrossRescaling() {
        // 60k symbols from one table force many halvings (total limit 65504).
        var rng = SeededRandom(seed: 3)
        let levels = [8, 5]
        let blocks: [[Int32]] = (0..<30).map { _ in (0..<2000).map { _ in Int32(Int.random(in: 0..<3, using: &rng)) } }
        let data = FSQTokenCoder.encode(blocks: blocks, levels: levels)
        XCTAssertEqual(try FSQTokenCoder.decode(data, start: 0, end: data.count, kept: blocks.map(\.count), levels: levels).get(), blocks)
    }

    /// Empirical entropy in bits of a symbol sequence (the independent reference for compactness).
    private func entropyBits(_ symbols: [Int]) -> Double {
        var counts: [Int: Int] = [:]
        for s in symbols { counts[s, default: 0] += 1 }
        let n = Double(symbols.count)
        return counts.values.reduce(0) { acc, c in acc - Double(c) * log2(Double(c) / n) }
    }

    func testSkewedStreamsCompressNearTheirEntropy() {
        for (seed, skew) in [(1, 0.5), (2, 0.8), (3, 0.95)] as [(UInt64, Double)] {
            var rng = SeededRandom(seed: seed)
            // One dimension of 8 levels, no previous block (single block): symbol s with probability
            // proportional to skew^s.
            let weights = (0..<8).map { pow(skew, Double($0)) }
            let sum = weights.reduce(0, +)
            let symbols: [Int] = (0..<40000).map { _ in
                var u = Double.random(in: 0..<sum, using: &rng)
                for (s, w) in weights.enumerated() { if u < w { return s }; u -= w }
                return 7
            }
            let data = FSQTokenCoder.encode(blocks: [symbols.map { Int32($0) }], levels: [8])
            let h = entropyBits(symbols)
            let coded = Double(data.count * 8)
            XCTAssertLessThan(coded, h * 1.02 + 256, "skew \(skew): \(coded) bits for entropy \(h)")
            XCTAssertGreaterThan(coded, h * 0.97, "skew \(skew): cannot beat the entropy by much")
        }
    }

    func testDecoderReadingPastTheEndReportsOverrun() {
        var rng = SeededRandom(seed: 5)
        for _ in 0..<30 {
            let blocks: [[Int32]] = (0..<3).map { _ in (0..<50).map { _ in Int32(Int.random(in: 0..<64000, using: &rng)) } }
            let data = FSQTokenCoder.encode(blocks: blocks, levels: Fixture.fsqLevels)
            let cut = Int.random(in: 0..<data.count, using: &rng)
            let result = FSQTokenCoder.decode(data, start: 0, end: cut, kept: blocks.map(\.count), levels: Fixture.fsqLevels)
            guard case .failure(.overrun) = result else {
                return XCTFail("cut at \(cut) of \(data.count): expected overrun, got \(result)")
            }
        }
    }

    func testLeftoverBytesAreReported() {
        let blocks: [[Int32]] = [[1, 2, 3, 4000]]
        let data = FSQTokenCoder.encode(blocks: blocks, levels: Fixture.fsqLevels) + [0, 0]
        let result = FSQTokenCoder.decode(data, start: 0, end: data.count, kept: [4], levels: Fixture.fsqLevels)
        XCTAssertEqual(result, .failure(.trailingBytes(2)))
    }

    func testDecodingGarbageNeverTraps() {
        var rng = SeededRandom(seed: 9)
        for _ in 0..<300 {
            let data = (0..<Int.random(in: 0...64, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            _ = FSQTokenCoder.decode(data, start: 0, end: data.count, kept: [30, 30], levels: [8, 8, 8, 5, 5, 5])
        }
    }

    func testPreviousBlockContextMakesRepeatedBlocksCheap() {
        // A block identical to the previous one costs far less than the first: the (d, prev) context.
        var rng = SeededRandom(seed: 4)
        let block = (0..<256).map { _ in Int32(Int.random(in: 0..<64000, using: &rng)) }
        let one = FSQTokenCoder.encode(blocks: [block], levels: Fixture.fsqLevels).count
        let eight = FSQTokenCoder.encode(blocks: Array(repeating: block, count: 8), levels: Fixture.fsqLevels).count
        XCTAssertLessThan(Double(eight - one) / 7, Double(one) / 2)
    }
}
