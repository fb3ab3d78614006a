import XCTest
@testable import EtokFormat

/// `ChunkSource` and `ChunkWalk`: damage as block ranges with a reason, the same for a file and for
/// its bytes on a pipe, and nothing lost silently.
final class ChunkWalkTests: XCTestCase {
    /// Every step of a walk.
    private func steps(_ walk: ChunkWalk) throws -> [ChunkWalk.Step] {
        var out: [ChunkWalk.Step] = []
        while let step = try walk.next() { out.append(step) }
        return out
    }

    private func fileSteps(_ bytes: [UInt8], name: String = "w.etok",
                           wants: @escaping (StreamSpan) -> Bool = { _ in true }) throws -> [ChunkWalk.Step] {
        try steps(ChunkSource(bytes: bytes, name: name, seekable: true).walk(wants: wants))
    }

    private func streamSteps(_ bytes: [UInt8], name: String = "w.etok",
                             wants: @escaping (StreamSpan) -> Bool = { _ in true }) throws -> [ChunkWalk.Step] {
        try steps(ChunkSource(bytes: bytes, name: name, seekable: false).walk(wants: wants))
    }

    private func damage(_ steps: [ChunkWalk.Step]) -> [DamagedRange] {
        steps.compactMap { if case .damaged(let r) = $0 { return r } else { return nil } }
    }

    private func chunks(_ steps: [ChunkWalk.Step]) -> [Chunk] {
        steps.compactMap { if case .chunk(let c) = $0 { return c } else { return nil } }
    }

    func testFlippedChunkIsOneRangeOfItsBlocksThroughBothReaders() throws {
        let header = Fixture.fsqHeader()
        let written = Fixture.fsqChunks(header: header, blocks: 12, seed: 41)
        var bytes = try Fixture.file(header: header, chunks: written)
        let at = Fixture.recordOffsets(bytes).filter { $0.type == "CHNK" }.map(\.offset)
        bytes[at[1] + 30] ^= 0x40
        let expected: [ChunkWalk.Step] = [
            .chunk(written[0]),
            .damaged(DamagedRange(file: "w.etok", firstBlock: 4, endBlock: 8, reason: .badCRC(file: "w.etok", record: "CHNK", offset: at[1]))),
            .chunk(written[2]),
        ]
        XCTAssertEqual(try fileSteps(bytes), expected)  // with the index
        XCTAssertEqual(try streamSteps(bytes), expected)
        XCTAssertEqual(damage(expected).first?.description,
                       "w.etok: blocks 4–7 unreadable: bad checksum (CRC) in CHNK record at offset \(at[1])")
        // Without the index (a killed writer), the scan finds the same gap.
        var unfinished = try Fixture.file(header: header, chunks: written, finish: false)
        unfinished[at[1] + 30] ^= 0x40
        let scanned = try fileSteps(unfinished)
        XCTAssertEqual(Array(scanned.prefix(3)), expected)
        XCTAssertEqual(damage(scanned).last?.blocksText, "blocks 12 onwards")
    }

    func testTruncationLosesEveryBlockFromTheCutUnlessTheIndexHadBegun() throws {
        let header = Fixture.fsqHeader(chunkBlocks: 2)
        let written = Fixture.fsqChunks(header: header, blocks: 6, seed: 42)
        let bytes = try Fixture.file(header: header, chunks: written)
        let records = Fixture.recordOffsets(bytes)
        let at = records.filter { $0.type == "CHNK" }.map(\.offset)
        let cut = Array(bytes[0..<(at[2] + 10)])
        for walked in [try fileSteps(cut), try streamSteps(cut)] {
            XCTAssertEqual(chunks(walked), Array(written[0..<2]))
            let range = try XCTUnwrap(damage(walked).first)
            XCTAssertEqual(damage(walked).count, 1)
            XCTAssertEqual(range.firstBlock, 4)
            XCTAssertNil(range.endBlock)
            XCTAssertEqual(range.reason, .truncated(file: "w.etok", offset: at[2], what: "inside a CHNK record of \(bytes.leU32(at: at[2] + 4) + 12) bytes"))
        }
        let index = records.first { $0.type == "INDX" }!.offset
        for end in [index, index + 10, bytes.count - 5] {
            let cutLate = Array(bytes[0..<end])
            for walked in [try fileSteps(cutLate), try streamSteps(cutLate)] {
                XCTAssertEqual(chunks(walked), written, "cut at \(end)")
                let range = try XCTUnwrap(damage(walked).first, "cut at \(end)")
                // A cut at the INDX's start cannot tell whether chunks were to follow.
                XCTAssertEqual(range.losesBlocks, end == index, "cut at \(end): \(range)")
            }
        }
        XCTAssertTrue(try XCTUnwrap(EtokReader(bytes: Array(bytes[0..<(index + 10)]), name: "w.etok").health.truncation)
            .problem.contains("inside an INDX record"))
    }

    func testABadTailChecksumIsDamageNotATruncation() throws {
        let header = Fixture.fsqHeader()
        let written = Fixture.fsqChunks(header: header, blocks: 5, seed: 43)
        var bytes = try Fixture.file(header: header, chunks: written)
        bytes[bytes.count - 1] ^= 1
        let reader = try EtokReader(bytes: bytes, name: "w.etok")
        XCTAssertNil(reader.health.truncation, reader.health.description)
        XCTAssertEqual(reader.health.damage, [.badCRC(file: "w.etok", record: "TAIL", offset: bytes.count - 20)])
        let walked = try fileSteps(bytes)
        XCTAssertEqual(walked, try streamSteps(bytes))
        XCTAssertEqual(chunks(walked), written)
        XCTAssertEqual(damage(walked).map(\.losesBlocks), [false])
        XCTAssertEqual(damage(walked).first?.problem, "bad checksum (CRC) in TAIL record at offset \(bytes.count - 20) (no blocks lost)")
    }

    func testSelectionSkipsDamageItDoesNotNeed() throws {
        let header = Fixture.fsqHeader()
        let written = Fixture.fsqChunks(header: header, blocks: 12, seed: 44)
        var bytes = try Fixture.file(header: header, chunks: written, finish: false)
        let at = Fixture.recordOffsets(bytes).filter { $0.type == "CHNK" }.map(\.offset)
        bytes[at[1] + 30] ^= 0x40
        let early = try fileSteps(bytes) { ($0.endBlock ?? .max) > 0 && $0.firstBlock < 2 }
        XCTAssertEqual(early, [.chunk(written[0])])
        XCTAssertEqual(try streamSteps(bytes) { ($0.endBlock ?? .max) > 0 && $0.firstBlock < 2 }, early)
        let middle = try fileSteps(bytes) { ($0.endBlock ?? .max) > 5 && $0.firstBlock < 6 }
        XCTAssertEqual(damage(middle).map(\.blocksText), ["blocks 4–7"])
        let late = try fileSteps(bytes) { ($0.endBlock ?? .max) > 20 }
        XCTAssertEqual(damage(late).map(\.blocksText), ["blocks 12 onwards"])
    }

    /// Every byte flipped and every length cut: each block is either in a chunk read back exactly
    /// or in a damaged range, file and stream walks agree on what they read, and a walk finds
    /// damage exactly when the verified health is not complete.
    func testEveryFlipAndCutIsAccountedFor() throws {
        let header = Fixture.fsqHeader(minToks: 2, maxToks: 12, chunkBlocks: 2)
        let written = Fixture.fsqChunks(header: header, blocks: 5, seed: 45)
        let bytes = try Fixture.file(header: header, chunks: written)
        var rng = SeededRandom(seed: 46)
        var variants: [(String, [UInt8])] = bytes.indices.map { i in
            var bad = bytes
            bad[i] ^= UInt8.random(in: 1...255, using: &rng)
            return ("flip at \(i)", bad)
        }
        variants += (0..<bytes.count).map { ("cut at \($0)", Array(bytes[0..<$0])) }
        for (context, bad) in variants {
            guard let reader = try? EtokReader(bytes: bad, name: "w.etok") else { continue }  // a damaged header
            let health = try reader.verify()
            let walked = try fileSteps(bad)
            XCTAssertEqual(damage(walked).isEmpty, health.isComplete, "\(context): \(health) vs \(damage(walked))")
            var covered = Set<Int>()
            var open: Int?
            for step in walked {
                switch step {
                case .chunk(let c):
                    XCTAssertEqual(c, written.first { $0.firstBlock == c.firstBlock }, context)
                    covered.formUnion(c.blockRange)
                case .damaged(let r):
                    if let end = r.endBlock { covered.formUnion(r.firstBlock..<end) } else { open = min(open ?? .max, r.firstBlock) }
                }
            }
            for block in 0..<5 where !covered.contains(block) {
                XCTAssertLessThanOrEqual(open ?? .max, block, "\(context): block \(block) lost silently: \(walked)")
            }
            XCTAssertEqual(try streamSteps(bad), walked, "\(context): a file and a pipe give one verdict")
        }
    }

    func testMessagesHaveNoSwiftRangeSyntax() {
        XCTAssertEqual(FormatError.missingBlocks(file: "m.etok", from: 12, to: 16).description,
                       "m.etok: blocks 12–15 missing (damaged or absent chunk)")
        XCTAssertEqual(FormatError.missingBlocks(file: "m.etok", from: 3, to: 4).description,
                       "m.etok: block 3 missing (damaged or absent chunk)")
        XCTAssertEqual(BlockRangeText.count(1, "block"), "1 block")
        XCTAssertEqual(BlockRangeText.count(2, "frame"), "2 frames")
        let range = DamagedRange(file: "m.etok", firstBlock: 12, endBlock: 16, reason: .badCRC(file: "m.etok", record: "CHNK", offset: 99))
        XCTAssertEqual(FormatError.damaged(range, others: 2, hint: "try this").description,
                       "m.etok: blocks 12–15 unreadable: bad checksum (CRC) in CHNK record at offset 99 (and 2 more damaged ranges); try this")
    }
}
