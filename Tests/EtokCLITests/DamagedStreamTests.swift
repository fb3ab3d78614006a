import Foundation
import XCTest

/// Damaged and truncated `.etok` files through `decode`, `export` and `info`, on the built binary
/// with the tiny reference model (a 9-frame clip: three chunks of three blocks, made in well under
/// a second). By default damage is an error: exit 65, one line naming the file, the blocks and
/// why, and no output left. `--skip-damaged` writes what is readable, warns once per damaged range
/// and exits 0.
final class DamagedStreamTests: CLITestCase {
    private var model: String {
        CLI.repoRoot.appendingPathComponent("Tests/EtokModelTests/Fixtures/fsq_tiny_f32.safetensors").path
    }
    private var out: String { path("out") }
    /// The whole stream, and where its records start.
    private var whole = Data()
    private var records: [(type: String, offset: Int, length: Int)] = []

    override func setUpWithError() throws {
        try super.setUpWithError()
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: false)
        let clip = try makeClip("in.mp4", frames: 9)
        let r = try CLI.etok(["encode", clip, "-o", path("a.etok"), "--model", model, "-q", "--threshold", "0.2"])
        XCTAssertEqual(r.status, 0, r.stderr)
        whole = try Data(contentsOf: URL(fileURLWithPath: path("a.etok")))
        var p = 12
        while p + 8 <= whole.count {
            let length = Int(whole[p + 4]) | Int(whole[p + 5]) << 8 | Int(whole[p + 6]) << 16 | Int(whole[p + 7]) << 24
            records.append((String(decoding: whole[p..<(p + 4)], as: UTF8.self), p, length))
            p += 12 + length
        }
        XCTAssertEqual(records.map(\.type), ["HEAD", "CHNK", "CHNK", "CHNK", "INDX", "TAIL"], "fixture layout changed")
    }

    private var chunks: [(type: String, offset: Int, length: Int)] { records.filter { $0.type == "CHNK" } }

    /// The stream cut `bytes` into its third chunk (blocks 6–8 lost, no index).
    private func truncated() throws -> String {
        try whole.prefix(chunks[2].offset + 30).write(to: URL(fileURLWithPath: path("cut.etok")))
        return path("cut.etok")
    }

    /// The stream with one byte flipped inside the second chunk's token data (blocks 3–5).
    private func flipped() throws -> String {
        var bytes = whole
        bytes[chunks[1].offset + chunks[1].length] ^= 0x40
        try bytes.write(to: URL(fileURLWithPath: path("flip.etok")))
        return path("flip.etok")
    }

    /// Checks the refusal contract: exit 65, one line naming the file, saying `words`, nothing in out/.
    private func expectRefusal(_ arguments: [String], stdin: Any? = nil, naming name: String, saying words: [String],
                               file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try CLI.etok(arguments, stdin: stdin)
        XCTAssertEqual(r.status, 65, "\(arguments): \(r.stderr)", file: file, line: line)
        XCTAssertEqual(r.errorLines.count, 1, "\(arguments): \(r.stderr)", file: file, line: line)
        let message = r.errorLines.first ?? ""
        for word in [name] + words {
            XCTAssertTrue(message.contains(word), "\(message) should say \(word)", file: file, line: line)
        }
        XCTAssertFalse(message.contains("..<"), message, file: file, line: line)
        XCTAssertEqual(try files(in: out), [], "\(arguments): no output may be left behind", file: file, line: line)
    }

    /// Every output kind of decode and export, written into out/.
    private func everyOutput(_ input: String) -> [[String]] {
        let decode = ["decode", input, "--model", model, "-q", "-o"]
        return [decode + [out + "/x.y4m"], decode + [out + "/x.mp4"], decode + [out + "/x.rgb"],
                decode + [out + "/x.png", "--frames", "0:1"], decode + [out + "/f_%03d.png"],
                ["export", input, "-q", "-o", out + "/x.jsonl"], ["export", input, "-q", "--format", "npy", "-o", out + "/npy"]]
    }

    func testTruncatedFileIsAnErrorForEveryOutputAndLeavesNothing() throws {
        let cut = try truncated()
        for arguments in everyOutput(cut) where !arguments.contains("0:1") {
            try expectRefusal(arguments, naming: "cut.etok", saying: ["blocks 6 onwards", "truncated", "--skip-damaged"])
        }
        // A selection that needs only readable chunks decodes.
        let r = try CLI.etok(["decode", cut, "--frames", "0:6", "--model", model, "-q", "-o", path("first.y4m")])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(try y4mFrameCount(Data(contentsOf: URL(fileURLWithPath: path("first.y4m"))), width: 16, height: 16), 6)
    }

    func testFlippedByteIsAnErrorForEveryOutputAndLeavesNothing() throws {
        let flip = try flipped()
        for arguments in everyOutput(flip) {
            let wantsOnlyFirstChunk = arguments.contains("0:1")
            if wantsOnlyFirstChunk { continue }
            try expectRefusal(arguments, naming: "flip.etok", saying: ["blocks 3–5", "bad checksum", "offset \(chunks[1].offset)"])
        }
        let first = try CLI.etok(["decode", flip, "--model", model, "-q", "-o", path("x.png"), "--frames", "0:1"])
        XCTAssertEqual(first.status, 0, first.stderr)
        try expectRefusal(["decode", flip, "--model", model, "-q", "--time", "0.15:0.2", "-o", out + "/t.y4m"],
                          naming: "flip.etok", saying: ["blocks 3–5"])
    }

    func testSkipDamagedDecodesAndExportsTheRestWithOneWarningPerRange() throws {
        let flip = try flipped()
        let d = try CLI.etok(["decode", flip, "--model", model, "-q", "--skip-damaged", "-o", path("x.y4m")])
        XCTAssertEqual(d.status, 0, d.stderr)
        XCTAssertEqual(d.errorLines, ["etok: warning: skipped blocks 3–5 of \(flip): bad checksum (CRC) in CHNK record at offset \(chunks[1].offset)"])
        XCTAssertEqual(try y4mFrameCount(Data(contentsOf: URL(fileURLWithPath: path("x.y4m"))), width: 16, height: 16), 6)

        let j = try CLI.etok(["export", flip, "--skip-damaged", "-o", "-"])
        XCTAssertEqual(j.status, 0, j.stderr)
        XCTAssertEqual(j.errorLines.count, 2, j.stderr)  // the warning, then the summary
        XCTAssertTrue(j.errorLines[0].contains("skipped blocks 3–5"), j.stderr)
        XCTAssertTrue(j.errorLines[1].contains("exported 6 blocks") && j.errorLines[1].contains("skipped 1 damaged range"), j.stderr)
        let lines = String(decoding: j.stdout, as: UTF8.self).split(separator: "\n")
        let blocks = try lines.map { try XCTUnwrap((JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["block"] as? Int) }
        XCTAssertEqual(blocks, [0, 1, 2, 6, 7, 8])

        let n = try CLI.etok(["export", flip, "--skip-damaged", "--format", "npy", "-o", path("npy"), "-q"])
        XCTAssertEqual(n.status, 0, n.stderr)
        XCTAssertEqual(n.errorLines.count, 1, "-q keeps the warning: \(n.stderr)")
        XCTAssertEqual(try files(in: path("npy")), ["blocks.npy", "chunks.npy", "frames.npy", "lengths.npy", "pts.npy", "tokens.npy"])
        XCTAssertEqual(try int64NPY(path("npy/blocks.npy")), [0, 1, 2, 6, 7, 8])

        let cut = try truncated()
        let c = try CLI.etok(["decode", cut, "--model", model, "--skip-damaged", "-o", path("cut.y4m")])
        XCTAssertEqual(c.status, 0, c.stderr)
        XCTAssertTrue(c.errorLines.contains { $0.hasPrefix("etok: warning: skipped blocks 6 onwards of \(cut): truncated at offset") }, c.stderr)
        XCTAssertTrue(c.errorLines.contains("etok: decoded 6 frames to \(path("cut.y4m")); skipped 1 damaged range"), c.stderr)
    }

    func testThePlotLeavesDamagedBlocksEmptyAndSaysSo() throws {
        let flip = try flipped()
        let r = try CLI.etok(["info", flip, "--plot", path("p.svg")])
        XCTAssertEqual(r.status, 65, r.stderr)   // info reports damage, and still draws what it read
        let svg = try String(contentsOfFile: path("p.svg"), encoding: .utf8)
        XCTAssertTrue(svg.contains("damaged: blocks 3–5"), svg)
        // Bars of blocks 0-2 and 6-8 (9 frames at 25 fps: 0.04 s apart); none spans the gap 0.12-0.24 s.
        let bars = svg.split(separator: "\n").filter { $0.hasPrefix("<rect class=") && $0.contains("<title>block") }
        XCTAssertEqual(bars.count, 6)
        func number(_ name: String, _ line: Substring) -> Double {
            Double(line.components(separatedBy: "\(name)=\"")[1].prefix { $0 != "\"" })!
        }
        let block2 = try XCTUnwrap(bars.first { $0.contains("<title>block 2:") })
        let block6 = try XCTUnwrap(bars.first { $0.contains("<title>block 6:") })
        XCTAssertLessThan(number("x", block2) + number("width", block2), number("x", block6) - 1)
    }

    func testAStreamWithNoReadableChunkIsAnErrorEvenWhenSkipping() throws {
        try whole.prefix(chunks[0].offset + 5).write(to: URL(fileURLWithPath: path("head.etok")))
        for arguments in everyOutput(path("head.etok")) where !arguments.contains("0:1") {
            try expectRefusal(arguments + ["--skip-damaged"], naming: "head.etok", saying: ["blocks 0 onwards", "no readable"])
        }
    }

    func testDamageOnStdinIsAnErrorThatLeavesNoFile() throws {
        let flip = try flipped()
        try expectRefusal(["decode", "-", "--model", model, "-q", "-o", out + "/x.y4m"],
                          stdin: try FileHandle(forReadingFrom: URL(fileURLWithPath: flip)), naming: "stdin", saying: ["blocks 3–5"])
        try expectRefusal(["export", "-", "-q", "-o", out + "/x.jsonl"],
                          stdin: try FileHandle(forReadingFrom: URL(fileURLWithPath: flip)), naming: "stdin", saying: ["blocks 3–5"])
        let d = try CLI.etok(["decode", "-", "--model", model, "-q", "--skip-damaged", "-o", path("x.rgb")],
                             stdin: try FileHandle(forReadingFrom: URL(fileURLWithPath: flip)))
        XCTAssertEqual(d.status, 0, d.stderr)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path("x.rgb"))).count, 6 * 16 * 16 * 3)
        XCTAssertTrue(d.stderr.contains("skipped blocks 3–5 of stdin"), d.stderr)
    }

    func testInfoReportsTheRealSizeOnStdinAndPointsAtSkipDamaged() throws {
        let r = try CLI.etok(["info", "-", "--json"], stdin: try FileHandle(forReadingFrom: URL(fileURLWithPath: path("a.etok"))))
        XCTAssertEqual(r.status, 0, r.stderr)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: r.stdout) as? [String: Any])
        XCTAssertEqual(object["bytes"] as? Int, whole.count)
        XCTAssertGreaterThan(object["bits_per_token"] as? Double ?? 0, 0)
        let text = try CLI.etok(["info", "-"], stdin: try FileHandle(forReadingFrom: URL(fileURLWithPath: path("a.etok"))))
        XCTAssertTrue(String(decoding: text.stdout, as: UTF8.self).contains("stdin (\(whole.count) bytes)"))

        let flip = try flipped()
        let damaged = try CLI.etok(["info", flip])
        XCTAssertEqual(damaged.status, 65)
        let shown = String(decoding: damaged.stdout, as: UTF8.self)
        XCTAssertTrue(shown.contains("damaged:   blocks 3–5 unreadable: bad checksum"), shown)
        XCTAssertEqual(damaged.errorLines.count, 1, damaged.stderr)
        XCTAssertTrue(damaged.stderr.contains(flip) && damaged.stderr.contains("--skip-damaged"), damaged.stderr)
    }

    func testABadTailChecksumIsReportedAsSuchNotAsATruncation() throws {
        var bytes = whole
        bytes[bytes.count - 1] ^= 0x01  // the TAIL's CRC
        try bytes.write(to: URL(fileURLWithPath: path("tail.etok")))
        let r = try CLI.etok(["info", path("tail.etok")])
        XCTAssertEqual(r.status, 65)
        let shown = String(decoding: r.stdout, as: UTF8.self)
        XCTAssertTrue(shown.contains("bad checksum (CRC) in TAIL record at offset \(records[5].offset)"), shown)
        XCTAssertFalse(shown.contains("truncated"), shown)
        try expectRefusal(["export", path("tail.etok"), "-o", out + "/x.jsonl"], naming: "tail.etok", saying: ["no blocks lost"])
        let kept = try CLI.etok(["export", path("tail.etok"), "--skip-damaged", "-o", "-", "-q"])
        XCTAssertEqual(kept.status, 0, kept.stderr)
        XCTAssertEqual(String(decoding: kept.stdout, as: UTF8.self).split(separator: "\n").count, 9)
    }

    func testNPYExportWantsAFolderWhoseParentExists() throws {
        let input = path("a.etok")
        let named = try CLI.etok(["export", input, "--format", "npy", "-o", out + "/x.npy"])
        XCTAssertEqual(named.status, 64, named.stderr)
        XCTAssertTrue(named.stderr.contains("folder"), named.stderr)
        let deep = try CLI.etok(["export", input, "--format", "npy", "-o", out + "/no/such/dir"])
        XCTAssertEqual(deep.status, 73, deep.stderr)
        XCTAssertTrue(deep.stderr.contains("no folder"), deep.stderr)
        let jsonl = try CLI.etok(["export", input, "-o", out + "/no/x.jsonl"])
        XCTAssertEqual(jsonl.status, 73, jsonl.stderr)
        XCTAssertTrue(jsonl.stderr.contains("no folder"), jsonl.stderr)
        XCTAssertEqual(try files(in: out), [])
        try Data("a file".utf8).write(to: URL(fileURLWithPath: path("plain")))
        XCTAssertEqual(try CLI.etok(["export", input, "--format", "npy", "-o", path("plain")]).status, 73)

        let made = try CLI.etok(["export", input, "--format", "npy", "-o", out + "/tokens", "-q"])
        XCTAssertEqual(made.status, 0, made.stderr)
        XCTAssertEqual(try files(in: out + "/tokens"), ["blocks.npy", "chunks.npy", "frames.npy", "lengths.npy", "pts.npy", "tokens.npy"])
        XCTAssertEqual(try int64NPY(out + "/tokens/blocks.npy"), Array(0..<9))
        XCTAssertEqual(try CLI.etok(["export", input, "--format", "npy", "-o", out + "/tokens"]).status, 73)
        XCTAssertEqual(try CLI.etok(["export", input, "--format", "npy", "-o", out + "/tokens", "-y", "-q"]).status, 0)
    }

    func testMessagesUseWordsNotSwiftSyntax() throws {
        let none = try CLI.etok(["decode", path("a.etok"), "--frames", "100:", "--model", model, "-o", path("x.y4m")])
        XCTAssertNotEqual(none.status, 0)
        XCTAssertTrue(none.stderr.contains("a.etok") && !none.stderr.contains("in.mp4"), none.stderr)
        try whole.prefix(records[4].offset + 20).write(to: URL(fileURLWithPath: path("index.etok")))
        let info = try CLI.etok(["info", path("index.etok")])
        let shown = String(decoding: info.stdout, as: UTF8.self)
        XCTAssertTrue(shown.contains("inside an INDX record") && shown.contains("(no blocks lost)"), shown)
        let one = try CLI.etok(["decode", path("a.etok"), "--frames", "0:1", "--model", model, "-o", path("one.png")])
        XCTAssertTrue(one.stderr.contains("decoded 1 frame to"), one.stderr)
        try whole.prefix(chunks[1].offset).write(to: URL(fileURLWithPath: path("first.etok")))
        let single = try CLI.etok(["export", path("first.etok"), "--skip-damaged", "-o", path("x.jsonl")])
        XCTAssertTrue(single.stderr.contains("exported 3 blocks"), single.stderr)
        let shownInfo = String(decoding: try CLI.etok(["info", path("first.etok")]).stdout, as: UTF8.self)
        XCTAssertFalse(shownInfo.contains("..<"), shownInfo)
    }
}

/// The values of a 1-D little-endian int64 .npy file.
func int64NPY(_ path: String) throws -> [Int] {
    let data = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    let headerLength = Int(data[8]) | Int(data[9]) << 8
    let header = String(decoding: data[10..<(10 + headerLength)], as: UTF8.self)
    XCTAssertTrue(header.contains("'<i8'"), header)
    return stride(from: 10 + headerLength, to: data.count, by: 8).map { i in
        (0..<8).reduce(0) { $0 | Int(data[i + $1]) << (8 * $1) }
    }
}
