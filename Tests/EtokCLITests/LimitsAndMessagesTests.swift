import Foundation
import XCTest

/// Inputs and arguments that once cost unbounded memory or said the wrong thing: one clear line and
/// the documented status.
final class LimitsAndMessagesTests: CLITestCase {
    var model: String { CLI.repoRoot.appendingPathComponent("Tests/EtokModelTests/Fixtures/fsq_tiny_f32.safetensors").path }

    func testAnImportLineLongerThanAnyBlockIsRefusedWithoutReadingItWhole() throws {
        // 40 MB of one JSON line, then a valid block: refused at the long line (65), nothing written.
        var text = "{\"tokens\":[" + String(repeating: "1,", count: 20_000_000) + "1]}\n"
        text += "{\"tokens\":[1,2]}\n"
        try Data(text.utf8).write(to: URL(fileURLWithPath: path("big.jsonl")))
        let r = try CLI.etok(["import", path("big.jsonl"), "-o", path("big.etok"), "--model", model])
        XCTAssertEqual(r.status, 65, r.stderr)
        XCTAssertEqual(r.errorLines.count, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("big.jsonl: line 1: longer than 4 MiB"), r.stderr)
        XCTAssertEqual(try files(), ["big.jsonl"])
        // Lines split across the reader's 64 KiB pieces still import.
        let blocks = (0..<3000).map { "{\"tokens\":[\($0 % 64),2,3]}" }.joined(separator: "\n")
        try Data(blocks.utf8).write(to: URL(fileURLWithPath: path("many.jsonl")))   // no final newline
        let ok = try CLI.etok(["import", path("many.jsonl"), "-o", path("many.etok"), "--model", model, "-q"])
        XCTAssertEqual(ok.status, 0, ok.stderr)
        let info = try CLI.etok(["info", path("many.etok"), "--json"])
        let report = try XCTUnwrap(JSONSerialization.jsonObject(with: info.stdout) as? [String: Any])
        XCTAssertEqual(report["blocks"] as? Int, 3000)
    }

    func testThreadCountsAreBounded() throws {
        let clip = try makeClip("in.mp4", frames: 2)
        for arguments in [["encode", clip, "-o", path("a.etok")], ["decode", path("a.etok"), "-o", path("a.y4m")],
                          ["model", "bench"]] {
            let r = try CLI.etok(arguments + ["--threads", "100000"])
            XCTAssertEqual(r.status, 64, "\(arguments): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains("--threads must be from 1 to"), r.stderr)
        }
    }

    func testRangesStartingWithAMinusGetARealMessage() throws {
        let clip = try makeClip("in.mp4", frames: 4)
        let e = try CLI.etok(["encode", clip, "-o", path("a.etok"), "--model", model, "--fixed", "4", "-q"])
        XCTAssertEqual(e.status, 0, e.stderr)
        let frames = try CLI.etok(["decode", path("a.etok"), "-o", path("f.y4m"), "--model", model, "--frames", "-1:"])
        XCTAssertEqual(frames.status, 64, frames.stderr)
        XCTAssertTrue(frames.stderr.contains("--frames takes A:B with 0 ≤ A < B"), frames.stderr)
        // A time range may start below zero (MPEG-TS clocks): this one holds every frame.
        let time = try CLI.etok(["decode", path("a.etok"), "-o", path("t.y4m"), "--model", model, "--time", "-1e308:1e308", "-q"])
        XCTAssertEqual(time.status, 0, time.stderr)
        XCTAssertEqual(try y4mFrameCount(Data(contentsOf: URL(fileURLWithPath: path("t.y4m"))), width: 16, height: 16), 4)
    }

    func testAVideoCutInsideItsHeaderIsNotCalledEmpty() throws {
        let clip = try makeClip("in.mkv", frames: 2)
        let cut = try Data(contentsOf: URL(fileURLWithPath: clip)).prefix(47)
        try cut.write(to: URL(fileURLWithPath: path("cut.mkv")))
        let r = try CLI.etok(["encode", path("cut.mkv"), "-o", path("a.etok")])
        XCTAssertEqual(r.status, 65, r.stderr)
        XCTAssertTrue(r.stderr.contains("cut.mkv: not a video file FFmpeg can read (it ends inside its header, after 47 bytes"),
                      r.stderr)
    }

    func testAnUnknownOptionIsAUsageErrorEvenWhenItHoldsAnH() throws {
        let clip = try makeClip("in.mp4", frames: 2)
        for option in ["-hide_banner", "-nostdin"] {
            let r = try CLI.etok(["encode", clip, "-o", path("x.etok"), option])
            XCTAssertEqual(r.status, 64, "\(option): \(r.stderr)")
            XCTAssertEqual(r.errorLines.count, 1, "\(option): \(r.stderr)")
            XCTAssertTrue(r.stdout.isEmpty, "\(option): help printed")
        }
        XCTAssertTrue(try CLI.etok(["encode", clip, "-o", path("x.etok"), "-hide_banner"]).stderr
            .contains("unknown option '-hide_banner'"))
        XCTAssertEqual(try CLI.etok(["encode", "-h"]).status, 0)
        XCTAssertEqual(try files(), ["in.mp4"])
    }
}
