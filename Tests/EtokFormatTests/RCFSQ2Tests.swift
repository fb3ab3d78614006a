import XCTest
@testable import EtokFormat

/// The token coding `rc-fsq-2` (§6.3): round trips on random and structured streams, both codings in
/// one reader, corrupt data, header rules. (The spec cross-check is in SpecReaderTests.)
final class RCFSQ2Tests: XCTestCase {
    private func roundTrip(_ blocks: [[Int32]], levels: [Int], width: Int,
                           file: StaticString = #filePath, line: UInt = #line) {
        let data = FSQTokenCoder2.encode(blocks: blocks, levels: levels, width: width)
        let back = FSQTokenCoder2.decode(data, start: 0, end: data.count, kept: blocks.map(\.count),
                                         levels: levels, width: width)
        XCTAssertEqual(try back.get(), blocks, "levels \(levels), width \(width)", file: file, line: line)
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
        let one = FSQTokenCoder2.encode(blocks: [block], levels: levels, width: 16).count
        let four = FSQTokenCoder2.encode(blocks: [block, block, block, block], levels: levels, width: 16).count
        // A fresh block costs about log2(64000) ≈ 16 bits a token; a repeat well under 1 bit.
        XCTAssertGreaterThan(one, 256 * 14 / 8)
        XCTAssertLessThan(four - one, 3 * 256 / 8)
    }

    func testBothCodingsStoreTheSameChunksAndDecodeInOneReader() throws {
        let h1 = Fixture.fsqHeader(minToks: 0, maxToks: 64, chunkBlocks: 4, coding: .rcFSQ1)
        let h2 = Fixture.fsqHeader(minToks: 0, maxToks: 64, chunkBlocks: 4, coding: .rcFSQ2)
        let chunks = Fixture.driftingFSQChunks(header: h1, blocks: 14, seed: 64)
        let f1 = try Fixture.file(header: h1, chunks: chunks)
        let f2 = try Fixture.file(header: h2, chunks: chunks)
        XCTAssertNotEqual(f1, f2)
        for bytes in [f1, f2] {
            let reader = try EtokReader(bytes: bytes, name: "test.etok")
            let (read, errors) = Fixture.readAll(reader)
            XCTAssertEqual(errors, [])
            XCTAssertEqual(read, chunks)
            XCTAssertEqual(try Fixture.streamAll(bytes).chunks, chunks)
        }
        XCTAssertLessThan(f2.count, f1.count, "rc-fsq-2 should be smaller on encoder-like tokens")
    }

    func testSameTokensGiveIdenticalBytes() throws {
        let header = Fixture.fsqHeader(coding: .rcFSQ2)
        let chunks = Fixture.driftingFSQChunks(header: header, blocks: 10, seed: 65)
        XCTAssertEqual(try Fixture.file(header: header, chunks: chunks), try Fixture.file(header: header, chunks: chunks))
    }

    /// Flipped and cut token data with a valid CRC (as a writer bug or a CRC collision would give):
    /// the reader either decodes some tokens (the coder cannot tell) or throws `tokenDataOverrun`.
    func testCorruptTokenDataWithAValidCRCGivesATypedErrorNeverACrash() throws {
        let header = Fixture.fsqHeader(minToks: 0, maxToks: 48, chunkBlocks: 3, coding: .rcFSQ2)
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
        let big = Fixture.fsqHeader(levels: [32, 5], coding: .rcFSQ2)
        XCTAssertThrowsError(try big.validate(file: "h.etok")) { error in
            guard case FormatError.badHeader(_, let key, let message) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(key, "encoding.token_coding")
            XCTAssertTrue(message.contains("16"), message)
        }
        XCTAssertEqual(EtokHeader.TokenCoding.preferred(for: Fixture.fsqHeader().model), .rcFSQ2)
        XCTAssertEqual(EtokHeader.TokenCoding.preferred(for: Fixture.fsqHeader(levels: [32, 5]).model), .rcFSQ1)
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
