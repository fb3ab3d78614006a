import XCTest
@testable import EtokFormat

/// The FSQ token coding `rc-fsq-2` (§6.3): round trips on random and structured streams, overrun and
/// leftover bytes, corrupt data, header rules. (The spec cross-check is in SpecReaderTests.)
final class FSQTokenCoderTests: XCTestCase {
    private func roundTrip(_ blocks: [[Int32]], levels: [Int], width: Int, repeats: Bool = false,
                           file: StaticString = #filePath, line: UInt = #line) {
        let data = FSQTokenCoder.encode(blocks: blocks, levels: levels, width: width, repeats: repeats)
        let back = FSQTokenCoder.decode(data, start: 0, end: data.count, kept: blocks.map(\.count),
                                         levels: levels, width: width, repeats: repeats)
        XCTAssertEqual(try back.get(), blocks, "levels \(levels), width \(width), repeats \(repeats)", file: file, line: line)
    }

    func testRandomTokensRoundTripForManyLevelsWidthsAndKeptCounts() {
        var rng = SeededRandom(seed: 61)
        for _ in 0..<150 {
            let levels = (0..<Int.random(in: 1...6, using: &rng)).map { _ in Int.random(in: 2...16, using: &rng) }
            let size = levels.reduce(1, *)
            let width = Int.random(in: 1...20, using: &rng)
            let blocks: [[Int32]] = (0..<Int.random(in: 1...5, using: &rng)).map { _ in
                (0..<Int.random(in: 0...70, using: &rng)).map { _ in Int32(Int.random(in: 0..<size, using: &rng)) }
            }
            roundTrip(blocks, levels: levels, width: width)
            roundTrip(blocks, levels: levels, width: width, repeats: true)
        }
    }

    func testStructuredTokensRoundTripAndEveryDigitValueAtTheEdges() throws {
        let header = Fixture.fsqHeader(minToks: 0, maxToks: 96, chunkBlocks: 6)
        for c in Fixture.driftingFSQChunks(header: header, blocks: 30, seed: 62) {
            guard case .fsq(let blocks) = c.tokens else { return XCTFail() }
            roundTrip(blocks, levels: header.fsqLevels, width: 8)
        }
        // Every (previous digit, digit) pair of a level, so every near/far/edge case of §6.3 occurs.
        for l in [2, 3, 4, 5, 8, 16] {
            let pairs = (0..<l).flatMap { p in (0..<l).map { s in (p, s) } }
            roundTrip([pairs.map { Int32($0.0) }, pairs.map { Int32($0.1) }, pairs.map { Int32($0.0) }], levels: [l], width: 3)
        }
    }

    func testRepeatedBlocksCostFarLessThanNewOnes() {
        var rng = SeededRandom(seed: 63)
        let levels = Fixture.fsqLevels
        let block = (0..<256).map { _ in Int32(Int.random(in: 0..<64000, using: &rng)) }
        let one = FSQTokenCoder.encode(blocks: [block], levels: levels, width: 16, repeats: false).count
        let four = FSQTokenCoder.encode(blocks: [block, block, block, block], levels: levels, width: 16, repeats: false).count
        // A fresh block costs about log2(64000) ≈ 16 bits a token; a repeat well under 1 bit.
        XCTAssertGreaterThan(one, 256 * 14 / 8)
        XCTAssertLessThan(four - one, 3 * 256 / 8)
    }

    /// A repeat block (format 1.2, §5) codes nothing and is not the next block's `prev` (§6.3: the
    /// chunk's last coded block is): a repeat between two identical blocks leaves the second as cheap
    /// as without the repeat (the same bytes), where a previous-less block costs about 16 bits a
    /// token. Without declared repeats an empty block is the model's empty block and the rule of
    /// format 1.1 holds (the block after it has no `prev`).
    func testRepeatBlockLeavesThePreviousCodedBlockAsContext() throws {
        var rng = SeededRandom(seed: 64)
        let levels = Fixture.fsqLevels
        let block = (0..<256).map { _ in Int32(Int.random(in: 0..<64000, using: &rng)) }
        let plain = FSQTokenCoder.encode(blocks: [block, block], levels: levels, width: 16, repeats: true)
        XCTAssertEqual(plain, FSQTokenCoder.encode(blocks: [block, block], levels: levels, width: 16, repeats: false))
        let withRepeat = FSQTokenCoder.encode(blocks: [block, [], block], levels: levels, width: 16, repeats: true)
        XCTAssertEqual(withRepeat, plain)
        XCTAssertEqual(try FSQTokenCoder.decode(withRepeat, start: 0, end: withRepeat.count, kept: [256, 0, 256],
                                                levels: levels, width: 16, repeats: true).get(), [block, [], block])
        // Two repeats in a row, and a repeat after a shorter block: still the last coded block.
        let short = Array(block.prefix(100))
        XCTAssertEqual(FSQTokenCoder.encode(blocks: [short, [], [], block], levels: levels, width: 16, repeats: true),
                       FSQTokenCoder.encode(blocks: [short, block], levels: levels, width: 16, repeats: false))
        let emptyModelBlock = FSQTokenCoder.encode(blocks: [block, [], block], levels: levels, width: 16, repeats: false)
        XCTAssertGreaterThan(emptyModelBlock.count - plain.count, 256 * 14 / 8)
    }

    /// The draft coding `rc-fsq-1` (format 1.0) is retired: a file naming it is refused by name.
    func testRetiredCodingRCFSQ1IsRefusedByName() throws {
        var json = String(decoding: Fixture.fsqHeader().jsonBytes(), as: UTF8.self)
        json = json.replacingOccurrences(of: "\"rc-fsq-2\"", with: "\"rc-fsq-1\"")
        XCTAssertThrowsError(try EtokHeader.decode(Array(json.utf8), file: "old.etok")) { error in
            guard case FormatError.badHeader(_, let key, let message) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(key, "encoding.token_coding")
            XCTAssertTrue(message.contains("unknown token coding \"rc-fsq-1\""), message)
        }
        XCTAssertNil(EtokHeader.TokenCoding(rawValue: "rc-fsq-1"))
    }

    func testLongStreamsRoundTripPastTheCountCap() {
        // 60k digits of few values: every context's count reaches its cap of 30 many times over.
        var rng = SeededRandom(seed: 3)
        let levels = [8, 5]
        let blocks: [[Int32]] = (0..<30).map { _ in (0..<2000).map { _ in Int32(Int.random(in: 0..<3, using: &rng)) } }
        roundTrip(blocks, levels: levels, width: 40)
    }

    /// Empirical entropy in bits of a symbol sequence (the independent reference for compactness).
    private func entropyBits(_ symbols: [Int]) -> Double {
        var counts: [Int: Int] = [:]
        for s in symbols { counts[s, default: 0] += 1 }
        let n = Double(symbols.count)
        return counts.values.reduce(0) { acc, c in acc - Double(c) * log2(Double(c) / n) }
    }

    func testSkewedDigitsCompressNearTheirEntropy() {
        for (seed, skew) in [(1, 0.5), (2, 0.8), (3, 0.95)] as [(UInt64, Double)] {
            var rng = SeededRandom(seed: seed)
            // One dimension of 8 levels, one block (every digit coded through the tree): symbol s
            // with probability proportional to skew^s, independent of its neighbours.
            let weights = (0..<8).map { pow(skew, Double($0)) }
            let sum = weights.reduce(0, +)
            let symbols: [Int] = (0..<40000).map { _ in
                var u = Double.random(in: 0..<sum, using: &rng)
                for (s, w) in weights.enumerated() { if u < w { return s }; u -= w }
                return 7
            }
            let data = FSQTokenCoder.encode(blocks: [symbols.map { Int32($0) }], levels: [8], width: 200, repeats: false)
            let h = entropyBits(symbols)
            let coded = Double(data.count * 8)
            XCTAssertLessThan(coded, h * 1.05 + 256, "skew \(skew): \(coded) bits for entropy \(h)")
            XCTAssertGreaterThan(coded, h * 0.97, "skew \(skew): cannot beat the entropy by much")
        }
    }

    func testDecoderReadingPastTheEndReportsOverrun() {
        var rng = SeededRandom(seed: 5)
        for _ in 0..<30 {
            let blocks: [[Int32]] = (0..<3).map { _ in (0..<50).map { _ in Int32(Int.random(in: 0..<64000, using: &rng)) } }
            let data = FSQTokenCoder.encode(blocks: blocks, levels: Fixture.fsqLevels, width: 16, repeats: false)
            let cut = Int.random(in: 0..<data.count, using: &rng)
            let result = FSQTokenCoder.decode(data, start: 0, end: cut, kept: blocks.map(\.count), levels: Fixture.fsqLevels,
                                              width: 16, repeats: false)
            guard case .failure(.overrun) = result else {
                return XCTFail("cut at \(cut) of \(data.count): expected overrun, got \(result)")
            }
        }
    }

    func testLeftoverBytesAreReported() {
        let blocks: [[Int32]] = [[1, 2, 3, 4000]]
        let data = FSQTokenCoder.encode(blocks: blocks, levels: Fixture.fsqLevels, width: 16, repeats: false) + [0, 0]
        let result = FSQTokenCoder.decode(data, start: 0, end: data.count, kept: [4], levels: Fixture.fsqLevels, width: 16, repeats: false)
        XCTAssertEqual(result, .failure(.trailingBytes(2)))
    }

    func testDecodingGarbageNeverTraps() {
        var rng = SeededRandom(seed: 9)
        for _ in 0..<300 {
            let data = (0..<Int.random(in: 0...64, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let result = FSQTokenCoder.decode(data, start: 0, end: data.count, kept: [30, 30], levels: [8, 8, 8, 5, 5, 5],
                                              width: 16, repeats: false)
            if case .success(let blocks) = result {
                XCTAssertTrue(blocks.joined().allSatisfy { $0 >= 0 && $0 < 64000 })
            }
        }
    }

    func testSameTokensGiveIdenticalBytes() throws {
        let header = Fixture.fsqHeader()
        let chunks = Fixture.driftingFSQChunks(header: header, blocks: 10, seed: 65)
        XCTAssertEqual(try Fixture.file(header: header, chunks: chunks), try Fixture.file(header: header, chunks: chunks))
    }

    /// Flipped and cut token data with a valid CRC (as a writer bug or a CRC collision would give):
    /// the reader either decodes some tokens (the coder cannot tell) or throws `tokenDataOverrun`.
    func testCorruptTokenDataWithAValidCRCGivesATypedErrorNeverACrash() throws {
        let header = Fixture.fsqHeader(minToks: 0, maxToks: 48, chunkBlocks: 3)
        let chunk = Fixture.driftingFSQChunks(header: header, blocks: 3, seed: 66)[0]
        let payload = ChunkCodec.payload(chunk, header: header)
        let tokenStart = 16 + 16 * chunk.blocks.count
        var rng = SeededRandom(seed: 67)
        var errors = 0
        for trial in 0..<300 {
            var bad = payload
            if trial % 3 == 0 {
                // Cut the token data short (fixing token_bytes), or pad it.
                let cut = Int.random(in: 0..<(payload.count - tokenStart), using: &rng)
                bad = Array(payload[0..<(tokenStart + cut)])
                bad.replaceSubrange((tokenStart - 4)..<tokenStart, with: withUnsafeBytes(of: UInt32(cut).littleEndian, Array.init))
            } else {
                let at = Int.random(in: tokenStart..<payload.count, using: &rng)
                bad[at] ^= UInt8.random(in: 1...255, using: &rng)
            }
            do {
                let c = try ChunkCodec.parse(bad, header: header, offset: 100, file: "bad.etok")
                guard case .fsq(let blocks) = c.tokens else { return XCTFail() }
                XCTAssertTrue(blocks.joined().allSatisfy { $0 >= 0 && Int($0) < header.fsqCodebookSize })
            } catch {
                guard case .tokenDataOverrun(let file, let offset, _) = error else { return XCTFail("\(error)") }
                XCTAssertEqual(file, "bad.etok")
                XCTAssertEqual(offset, 100)
                errors += 1
            }
        }
        XCTAssertGreaterThan(errors, 100, "most damage must be detected by the exact-length rule")
    }

    func testHeaderRulesForTokenCodings() throws {
        // Levels above 16 are refused (the coding's limit), naming the levels key and the limit.
        let big = Fixture.fsqHeader(levels: [32, 5])
        XCTAssertThrowsError(try big.validate(file: "h.etok")) { error in
            guard case FormatError.badHeader(_, let key, let message) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(key, "model.fsq_quant_levels")
            XCTAssertTrue(message.contains("16"), message)
        }
        XCTAssertThrowsError(try Fixture.fsqHeader(coding: .f16v1).validate(file: "h.etok"))
        XCTAssertNoThrow(try Fixture.fsqHeader(levels: [16, 2]).validate(file: "h.etok"))
        XCTAssertEqual(EtokHeader.TokenCoding.preferred(for: Fixture.fsqHeader().model), .rcFSQ2)
        XCTAssertEqual(EtokHeader.TokenCoding.preferred(for: Fixture.vaeHeader().model), .f16v1)
        XCTAssertEqual(Fixture.fsqHeader().tokenGridWidth, 8)  // 64 px / 8 px patches
    }

    /// A coding this reader does not know (a newer writer's) is refused by name, never misread.
    func testUnknownTokenCodingIsRefusedByName() throws {
        var json = String(decoding: Fixture.fsqHeader().jsonBytes(), as: UTF8.self)
        json = json.replacingOccurrences(of: "\"rc-fsq-2\"", with: "\"rc-fsq-9\"")
        XCTAssertThrowsError(try EtokHeader.decode(Array(json.utf8), file: "new.etok")) { error in
            guard case FormatError.badHeader(let file, let key, let message) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(file, "new.etok")
            XCTAssertEqual(key, "encoding.token_coding")
            XCTAssertTrue(message.contains("unknown token coding \"rc-fsq-9\""), message)
            XCTAssertTrue(message.contains("rc-fsq-2"), message)
        }
    }
}
