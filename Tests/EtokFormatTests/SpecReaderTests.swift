import XCTest
@testable import EtokFormat

/// Cross-checks the writer against Tools/fuzz/spec_reader.py, an independent reader written from
/// docs/etok-format.md alone (Python's zlib CRC, struct's f16, the §6.1 decoder transcribed).
/// Skipped when python3 is not installed.
final class SpecReaderTests: XCTestCase {
    private func readWithSpecReader(_ bytes: [UInt8]) throws -> [String: Any] {
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
        XCTAssertEqual(process.terminationStatus, 0, message)
        return try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    func testSpecReaderDecodesTheWritersFSQTokens() throws {
        let header = Fixture.fsqHeader(minToks: 0, maxToks: 40, chunkBlocks: 3)
        let chunks = Fixture.fsqChunks(header: header, blocks: 8, seed: 51)
        let result = try readWithSpecReader(try Fixture.file(header: header, chunks: chunks))
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
        let h = try XCTUnwrap(result["header"] as? [String: Any])
        XCTAssertEqual((h["model"] as? [String: Any])?["max_toks"] as? Int, 40)
        XCTAssertEqual(result["version"] as? [Int], [1, 0])
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
