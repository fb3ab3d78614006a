import Foundation
import XCTest

/// Repeat blocks end to end with the default model (docs/etok-format.md §5): a static shot made from
/// a held-out sample costs 0 tokens after each chunk's first frame at the default threshold, the
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

    func testAStaticShotCostsNothingAfterEachChunksFirstFrameAndSurvivesExportAndImport() throws {
        let clip = try staticClip(frames: 6)
        let e = try CLI.etok(["encode", clip, "-o", path("s.etok"), "--chunk", "3", "--stats", path("s.json")])
        XCTAssertEqual(e.status, 0, e.stderr)
        XCTAssertTrue(e.stderr.contains("4 repeat frames (67%, 0 tokens each)"), e.stderr)
        XCTAssertEqual(try version(path("s.etok")), [1, 0, 2, 0])
        let report = try info(path("s.etok"))
        let threshold = try XCTUnwrap(report["threshold"] as? Double)
        let blocks = try XCTUnwrap(report["per_block"] as? [[String: Any]])
        XCTAssertEqual(blocks.count, 6)
        for (i, b) in blocks.enumerated() {
            let kept = try XCTUnwrap(b["kept"] as? Int), mse = try XCTUnwrap(b["mse"] as? Double)
            XCTAssertLessThanOrEqual(mse, threshold, "block \(i) misses the default threshold")
            XCTAssertEqual(b["repeat"] as? Bool, i % 3 != 0, "block \(i)")
            if i % 3 == 0 { XCTAssertGreaterThan(kept, 0) } else { XCTAssertEqual(kept, 0, "block \(i)") }
        }
        XCTAssertEqual((report["repeat_blocks"] as? [String: Any])?["count"] as? Int, 4)
        XCTAssertEqual((report["encoding"] as? [String: Any])?["repeat_blocks"] as? Bool, true)
        let stats = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path("s.json")))) as? [String: Any])
        XCTAssertEqual(stats["repeat_blocks"] as? Int, 4)
        let text = try CLI.etok(["info", path("s.etok"), "--blocks"])
        XCTAssertTrue(String(decoding: text.stdout, as: UTF8.self).contains("repeats:   4 of 6 blocks"), String(decoding: text.stdout, as: UTF8.self))

        // Every decoded frame is the chunk's first frame again, exactly.
        let frames = try decode(path("s.etok"))
        let frameBytes = 128 * 128 * 3
        XCTAssertEqual(frames.count, 6 * frameBytes)
        for i in 0..<6 {
            XCTAssertEqual(frames[(i * frameBytes)..<((i + 1) * frameBytes)], frames[(i / 3 * 3 * frameBytes)..<((i / 3 * 3 + 1) * frameBytes)])
        }

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
        XCTAssertTrue(lines[1].hasSuffix("\"kept\":0,\"tokens\":[]}"), String(lines[1]))
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

    func testImportRefusesARepeatBlockAtTheStreamsStart() throws {
        try #"{"block":0,"chunk":0,"time":0.0,"frames":1,"kept":0,"tokens":[]}"#.write(toFile: path("r.jsonl"), atomically: true, encoding: .utf8)
        let r = try CLI.etok(["import", path("r.jsonl"), "-o", path("r.etok")])
        XCTAssertEqual(r.status, 65, r.stderr)
        XCTAssertEqual(r.errorLines.count, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("r.jsonl: line 1: kept 0 (a repeat block) starts the stream"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("r.etok")))
    }
}
