import Foundation
import XCTest

/// `etok encode`, `decode`, `info` and `export` on the built binary, with the tiny reference model
/// of the engine's fixtures (16×16 frames, 16 tokens per frame), so they run in seconds.
final class CodecCommandTests: CLITestCase {
    var model: String { CLI.repoRoot.appendingPathComponent("Tests/EtokModelTests/Fixtures/fsq_tiny_f32.safetensors").path }

    func encode(_ input: String, _ output: String, _ extra: [String] = [], stdin: Any? = nil) throws -> CLI.Result {
        let threshold = extra.contains("--fixed") ? [] : ["--threshold", "0.2"]
        return try CLI.etok(["encode", input, "-o", output, "--model", model, "-q"] + threshold + extra, stdin: stdin)
    }

    func info(_ file: String) throws -> [String: Any] {
        let r = try CLI.etok(["info", file, "--json", "--blocks"])
        XCTAssertEqual(r.status, 0, r.stderr)
        return try XCTUnwrap(JSONSerialization.jsonObject(with: r.stdout) as? [String: Any])
    }

    func testEncodeSaysWhenTheModelCannotReachTheThreshold() throws {
        let clip = try makeClip("in.mp4", frames: 8)
        // 80 dB is beyond the tiny model on every frame: all keep every token and miss.
        let strict = try CLI.etok(["encode", clip, "-o", path("s.etok"), "--model", model, "--psnr", "80"])
        XCTAssertEqual(strict.status, 0, strict.stderr)
        let hint = try XCTUnwrap(strict.errorLines.first { $0.contains("missed the threshold") }, strict.stderr)
        XCTAssertTrue(hint.contains("8 of 8 frames") && hint.contains("with 16 tokens") && hint.contains("--psnr "), hint)
        // The suggested target is one that 95% of the frames do reach: encoding with it, all but
        // at most 5% meet it.
        let suggested = try XCTUnwrap(hint.components(separatedBy: "--psnr ").last?.split(separator: " ").first)
        let again = try CLI.etok(["encode", clip, "-o", path("t.etok"), "--model", model, "--psnr", String(suggested), "-y"])
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertFalse(again.stderr.contains("missed the threshold"), again.stderr)
        XCTAssertGreaterThanOrEqual(try info(path("t.etok"))["share_meeting_threshold"] as? Double ?? 0, 0.95)
        // A loose threshold and fixed budgets say nothing of it.
        for extra in [["--threshold", "3.9"], ["--fixed", "4"]] {
            let r = try CLI.etok(["encode", clip, "-o", path("u.etok"), "--model", model, "-y"] + extra)
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertFalse(r.stderr.contains("missed the threshold"), r.stderr)
        }
    }

    func testEncodeThenDecodeRoundTripsEveryFrame() throws {
        let clip = try makeClip("in.mp4", frames: 12)
        let r = try encode(clip, path("a.etok"), ["--stats", path("stats.json")])
        XCTAssertEqual(r.status, 0, r.stderr)
        let report = try info(path("a.etok"))
        XCTAssertEqual(report["frames"] as? Int, 12)
        XCTAssertEqual((report["health"] as? [String: Any])?["complete"] as? Bool, true)
        XCTAssertEqual(report["max_tokens"] as? Int, 16)
        XCTAssertEqual(report["threshold"] as? Double ?? 0, 0.2, accuracy: 1e-6)
        // The stats file agrees with the stream.
        let stats = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path("stats.json")))) as? [String: Any])
        let perBlock = try XCTUnwrap(stats["per_block"] as? [[String: Any]])
        let blocks = try XCTUnwrap(report["per_block"] as? [[String: Any]])
        XCTAssertEqual(perBlock.map { $0["kept"] as? Int }, blocks.map { $0["kept"] as? Int })

        let d = try CLI.etok(["decode", path("a.etok"), "-o", path("out.y4m"), "--model", model, "-q"])
        XCTAssertEqual(d.status, 0, d.stderr)
        let y4m = try Data(contentsOf: URL(fileURLWithPath: path("out.y4m")))
        XCTAssertEqual(try y4mFrameCount(y4m, width: 16, height: 16), 12)
        XCTAssertTrue(String(decoding: y4m.prefix(40), as: UTF8.self).contains("W16 H16"))
    }

    func testSameInputGivesByteIdenticalStreams() throws {
        let clip = try makeClip("in.mp4", frames: 8)
        XCTAssertEqual(try encode(clip, path("a.etok")).status, 0)
        XCTAssertEqual(try encode(clip, path("b.etok")).status, 0)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path("a.etok"))),
                       try Data(contentsOf: URL(fileURLWithPath: path("b.etok"))))
    }

    func testParallelChunkEncodingGivesTheSameBytes() throws {
        let clip = try makeClip("in.mp4", frames: 14)  // 5 chunks of 3 blocks, the last partial
        XCTAssertEqual(try encode(clip, path("one.etok"), ["--threads", "1"]).status, 0)
        XCTAssertEqual(try encode(clip, path("three.etok"), ["--threads", "3"]).status, 0)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path("one.etok"))),
                       try Data(contentsOf: URL(fileURLWithPath: path("three.etok"))))
        XCTAssertEqual(try info(path("three.etok"))["frames"] as? Int, 14)
        // Decoding in parallel gives the same frames too.
        for threads in ["1", "3"] {
            let d = try CLI.etok(["decode", path("one.etok"), "-o", path("d\(threads).rgb"), "--model", model,
                                  "--threads", threads, "-q"])
            XCTAssertEqual(d.status, 0, d.stderr)
        }
        let rgb = try Data(contentsOf: URL(fileURLWithPath: path("d1.rgb")))
        XCTAssertEqual(rgb.count, 14 * 16 * 16 * 3)
        XCTAssertEqual(rgb, try Data(contentsOf: URL(fileURLWithPath: path("d3.rgb"))))
    }

    /// A copy of the tiny model with `etok_threshold` set in its safetensors metadata.
    func calibratedModel(threshold: String) throws -> String {
        let bytes = try Data(contentsOf: URL(fileURLWithPath: model))
        let length = Int(bytes.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        var header = try XCTUnwrap(JSONSerialization.jsonObject(with: bytes.subdata(in: 8..<(8 + length))) as? [String: Any])
        var metadata = header["__metadata__"] as? [String: String] ?? [:]
        metadata["etok_threshold"] = threshold
        header["__metadata__"] = metadata
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        json.append(contentsOf: Array(repeating: UInt8(ascii: " "), count: (8 - json.count % 8) % 8))
        var out = Data()
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(json)
        out.append(bytes.subdata(in: (8 + length)..<bytes.count))
        let path = path("calibrated.safetensors")
        try out.write(to: URL(fileURLWithPath: path))
        return path
    }

    func testEncoderDefaultsToTheModelsCalibratedThreshold() throws {
        let calibrated = try calibratedModel(threshold: "0.25")
        let shown = try CLI.etok(["model", "info", calibrated])
        XCTAssertEqual(shown.status, 0, shown.stderr)
        XCTAssertTrue(String(decoding: shown.stdout, as: UTF8.self).contains("threshold   0.25"))
        let clip = try makeClip("in.mp4", frames: 3)
        let r = try CLI.etok(["encode", clip, "-o", path("c.etok"), "--model", calibrated, "-q"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(try info(path("c.etok"))["threshold"] as? Double ?? 0, 0.25, accuracy: 1e-6)
        let bad = try calibratedModel(threshold: "-1")
        let refused = try CLI.etok(["encode", clip, "-o", path("d.etok"), "--model", bad])
        XCTAssertEqual(refused.status, 65, refused.stderr)
        XCTAssertTrue(refused.stderr.contains("etok_threshold"), refused.stderr)
    }

    func testPipesInAndOut() throws {
        let (ffmpeg, pipe) = try CLI.ffmpegPipe(["-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10", "-frames:v", "6", "-f", "nut"])
        let r = try encode("-", "-", stdin: pipe)
        ffmpeg.waitUntilExit()
        XCTAssertEqual(r.status, 0, r.stderr)
        try r.stdout.write(to: URL(fileURLWithPath: path("p.etok")))
        XCTAssertEqual(try info(path("p.etok"))["frames"] as? Int, 6)
        // And the stream read back from stdin decodes to y4m on stdout.
        let input = try FileHandle(forReadingFrom: URL(fileURLWithPath: path("p.etok")))
        let d = try CLI.etok(["decode", "-", "-o", "-", "--model", model, "-q"], stdin: input)
        XCTAssertEqual(d.status, 0, d.stderr)
        XCTAssertTrue(d.stdout.starts(with: Array("YUV4MPEG2".utf8)))
    }

    func testDecodeSelectsFramesWithTheIndex() throws {
        let clip = try makeClip("in.mp4", frames: 10)
        XCTAssertEqual(try encode(clip, path("a.etok")).status, 0)
        let d = try CLI.etok(["decode", path("a.etok"), "--frames", "4:7", "-o", path("f_%02d.png"), "--model", model, "-q"])
        XCTAssertEqual(d.status, 0, d.stderr)
        XCTAssertEqual(try files().filter { $0.hasSuffix(".png") }, ["f_01.png", "f_02.png", "f_03.png"])
    }

    func testStillImageIsOneBlockAndDecodesAtAnyScale() throws {
        try CLI.ffmpegFile(["-f", "lavfi", "-i", "testsrc2=size=96x64", "-frames:v", "1"], path("still.png"))
        let r = try encode(path("still.png"), path("s.etok"))
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(try info(path("s.etok"))["frames"] as? Int, 1)
        let d = try CLI.etok(["decode", path("s.etok"), "--scale", "48x32", "-o", path("back.png"), "--model", model, "-q"])
        XCTAssertEqual(d.status, 0, d.stderr)
        let probe = try CLI.etok(["probe", path("back.png"), "--json"])
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: probe.stdout) as? [String: Any])
        let picture = try XCTUnwrap(object["info"] as? [String: Any])
        XCTAssertEqual(picture["width"] as? Int, 48)
        XCTAssertEqual(picture["height"] as? Int, 32)
    }

    func testExportWritesTokensForMLPipelines() throws {
        let clip = try makeClip("in.mp4", frames: 5)
        XCTAssertEqual(try encode(clip, path("a.etok"), ["--fixed", "7"]).status, 0)
        let j = try CLI.etok(["export", path("a.etok"), "--format", "jsonl", "-o", "-", "-q"])
        XCTAssertEqual(j.status, 0, j.stderr)
        let lines = String(decoding: j.stdout, as: UTF8.self).split(separator: "\n")
        XCTAssertEqual(lines.count, 5)
        guard let line = lines.first else { return }
        let first = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        XCTAssertEqual((first["tokens"] as? [Int])?.count, 7)
        let n = try CLI.etok(["export", path("a.etok"), "--format", "npy", "-o", path("npy"), "-q"])
        XCTAssertEqual(n.status, 0, n.stderr)
        XCTAssertEqual(try files(in: path("npy")), ["blocks.npy", "chunks.npy", "frames.npy", "lengths.npy", "pts.npy", "tokens.npy"])
    }

    func testTruncatedStreamIsRefusedUnlessSkippingDamage() throws {
        let clip = try makeClip("in.mp4", frames: 9)
        XCTAssertEqual(try encode(clip, path("a.etok")).status, 0)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path("a.etok")))
        bytes.removeLast(60)  // the tail and most of the index: every chunk is still there
        try bytes.write(to: URL(fileURLWithPath: path("cut.etok")))
        let r = try CLI.etok(["info", path("cut.etok")])
        XCTAssertEqual(r.status, 65)
        XCTAssertTrue(String(decoding: r.stdout, as: UTF8.self).contains("truncated"))
        let refused = try CLI.etok(["decode", path("cut.etok"), "-o", path("cut.y4m"), "--model", model])
        XCTAssertEqual(refused.status, 65, refused.stderr)
        XCTAssertTrue(refused.stderr.contains("truncated") && refused.stderr.contains("--skip-damaged"), refused.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("cut.y4m")))
        let d = try CLI.etok(["decode", path("cut.etok"), "-o", path("cut.y4m"), "--model", model, "--skip-damaged"])
        XCTAssertEqual(d.status, 0, d.stderr)
        XCTAssertTrue(d.stderr.contains("warning") && d.stderr.contains("no blocks lost"), d.stderr)
        XCTAssertEqual(try y4mFrameCount(Data(contentsOf: URL(fileURLWithPath: path("cut.y4m"))), width: 16, height: 16), 9)
    }

    func testBadInputsGetOneLineErrorsAndLeaveNoOutput() throws {
        let clip = try makeClip("in.mp4", frames: 3)
        try Data("not an etok file at all".utf8).write(to: URL(fileURLWithPath: path("text.etok")))
        let cases: [([String], String)] = [
            (["decode", path("text.etok"), "-o", path("x.y4m"), "--model", model], "text.etok"),
            (["decode", path("missing.etok"), "-o", path("x.y4m"), "--model", model], "missing.etok"),
            (["encode", clip, "-o", path("x.etok"), "--model", path("nomodel.safetensors")], "nomodel.safetensors"),
            (["encode", clip, "-o", path("x.etok"), "--model", model, "--fixed", "99"], "--fixed"),
            (["encode", path("nothing.mp4"), "-o", path("x.etok"), "--model", model], "nothing.mp4"),
            (["info", path("text.etok")], "text.etok"),
        ]
        for (arguments, word) in cases {
            let r = try CLI.etok(arguments)
            XCTAssertNotEqual(r.status, 0, "\(arguments)")
            XCTAssertEqual(r.errorLines.count, 1, "\(arguments): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains(word), "\(arguments): \(r.stderr)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: path("x.etok")))
            XCTAssertFalse(FileManager.default.fileExists(atPath: path("x.y4m")))
        }
    }

    func testAnExistingOutputIsKeptWithoutDashY() throws {
        let clip = try makeClip("in.mp4", frames: 2)
        try Data("keep me".utf8).write(to: URL(fileURLWithPath: path("a.etok")))
        let r = try encode(clip, path("a.etok"))
        XCTAssertEqual(r.status, 73, r.stderr)  // documented: output exists, as for preview
        XCTAssertEqual(try String(contentsOfFile: path("a.etok"), encoding: .utf8), "keep me")
        XCTAssertEqual(try encode(clip, path("a.etok"), ["-y"]).status, 0)
    }

    func testInfoPlotsTokensOverTimeAsSVGWithAxesOrAsPNG() throws {
        let clip = try makeClip("in.mp4", frames: 12)
        XCTAssertEqual(try encode(clip, path("a.etok"), ["--fps", "5"]).status, 0)
        let meeting = try XCTUnwrap(info(path("a.etok"))["share_meeting_threshold"] as? Double)
        let r = try CLI.etok(["info", path("a.etok"), "--plot", path("t.svg")])
        XCTAssertEqual(r.status, 0, r.stderr)
        let svg = try String(contentsOfFile: path("t.svg"), encoding: .utf8)
        XCTAssertTrue(svg.hasPrefix("<svg") && svg.hasSuffix("</svg>\n"))
        for label in ["time (s)", "kept tokens", "within the threshold", "a.etok"] { XCTAssertTrue(svg.contains(label), label) }
        // One bar per block (plus one legend swatch per class), coloured by the threshold.
        let met = svg.components(separatedBy: "class=\"met\"").count - 2
        let missed = svg.components(separatedBy: "class=\"missed\"").count - 2
        XCTAssertEqual(met + missed, 3)   // 12 frames at 25 fps span 0.48 s: at 5 fps, blocks at 0, 0.2, 0.4 s
        XCTAssertEqual(Double(met) / 3, meeting, accuracy: 1e-9)
        // The last bar ends on the time axis' right end; the time labels are seconds.
        XCTAssertTrue(svg.contains(">0.2</text>"), svg)
        XCTAssertEqual(try CLI.etok(["info", path("a.etok"), "--plot", path("t.png")]).status, 0)
        XCTAssertEqual(try CLI.etok(["probe", path("t.png"), "--json"]).status, 0)
    }

    func testStreamMadeWithAnotherModelIsRefused() throws {
        let clip = try makeClip("in.mp4", frames: 2)
        XCTAssertEqual(try encode(clip, path("a.etok")).status, 0)
        let other = CLI.repoRoot.appendingPathComponent("Tests/EtokModelTests/Fixtures/fsq_tiny_f16.safetensors").path
        let r = try CLI.etok(["decode", path("a.etok"), "-o", path("x.y4m"), "--model", other])
        XCTAssertEqual(r.status, 65, r.stderr)
        XCTAssertTrue(r.stderr.contains("--model"), r.stderr)
        let forced = try CLI.etok(["decode", path("a.etok"), "-o", path("x.y4m"), "--model", other, "--ignore-model-mismatch", "-q"])
        XCTAssertEqual(forced.status, 0, forced.stderr)
    }
}

/// Frames in a y4m stream (4:2:0 or 4:4:4): walks the FRAME headers (frame data may hold
/// newline bytes).
func y4mFrameCount(_ data: Data, width: Int, height: Int) throws -> Int {
    let bytes = [UInt8](data)
    guard let headerEnd = bytes.firstIndex(of: UInt8(ascii: "\n")) else { return 0 }
    var i = headerEnd + 1
    let header = String(decoding: bytes[0..<headerEnd], as: UTF8.self)
    let frameBytes = header.contains(" C444") ? width * height * 3 : width * height * 3 / 2
    var count = 0
    while i < bytes.count {
        guard bytes[i..<min(bytes.count, i + 5)].elementsEqual(Array("FRAME".utf8)),
              let end = bytes[i...].firstIndex(of: UInt8(ascii: "\n")) else { throw CocoaError(.fileReadCorruptFile) }
        i = end + 1 + frameBytes
        count += 1
    }
    return count
}
