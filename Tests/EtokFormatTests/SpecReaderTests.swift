import XCTest
@testable import EtokFormat

/// Cross-checks the writer against Tools/fuzz/spec_reader.py, an independent reader written from
/// docs/etok-format.md alone (Python's zlib CRC, struct's f16, the §6.1 range decoder and the §6.3 coding transcribed).
/// Skipped when python3 is not installed.
final class SpecReaderTests: XCTestCase {
    private func readWithSpecReader(_ bytes: [UInt8]) throws -> [String: Any] {
        let (status, data, message) = try runSpecReader(bytes)
        XCTAssertEqual(status, 0, message)
        return try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    /// The spec reader's exit status, stdout and stderr for `bytes`.
    private func runSpecReader(_ bytes: [UInt8]) throws -> (Int32, Data, String) {
        let python = ["/usr/bin/python3", "/usr/local/bin/python3"].first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let python else { throw XCTSkip("python3 not found") }
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Tools/fuzz/spec_reader.py")
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("etok-spec-\(getpid())-\(bytes.count).etok")
        try Data(bytes).write(to: path)
        defer { try? FileManager.default.removeItem(at: path) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [script.path, path.path]
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, data, message)
    }

    func testSpecReaderDecodesTheWritersRCFSQ2Tokens() throws {
        try checkFSQ(levels: Fixture.fsqLevels, seed: 53)
        // Levels that are not powers of two and a tree of 4 bits (L = 16, 9), one of 1 bit (L = 2).
        try checkFSQ(levels: [16, 9, 2, 3], seed: 54)
    }

    /// Structured tokens (small digit steps, runs of repeats) so every branch of §6.3 is taken.
    func testSpecReaderDecodesStructuredRCFSQ2Tokens() throws {
        let header = Fixture.fsqHeader(minToks: 0, maxToks: 64, chunkBlocks: 4)
        let chunks = Fixture.driftingFSQChunks(header: header, blocks: 9, seed: 55)
        try compare(chunks, try readWithSpecReader(try Fixture.file(header: header, chunks: chunks)))
    }

    private func checkFSQ(levels: [Int], seed: UInt64) throws {
        let header = Fixture.fsqHeader(minToks: 0, maxToks: 40, chunkBlocks: 3, levels: levels)
        let chunks = Fixture.fsqChunks(header: header, blocks: 8, seed: seed)
        let result = try readWithSpecReader(try Fixture.file(header: header, chunks: chunks))
        try compare(chunks, result)
        let h = try XCTUnwrap(result["header"] as? [String: Any])
        XCTAssertEqual((h["model"] as? [String: Any])?["max_toks"] as? Int, 40)
        XCTAssertEqual((h["encoding"] as? [String: Any])?["token_coding"] as? String, "rc-fsq-2")
        XCTAssertEqual(result["version"] as? [Int], [Int(EtokFormat.majorVersion), Int(EtokFormat.minorVersion)])
    }

    private func compare(_ chunks: [Chunk], _ result: [String: Any]) throws {
        let read = try XCTUnwrap(result["chunks"] as? [[String: Any]])
        XCTAssertEqual(read.count, chunks.count)
        for (c, r) in zip(chunks, read) {
            XCTAssertEqual(r["first_block"] as? Int, c.firstBlock)
            let blocks = try XCTUnwrap(r["blocks"] as? [[Double]])
            XCTAssertEqual(blocks.map { Int($0[0]) }, c.blocks.map(\.kept))
            XCTAssertEqual(blocks.map { Int64($0[2]) }, c.blocks.map(\.pts))
            XCTAssertEqual(blocks.map { Float($0[3]) }, c.blocks.map(\.mse))
            guard case .fsq(let tokens) = c.tokens else { return XCTFail() }
            XCTAssertEqual(r["tokens"] as? [[Int]], tokens.map { $0.map(Int.init) })
        }
    }

    /// Repeat blocks (format 1.2, §5): a block keeping 0 tokens has no token data, and the next
    /// block's `prev` is the block before the repeat (§6.3: the chunk's last coded block). The
    /// structured test above (min_toks 0, no repeats declared) keeps the other rule: an empty model
    /// block leaves the next block without `prev`.
    func testSpecReaderReadsRepeatBlocks() throws {
        var header = Fixture.fsqHeader(minToks: 4, maxToks: 16, chunkBlocks: 4)
        header.encoding.repeatBlocks = true
        let chunks = [Chunk(firstBlock: 0, blocks: [BlockRecord(kept: 5, frames: 1, pts: 0, mse: 0.001),
                                                    BlockRecord(kept: 0, frames: 1, pts: 512, mse: 0.002),
                                                    BlockRecord(kept: 5, frames: 1, pts: 1024, mse: 0.001)],
                            tokens: .fsq([[1, 2, 3, 4, 5], [], [1, 2, 3, 4, 6]])),
                      // Two repeats after a short block, then a longer one: its first 3 tokens have `prev`.
                      Chunk(firstBlock: 3, blocks: [BlockRecord(kept: 4, frames: 1, pts: 1536, mse: 0.001),
                                                    BlockRecord(kept: 0, frames: 1, pts: 2048, mse: 0.002),
                                                    BlockRecord(kept: 0, frames: 1, pts: 2560, mse: 0.002),
                                                    BlockRecord(kept: 7, frames: 1, pts: 3072, mse: 0.001)],
                            tokens: .fsq([[9, 800, 7, 6], [], [], [9, 801, 7, 6, 5, 4, 3]]))]
        let result = try readWithSpecReader(try Fixture.file(header: header, chunks: chunks))
        try compare(chunks, result)
        XCTAssertEqual(result["version"] as? [Int], [1, 2])
        XCTAssertEqual(((result["header"] as? [String: Any])?["encoding"] as? [String: Any])?["repeat_blocks"] as? Bool, true)
    }

    /// Repeat blocks at a chunk's start (§5): the spec reader reads a chunk that begins with
    /// repeats, and one of repeats only, as the writer wrote them; it refuses kept 0 as the
    /// stream's first block and wherever the header does not declare repeat blocks.
    func testSpecReaderReadsRepeatBlocksAtAChunksStartAndRefusesThemUndeclared() throws {
        var header = Fixture.fsqHeader(minToks: 4, maxToks: 16, chunkBlocks: 2)
        header.encoding.repeatBlocks = true
        let chunks = [Chunk(firstBlock: 0, blocks: [BlockRecord(kept: 5, frames: 1, pts: 0, mse: 0.001),
                                                    BlockRecord(kept: 0, frames: 1, pts: 512, mse: 0.002)],
                            tokens: .fsq([[1, 2, 3, 4, 5], []])),
                      Chunk(firstBlock: 2, blocks: [BlockRecord(kept: 0, frames: 1, pts: 1024, mse: 0.002),
                                                    BlockRecord(kept: 0, frames: 1, pts: 1536, mse: 0.002)],
                            tokens: .fsq([[], []])),
                      Chunk(firstBlock: 4, blocks: [BlockRecord(kept: 0, frames: 1, pts: 2048, mse: 0.002),
                                                    BlockRecord(kept: 6, frames: 1, pts: 2560, mse: 0.001)],
                            tokens: .fsq([[], [1, 2, 3, 4, 6, 7]]))]
        try compare(chunks, try readWithSpecReader(try Fixture.file(header: header, chunks: chunks)))

        func spliced(_ h: EtokHeader, _ chunk: Chunk) throws -> [UInt8] {
            try Fixture.file(header: h, chunks: [], finish: false)
                + RecordType.frame(RecordType.chunk, ChunkCodec.payload(chunk, header: header))
        }
        var undeclared = header
        undeclared.encoding.repeatBlocks = nil
        let (status, _, message) = try runSpecReader(try spliced(undeclared, chunks[0]))
        XCTAssertNotEqual(status, 0)
        XCTAssertTrue(message.contains("block 1 keeps 0 tokens"), message)
        let first = Chunk(firstBlock: 0, blocks: [BlockRecord(kept: 0, frames: 1, pts: 0, mse: 0)], tokens: .fsq([[]]))
        let (status0, _, message0) = try runSpecReader(try spliced(header, first))
        XCTAssertNotEqual(status0, 0)
        XCTAssertTrue(message0.contains("block 0 keeps 0 tokens"), message0)
    }

    func testSpecReaderDecodesTheWritersVAELatents() throws {
        let header = Fixture.vaeHeader()
        let chunks = Fixture.vaeChunks(header: header, blocks: 4, seed: 52)
        let result = try readWithSpecReader(try Fixture.file(header: header, chunks: chunks))
        let read = try XCTUnwrap(result["chunks"] as? [[String: Any]])
        for (c, r) in zip(chunks, read) {
            guard case .vae(let values) = c.tokens else { return XCTFail() }
            XCTAssertEqual((r["tokens"] as? [[Double]])?.map { $0.map { Float($0) } }, values)
        }
    }
}
