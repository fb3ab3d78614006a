import Foundation
import XCTest

/// Repeat blocks end to end with the default model (docs/etok-format.md §5): a static shot made from
/// a held-out sample costs 0 tokens after its first frame at the default threshold, the
/// tokens survive export → import → decode bit for bit, and `--no-repeat` / `--fixed` write none.
final class RepeatCommandTests: CLITestCase {
    /// A still frame of Samples/bikes.mp4 repeated `frames` times, losslessly (FFV1), so every frame
    /// the model sees is the same.
    func staticClip(frames: Int) throws -> String {
        guard let bikes = CLI.sample("bikes.mp4") else { throw XCTSkip("Samples/bikes.mp4 missing") }
        try CLI.ffmpegFile(["-ss", "4", "-i", bikes, "-frames:v", "1"], path("still.png"))
        try CLI.ffmpegFile(["-loop", "1", "-framerate", "25", "-i", path("still.png"), "-frames:v", "\(frames)",
                            "-c:v", "ffv1"], path("static.mkv"))
        return path("static.mkv")
    }

    func info(_ file: String) throws -> [String: Any] {
        let r = try CLI.etok(["info", file, "--json", "--blocks"])
        XCTAssertEqual(r.status, 0, r.stderr)
        return try XCTUnwrap(JSONSerialization.jsonObject(with: r.stdout) as? [String: Any])
    }

    func decode(_ etok: String) throws -> Data {
        let out = path(UUID().uuidString + ".rgb")
        let d = try CLI.etok(["decode", etok, "-o", out, "-q"])
        XCTAssertEqual(d.status, 0, d.stderr)
        return try Data(contentsOf: URL(fileURLWithPath: out))
    }

    func version(_ file: String) throws -> [UInt8] {
        Array(try Data(contentsOf: URL(fileURLWithPath: file))[8..<12])
    }

    /// Chunks of 4 (the default model's context): chunk 1 is all repeats, chunk 2 one repeat, both
    /// of the previous chunk's last frame (§5), so every frame after the first costs 0 tokens.
    func testAStaticShotCostsNothingAfterItsFirstFrameAndSurvivesExportAndImport() throws {
        let clip = try staticClip(frames: 9)
        let e = try CLI.etok(["encode", clip, "-o", path("s.etok"), "--stats", path("s.json")])
        XCTAssertEqual(e.status, 0, e.stderr)
        XCTAssertTrue(e.stderr.contains("8 repeat frames (89%, 0 tokens each)"), e.stderr)
        XCTAssertEqual(try version(path("s.etok")), [1, 0, 2, 0])
        let report = try info(path("s.etok"))
        let threshold = try XCTUnwrap(report["threshold"] as? Double)
        let blocks = try XCTUnwrap(report["per_block"] as? [[String: Any]])
        XCTAssertEqual(blocks.count, 9)
        XCTAssertEqual(report["chunks"] as? Int ?? (report["chunk_count"] as? Int) ?? 3, 3)
        for (i, b) in blocks.enumerated() {
            let kept = try XCTUnwrap(b["kept"] as? Int), mse = try XCTUnwrap(b["mse"] as? Double)
            XCTAssertLessThanOrEqual(mse, threshold, "block \(i) misses the default threshold")
            XCTAssertEqual(b["repeat"] as? Bool, i != 0, "block \(i)")
            if i == 0 { XCTAssertGreaterThan(kept, 0) } else { XCTAssertEqual(kept, 0, "block \(i)") }
        }
        XCTAssertEqual((report["repeat_blocks"] as? [String: Any])?["count"] as? Int, 8)
        XCTAssertEqual((report["encoding"] as? [String: Any])?["repeat_blocks"] as? Bool, true)
        let stats = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path("s.json")))) as? [String: Any])
        XCTAssertEqual(stats["repeat_blocks"] as? Int, 8)
        let statBlocks = try XCTUnwrap(stats["per_block"] as? [[String: Any]])
        XCTAssertEqual(statBlocks.map { $0["kept"] as? Int }, blocks.map { $0["kept"] as? Int })
        let text = try CLI.etok(["info", path("s.etok"), "--blocks"])
        XCTAssertTrue(String(decoding: text.stdout, as: UTF8.self).contains("repeats:   8 of 9 blocks"), String(decoding: text.stdout, as: UTF8.self))

        // Every decoded frame is the first frame's reconstruction again, exactly.
        let frames = try decode(path("s.etok"))
        let frameBytes = 128 * 128 * 3
        XCTAssertEqual(frames.count, 9 * frameBytes)
        let first = frames[0..<frameBytes]
        for i in 1..<9 { XCTAssertEqual(frames[(i * frameBytes)..<((i + 1) * frameBytes)], first, "frame \(i)") }

        // export → import → decode: the same frames; repeat blocks are kept 0 with no tokens.
        for format in ["jsonl", "npy"] {
            let out = path(format == "npy" ? "s_npy" : "s.jsonl")
            let x = try CLI.etok(["export", path("s.etok"), "--format", format, "-o", out, "-q"])
            XCTAssertEqual(x.status, 0, x.stderr)
            let i = try CLI.etok(["import", out, "-o", path("i-\(format).etok"), "-q"])
            XCTAssertEqual(i.status, 0, i.stderr)
            XCTAssertEqual(try decode(path("i-\(format).etok")), frames, format)
            XCTAssertEqual(try version(path("i-\(format).etok")), [1, 0, 2, 0])
        }
        let lines = try String(contentsOfFile: path("s.jsonl"), encoding: .utf8).split(separator: "\n")
        XCTAssertTrue(lines[4].hasSuffix("\"kept\":0,\"tokens\":[]}"), String(lines[4]))

        // A range starting inside chunk 1 (all repeats) or at chunk 2 decodes back from chunk 0,
        // from a file and from a pipe, and gives the frames the whole decode gives.
        for (args, from) in [(["--time", "0.2:"], 5), (["--frames", "8:"], 8), (["--frames", "4:6"], 4)] {
            let upper = args[1].hasSuffix(":") ? 9 : 6
            let want = frames[(from * frameBytes)..<(upper * frameBytes)]
            let out = path(UUID().uuidString + ".rgb")
            let d = try CLI.etok(["decode", path("s.etok"), "-o", out, "-q"] + args)
            XCTAssertEqual(d.status, 0, d.stderr)
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: out)), want, "\(args)")
            let piped = path(UUID().uuidString + ".rgb")
            let p = try CLI.etok(["decode", "-", "-o", piped, "-q"] + args, stdin: FileHandle(forReadingAtPath: path("s.etok")))
            XCTAssertEqual(p.status, 0, p.stderr)
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: piped)), want, "pipe \(args)")
        }

        // Chunk 1 damaged: its blocks and chunk 2's leading repeat (of chunk 1's last frame) are
        // lost; by default decode refuses, --skip-damaged warns once per range.
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path("s.etok")))
        let marker = Data("CHNK".utf8)
        let chunk0 = try XCTUnwrap(bytes.range(of: marker))
        let chunk1 = try XCTUnwrap(bytes.range(of: marker, in: chunk0.upperBound..<bytes.count))
        bytes[chunk1.upperBound + 8] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: path("d.etok")))
        let refused = try CLI.etok(["decode", path("d.etok"), "-o", path("d.rgb"), "-q"])
        XCTAssertEqual(refused.status, 65, refused.stderr)
        let skipped = try CLI.etok(["decode", path("d.etok"), "-o", path("d.rgb"), "--skip-damaged"])
        XCTAssertEqual(skipped.status, 0, skipped.stderr)
        XCTAssertTrue(skipped.stderr.contains("skipped blocks 4–7 of"), skipped.stderr)
        XCTAssertTrue(skipped.stderr.contains("skipped block 8 of \(path("d.etok")): repeat blocks of block 7's last frame, which is lost"), skipped.stderr)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path("d.rgb"))), frames[0..<(4 * frameBytes)])
    }

    func testNoRepeatAndFixedBudgetsWriteNoRepeatBlocks() throws {
        let clip = try staticClip(frames: 3)
        for (name, extra) in [("off", ["--no-repeat"]), ("fixed", ["--fixed", "32"])] {
            let e = try CLI.etok(["encode", clip, "-o", path("\(name).etok"), "-q"] + extra)
            XCTAssertEqual(e.status, 0, e.stderr)
            XCTAssertEqual(try version(path("\(name).etok")), [1, 0, 1, 0], name)
            let blocks = try XCTUnwrap(try info(path("\(name).etok"))["per_block"] as? [[String: Any]])
            XCTAssertTrue(blocks.allSatisfy { ($0["kept"] as? Int ?? 0) > 0 && $0["repeat"] as? Bool == false }, name)
        }
    }

    /// A batch's summary.json and closing line, and `etok info`'s table over several files, count
    /// repeat blocks as the single-file `info` does.
    func testBatchSummaryAndTheInfoTableCountRepeatBlocks() throws {
        let still = try staticClip(frames: 6)
        let moving = try makeClip("moving.mp4", frames: 3, size: "64x48")
        let b = try CLI.etok(["encode", still, moving, "-o", path("out") + "/", "--chunk", "3"], timeout: 180)
        XCTAssertEqual(b.status, 0, b.stderr)
        let outputs = [still, moving].map { path("out") + "/@root" + $0 + ".etok" }
        let counts = try outputs.map { try XCTUnwrap((try info($0)["repeat_blocks"] as? [String: Any])?["count"] as? Int) }
        XCTAssertEqual(counts[0], 5)   // every frame after the first, across the chunk start
        let summary = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path("out/summary.json"))))
                                    as? [String: Any])
        XCTAssertEqual(summary["repeat_blocks"] as? Int, counts[0] + counts[1])
        XCTAssertEqual(summary["blocks"] as? Int, 9)
        XCTAssertTrue(b.stderr.contains("(\(counts[0] + counts[1]) repeat blocks, "), b.stderr)

        let table = try CLI.etok(["info"] + outputs)
        XCTAssertEqual(table.status, 0, table.stderr)
        let rows = String(decoding: table.stdout, as: UTF8.self).split(separator: "\n").map { $0.split(separator: " ") }
        XCTAssertEqual(rows.count, 4)   // heading, two files, totals
        let column = try XCTUnwrap(rows[0].firstIndex(of: "repeats"))
        XCTAssertEqual(rows[1][column], "\(counts[0])")
        XCTAssertEqual(rows[2][column], "\(counts[1])")
        XCTAssertEqual(rows[3][column + 2], "\(counts[0] + counts[1])")   // "total: 2 files" is three words
    }

    func testImportRefusesARepeatBlockAtTheStreamsStart() throws {
        try #"{"block":0,"chunk":0,"time":0.0,"frames":1,"kept":0,"tokens":[]}"#.write(toFile: path("r.jsonl"), atomically: true, encoding: .utf8)
        let r = try CLI.etok(["import", path("r.jsonl"), "-o", path("r.etok")])
        XCTAssertEqual(r.status, 65, r.stderr)
        XCTAssertEqual(r.errorLines.count, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("r.jsonl: line 1: kept 0 (a repeat block) starts the stream"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("r.etok")))
    }
}
