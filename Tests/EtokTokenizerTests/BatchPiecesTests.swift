import EtokIO
import Foundation
import XCTest
@testable import EtokTokenizer

/// The batch's pure pieces: output paths, manifests, shards, tar shards.
final class BatchPiecesTests: XCTestCase {
    func testOutputPathsKeepTheInputPathAndNeverMeet() {
        XCTAssertEqual(BatchItem.outputPath(for: "clips/a.mp4"), "clips/a.mp4.etok")
        XCTAssertEqual(BatchItem.outputPath(for: "./clips//a.mp4"), "clips/a.mp4.etok")
        XCTAssertEqual(BatchItem.outputPath(for: "/data/a.mp4"), "@root/data/a.mp4.etok")
        XCTAssertEqual(BatchItem.outputPath(for: "../x/a.mp4"), "@up/x/a.mp4.etok")
        XCTAssertEqual(BatchItem.outputPath(for: "@root/data/a.mp4"), "@@root/data/a.mp4.etok")
        // Inputs that name different files map to different outputs, however they are spelt.
        let inputs = ["a.mp4", "a.mov", "/a.mp4", "@root/a.mp4", "../a.mp4", "@up/a.mp4", "x/../a.mp4",
                      "@@up/a.mp4", "@/a.mp4", "a.mp4.etok", "sub/a.mp4", "/sub/a.mp4"]
        let outputs = inputs.map { BatchItem.outputPath(for: $0) }
        XCTAssertEqual(Set(outputs).count, inputs.count, "\(outputs)")
    }

    func testManifestReadsPathsAndJSONLinesAndNamesTheBadLine() throws {
        let items = try Manifest.parse("""
            a.mp4
            # comment

            dir/with space.mp4
            {"input": "b.mp4", "key": "bee", "output": "x/b.etok"}
            """, file: "m.txt")
        XCTAssertEqual(items.map(\.input), ["a.mp4", "dir/with space.mp4", "b.mp4"])
        XCTAssertEqual(items.map(\.key), ["a.mp4", "dir/with space.mp4", "bee"])
        XCTAssertEqual(items.map(\.output), ["a.mp4.etok", "dir/with space.mp4.etok", "x/b.etok"])

        func refused(_ text: String, _ message: String, file: StaticString = #filePath, line: UInt = #line) {
            XCTAssertThrowsError(try Manifest.parse(text, file: "m.txt"), file: file, line: line) { error in
                XCTAssertEqual("\(error)", message, file: file, line: line)
            }
        }
        refused("a.mp4\n{\"input\": 3}", "m.txt: line 2: no \"input\" path")
        refused("{\"input\": \"a\", \"outptu\": \"b\"}", "m.txt: line 1: unknown field \"outptu\" (fields: input, key, output)")
        refused("{\"input\": \"a\", \"output\": \"../b\"}",
                "m.txt: line 1: \"output\" must be a relative path inside the output folder, without . or ..")
        refused("a.mp4\n\n./a.mp4", "m.txt: line 3: output \"a.mp4.etok\" is already item 1's")
        refused("{\"input\": \"a\", \"key\": \"k\"}\n{\"input\": \"b\", \"key\": \"k\"}", "m.txt: line 2: key \"k\" is already item 1's")
        refused("{not json", "m.txt: line 1: not a JSON object")
    }

    func testShardsPartitionTheItemsAndAddingItemsMovesNoOther() {
        let items = (0..<500).map { BatchItem(input: "clips/\($0).mp4") }
        for n in 1...7 {
            let shares = (0..<n).map { ShardSpec(index: $0, count: n).select(items) }
            XCTAssertEqual(shares.map(\.count).reduce(0, +), items.count)
            XCTAssertEqual(Set(shares.flatMap { $0.map(\.key) }).count, items.count)
            if n > 1 { XCTAssertTrue(shares.allSatisfy { !$0.isEmpty }, "n = \(n)") }
        }
        // An item's shard depends on its key alone.
        let more = items + (500..<600).map { BatchItem(input: "clips/\($0).mp4") }
        let before = ShardSpec(index: 1, count: 3).select(items).map(\.key)
        let after = ShardSpec(index: 1, count: 3).select(more).map(\.key).filter { k in items.contains { $0.key == k } }
        XCTAssertEqual(before, after)
    }

    func testFNV1a64MatchesItsPublishedValues() {
        XCTAssertEqual(ShardSpec.fnv1a64(""), 0xcbf2_9ce4_8422_2325)
        XCTAssertEqual(ShardSpec.fnv1a64("a"), 0xaf63_dc4c_8601_ec8c)
        XCTAssertEqual(ShardSpec.fnv1a64("foobar"), 0x8594_4171_f739_67e8)
        XCTAssertEqual(ShardSpec(parsing: "2/3"), ShardSpec(index: 2, count: 3))
        for bad in ["3/3", "-1/2", "1/0", "1", "a/b", "1/2/3"] { XCTAssertNil(ShardSpec(parsing: bad), bad) }
    }

    func testTarHeaderIsUstarWithAValidChecksum() throws {
        let h = try TarShardWriter.header(name: "0001_a.tokens.npy", size: 1234)
        XCTAssertEqual(h.count, 512)
        XCTAssertEqual(String(decoding: h[257..<262], as: UTF8.self), "ustar")
        XCTAssertEqual(String(decoding: h[124..<135], as: UTF8.self), String(1234, radix: 8).leftPadded(11))
        var copy = h
        for k in 148..<156 { copy[k] = UInt8(ascii: " ") }
        let sum = copy.reduce(0) { $0 + Int($1) }
        XCTAssertEqual(Int(String(decoding: h[148..<154], as: UTF8.self), radix: 8), sum)
        XCTAssertThrowsError(try TarShardWriter.header(name: String(repeating: "x", count: 101), size: 1))
    }

    func testShardWriterStartsANewShardBeforeTheCapAndKeepsASampleWhole() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("etok-tar-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        // A sample of two members of 600 bytes: 2 × (512 + 1024) = 3072 bytes in a shard.
        let sample = [(name: "k.a", data: [UInt8](repeating: 1, count: 600)), (name: "k.b", data: [UInt8](repeating: 2, count: 600))]
        let writer = TarShardWriter(folder: folder, shardSize: 2 * 3072 + 1024, overwrite: false)
        for n in 0..<5 { try writer.add(key: "s\(n)", members: sample.map { (name: "s\(n)" + $0.name.dropFirst(), data: $0.data) }) }
        let shards = try writer.finish()
        XCTAssertEqual(shards.map(\.keys), [["s0", "s1"], ["s2", "s3"], ["s4"]])
        for shard in shards {
            let bytes = try Data(contentsOf: URL(fileURLWithPath: folder + "/" + shard.file))
            XCTAssertEqual(bytes.count, shard.bytes)
            XCTAssertLessThanOrEqual(bytes.count, 2 * 3072 + 1024)
            XCTAssertTrue(bytes.suffix(1024).allSatisfy { $0 == 0 })
        }
        // A sample bigger than the cap gets a shard of its own.
        let small = TarShardWriter(folder: folder + "/", shardSize: 1536, overwrite: true)
        try small.add(key: "big", members: sample)
        try small.add(key: "big2", members: sample)
        XCTAssertEqual(try small.finish().map(\.keys), [["big"], ["big2"]])
    }
}

private extension String {
    func leftPadded(_ width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
