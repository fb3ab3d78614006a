import Foundation
import XCTest

/// What `etok encode` does with its outputs when something goes wrong, and with odd command lines:
/// an input is never overwritten, an interrupted run leaves an older output as it was, settings the
/// model cannot store are refused before a byte is written, and command-line mistakes are one line.
/// Uses the engine's tiny fixture model (16×16 frames, 2…16 tokens), so each run takes a moment.
final class OutputSafetyTests: CLITestCase {
    var model: String { CLI.repoRoot.appendingPathComponent("Tests/EtokModelTests/Fixtures/fsq_tiny_f32.safetensors").path }

    func encode(_ arguments: [String], stdin: Any? = nil,
                whileRunning: ((Process) -> Void)? = nil) throws -> CLI.Result {
        try CLI.etok(["encode"] + arguments + ["--model", model], stdin: stdin, timeout: 60, whileRunning: whileRunning)
    }

    func testTheInputIsNeverTheOutputEvenWithDashY() throws {
        let clip = try makeClip("in.mp4", frames: 3)
        let before = try Data(contentsOf: URL(fileURLWithPath: clip))
        try FileManager.default.createSymbolicLink(atPath: path("link.mp4"), withDestinationPath: clip)
        for output in [clip, path("./in.mp4"), path("link.mp4")] {
            let r = try encode([clip, "-o", output, "-y"])
            XCTAssertEqual(r.status, 64, "\(output): \(r.stderr)")
            XCTAssertEqual(r.errorLines.count, 1, r.stderr)
            XCTAssertTrue(r.stderr.contains("is the input file"), r.stderr)
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: clip)), before, "the input must be untouched")
        }
        XCTAssertEqual(try files(), ["in.mp4", "link.mp4"], "no temporary file left")
        // The other commands that write files refuse the same.
        XCTAssertEqual(try encode([clip, "-o", path("a.etok"), "-q", "--threshold", "0.2"]).status, 0)
        let stream = try Data(contentsOf: URL(fileURLWithPath: path("a.etok")))
        for arguments in [["decode", path("a.etok"), "-o", path("a.etok"), "--format", "y4m", "--model", model],
                          ["export", path("a.etok"), "-o", path("a.etok"), "--format", "jsonl"],
                          ["preview", clip, "-o", clip]] {
            let r = try CLI.etok(arguments + ["-y"])
            XCTAssertEqual(r.status, 64, "\(arguments): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains("is the input file"), r.stderr)
        }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path("a.etok"))), stream)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: clip)), before)
    }

    func testStatsGoWhereAskedAndBadStatsPathsFailBeforeAnyWork() throws {
        let clip = try makeClip("in.mp4", frames: 4)
        // A missing folder fails at once, and the .etok is not written.
        let missing = try encode([clip, "-o", path("a.etok"), "--stats", path("nodir/s.json")])
        XCTAssertEqual(missing.status, 73, missing.stderr)
        XCTAssertEqual(missing.errorLines.count, 1, missing.stderr)
        XCTAssertTrue(missing.stderr.contains("nodir/s.json"), missing.stderr)
        XCTAssertEqual(try files(), ["in.mp4"])
        // The same file under another spelling is caught.
        let same = try encode([clip, "-o", path("a.etok"), "--stats", path("./a.etok"), "-y"])
        XCTAssertEqual(same.status, 64, same.stderr)
        XCTAssertTrue(same.stderr.contains("--stats"), same.stderr)
        // `--stats -` is standard output, as everywhere else.
        let toStdout = try encode([clip, "-o", path("a.etok"), "--stats", "-", "-q", "--threshold", "0.2"])
        XCTAssertEqual(toStdout.status, 0, toStdout.stderr)
        let stats = try XCTUnwrap(JSONSerialization.jsonObject(with: toStdout.stdout) as? [String: Any])
        XCTAssertEqual(stats["frames"] as? Int, 4)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("-")))
        XCTAssertEqual(try encode([clip, "-o", "-", "--stats", "-"]).status, 64)
    }

    func testFpsGivesEveryBlockItsRealTime() throws {
        // 25 fps for 1.2 s, resampled to 10 fps: block k stands at k/10 s (not k ticks of the
        // source's time base), in the stats, in `info` and on the decoded video's clock.
        let clip = try makeClip("in.mp4", frames: 30)
        let r = try encode([clip, "-o", path("a.etok"), "--fps", "20/2", "--stats", "-", "-q", "--threshold", "0.2"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let stats = try XCTUnwrap(JSONSerialization.jsonObject(with: r.stdout) as? [String: Any])
        let blocks = try XCTUnwrap(stats["per_block"] as? [[String: Any]])
        XCTAssertEqual(blocks.count, 12)
        for (k, block) in blocks.enumerated() {
            XCTAssertEqual(try XCTUnwrap(block["seconds"] as? Double), Double(k) / 10, accuracy: 1e-3, "block \(k)")
        }
        let tenth = try CLI.etok(["decode", path("a.etok"), "--time", "0.5:0.8", "-o", path("b.y4m"), "--model", model, "-q"])
        XCTAssertEqual(tenth.status, 0, tenth.stderr)
        XCTAssertEqual(try y4mFrameCount(Data(contentsOf: URL(fileURLWithPath: path("b.y4m"))), width: 16, height: 16), 3)
    }

    func testTimesAreOnTheStreamsClockAndAnEmptyPickSaysWhereItStarts() throws {
        let clip = try makeClip("late.mp4", frames: 10, ["-c:v", "libx264", "-output_ts_offset", "1.5"])
        XCTAssertEqual(try encode([clip, "-o", path("a.etok"), "-q", "--fixed", "8"]).status, 0)
        let early = try CLI.etok(["decode", path("a.etok"), "--time", "0:0.5", "-o", path("x.y4m"), "--model", model])
        XCTAssertEqual(early.status, 64, early.stderr)
        XCTAssertEqual(early.errorLines.count, 1, early.stderr)
        XCTAssertTrue(early.stderr.contains("starts at 1.500 s"), early.stderr)
        let r = try CLI.etok(["decode", path("a.etok"), "--time", "1.5:1.6", "-o", path("y.y4m"), "--model", model, "-q"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(try y4mFrameCount(Data(contentsOf: URL(fileURLWithPath: path("y.y4m"))), width: 16, height: 16), 3)
    }

    func testExportTakesItsFormatFromTheOutputName() throws {
        let clip = try makeClip("in.mp4", frames: 3)
        XCTAssertEqual(try encode([clip, "-o", path("a.etok"), "-q", "--fixed", "8"]).status, 0)
        XCTAssertEqual(try CLI.etok(["export", path("a.etok"), "-o", path("t.jsonl"), "-q"]).status, 0)
        XCTAssertEqual(try String(contentsOfFile: path("t.jsonl"), encoding: .utf8).split(separator: "\n").count, 3)
        XCTAssertEqual(try CLI.etok(["export", path("a.etok"), "-o", path("toks") + "/", "-q"]).status, 0)
        XCTAssertEqual(try files(in: path("toks")), ["blocks.npy", "chunks.npy", "frames.npy", "lengths.npy", "pts.npy", "tokens.npy"])
        for (name, word) in [("t.npy", "folder"), ("t.txt", "--format")] {
            let r = try CLI.etok(["export", path("a.etok"), "-o", path(name)])
            XCTAssertEqual(r.status, 64, r.stderr)
            XCTAssertEqual(r.errorLines.count, 1, r.stderr)
            XCTAssertTrue(r.stderr.contains(word), r.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: path(name)))
        }
    }

    func testAnInterruptedEncodeLeavesTheOlderOutputAsItWas() throws {
        for (signal, status) in [(SIGTERM, Int32(143)), (SIGINT, Int32(130))] {
            try Data("an older stream".utf8).write(to: URL(fileURLWithPath: path("a.etok")))
            // ffmpeg -re sends 20 s in real time, so etok is still busy when the signal comes.
            let (ffmpeg, pipe) = try CLI.ffmpegPipe(["-re", "-f", "lavfi", "-i", "testsrc2=size=32x32:rate=10",
                                                     "-t", "20", "-c:v", "mpeg4", "-f", "nut"])
            defer { if ffmpeg.isRunning { ffmpeg.terminate() } }
            let r = try encode(["-", "-o", path("a.etok"), "-y", "--threshold", "0.2"], stdin: pipe) { etok in
                Thread.sleep(forTimeInterval: 1.5)
                XCTAssertTrue(etok.isRunning, "etok ended before the signal")
                kill(etok.processIdentifier, signal)
            }
            XCTAssertEqual(r.status, status, r.stderr)
            XCTAssertEqual(r.errorLines.count, 1, r.stderr)
            XCTAssertTrue(r.stderr.contains(signal == SIGTERM ? "terminated" : "interrupted"), r.stderr)
            XCTAssertEqual(try String(contentsOfFile: path("a.etok"), encoding: .utf8), "an older stream")
            XCTAssertEqual(try files(), ["a.etok"], "no temporary file left")
        }
    }

    func testASignalBeforeTheInputArrivesLeavesNoTemporaryFile() throws {
        // The outputs' temporary files exist from the start; stdin has not said a word yet when the
        // signal comes, so no run exists to clean up: the handler removes them itself.
        try Data("an older stream".utf8).write(to: URL(fileURLWithPath: path("a.etok")))
        for (arguments, signal, status) in [(["encode", "-", "-o", path("a.etok"), "-y", "--stats", path("s.json"),
                                               "--model", model], SIGINT, Int32(130)),
                                              (["import", "-", "-o", path("a.etok"), "-y", "--model", model], SIGTERM, Int32(143))] {
            let silent = Pipe()   // nothing is ever written to it
            let r = try CLI.etok(arguments, stdin: silent.fileHandleForReading, timeout: 20) { etok in
                Thread.sleep(forTimeInterval: 1.0)
                XCTAssertTrue(etok.isRunning)
                kill(etok.processIdentifier, signal)
            }
            try silent.fileHandleForWriting.close()
            XCTAssertEqual(r.status, status, "\(arguments[0]): \(r.stderr)")
            XCTAssertEqual(r.errorLines.count, 1, r.stderr)
            XCTAssertEqual(try files(), ["a.etok"], "\(arguments[0]): no temporary file left")
            XCTAssertEqual(try String(contentsOfFile: path("a.etok"), encoding: .utf8), "an older stream")
        }
    }

    func testBudgetsTheModelCannotStoreAreRefusedBeforeAnyByte() throws {
        let clip = try makeClip("in.mp4", frames: 2)
        // The tiny model keeps 2…16 tokens per block.
        for extra in [["--fixed", "1"], ["--min-tokens", "1"], ["--max-tokens", "17"], ["--fixed", "-5"]] {
            let r = try encode([clip, "-o", "-"] + extra)
            XCTAssertEqual(r.status, 64, "\(extra): \(r.stderr)")
            XCTAssertEqual(r.errorLines.count, 1, "\(extra): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains(extra[0]) || r.stderr.contains("2 to 16"), "\(extra): \(r.stderr)")
            XCTAssertEqual(r.stdout.count, 0, "\(extra): nothing may reach stdout")
        }
    }

    func testADamagedSourceIsTokenizedWithAWarningEvenWhenQuiet() throws {
        let clip = try makeClip("in.mp4", frames: 25, ["-c:v", "libx264", "-pix_fmt", "yuv420p"])
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: clip)))
        for i in stride(from: bytes.count / 3, to: bytes.count / 3 + 400, by: 7) { bytes[i] ^= 0xFF }
        try Data(bytes).write(to: URL(fileURLWithPath: path("damaged.mp4")))
        let r = try encode([path("damaged.mp4"), "-o", path("a.etok"), "-q", "--fixed", "8", "--stats", path("s.json")])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.errorLines.count, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("warning") && r.stderr.contains("decode error"), r.stderr)
        let stats = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path("s.json")))) as? [String: Any])
        XCTAssertGreaterThan(stats["decode_errors"] as? Int ?? 0, 0)
        // A clean input says nothing.
        XCTAssertEqual(try encode([clip, "-o", path("b.etok"), "-q", "--fixed", "8"]).stderr, "")
    }

    func testASmallInputIsEncodedWithAWarningThatItWasEnlarged() throws {
        // 40x30 into the bundled model's 128x128: enlarged 4.3× (crop fills the frame).
        let clip = try makeClip("small.mp4", frames: 1, size: "40x30")
        let r = try CLI.etok(["encode", clip, "-o", path("a.etok"), "--fixed", "16"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let warning = try XCTUnwrap(r.errorLines.first { $0.contains("enlarged") }, r.stderr)
        XCTAssertTrue(warning.contains("40x30") && warning.contains("4.3×"), warning)
        XCTAssertEqual(try CLI.etok(["encode", clip, "-o", path("b.etok"), "--fixed", "16", "-q"]).stderr, "")
        // The tiny model's 16x16 needs no enlarging: nothing said.
        let fits = try encode([clip, "-o", path("c.etok"), "--fixed", "8"])
        XCTAssertFalse(fits.stderr.contains("enlarged"), fits.stderr)
    }

    func testSkipDamagedKeepsTheFramesBeforeACut() throws {
        // A file cut in half (index first, so the demuxer knows more was to come) and raw frames
        // ending in a partial frame: by default each is an error (65, as BadInputTests checks for
        // more kinds); with --skip-damaged the frames before the cut are tokenized, with a warning.
        let clip = try makeClip("first.mp4", frames: 50, ["-c:v", "libx264", "-movflags", "+faststart"])
        let data = try Data(contentsOf: URL(fileURLWithPath: clip))
        try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: path("cut.mp4")))
        try CLI.ffmpegFile(["-f", "lavfi", "-i", "testsrc2=size=32x24", "-frames:v", "4", "-f", "rawvideo", "-pix_fmt", "rgb24"],
                           path("in.rgb"))
        let raw = try Data(contentsOf: URL(fileURLWithPath: path("in.rgb")))
        try raw.prefix(32 * 24 * 3 * 3 + 100).write(to: URL(fileURLWithPath: path("cut.rgb")))
        let cases: [(arguments: [String], frames: ClosedRange<Int>)] = [
            ([path("cut.mp4")], 10...24),
            ([path("cut.rgb"), "--input-format", "rawvideo", "--size", "32x24"], 3...3),
        ]
        for (arguments, frames) in cases {
            XCTAssertEqual(try encode(arguments + ["-o", path("a.etok"), "--fixed", "8", "-y"]).status, 65)
            let r = try encode(arguments + ["-o", path("a.etok"), "--fixed", "8", "-y", "-q", "--skip-damaged",
                                            "--stats", path("s.json")])
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertTrue(r.errorLines.contains { $0.contains("ends") && $0.contains("--skip-damaged kept") }, r.stderr)
            let stats = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path("s.json")))) as? [String: Any])
            XCTAssertTrue(frames.contains(stats["frames"] as? Int ?? -1), "\(arguments): \(stats["frames"] ?? "none") frames")
            XCTAssertNotNil(stats["input_ended_early"] as? String)
        }
        // A whole input says nothing of it.
        let whole = try encode([clip, "-o", path("b.etok"), "--fixed", "8", "-q", "--skip-damaged"])
        XCTAssertEqual(whole.stderr, "")
    }

    func testABinaryStreamIsNotWrittenToATerminal() throws {
        // `script` gives etok a terminal for its stdout (util-linux, in every Debian).
        let script = "/usr/bin/script"
        guard FileManager.default.isExecutableFile(atPath: script) else { throw XCTSkip("no /usr/bin/script") }
        let clip = try makeClip("in.mp4", frames: 2)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: script)
        process.arguments = ["-qec", "'\(try CLI.etok)' encode '\(clip)' -o - --model '\(model)'", "/dev/null"]
        let out = Pipe()
        process.standardOutput = out
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 64, text)
        XCTAssertTrue(text.contains("terminal"), text)
        XCTAssertFalse(text.contains("ETK\r\n"), "no stream bytes on the terminal")
    }

    func testInfoJSONCarriesWhatAnMLUserNeedsToReadTheTokens() throws {
        let clip = try makeClip("in.mp4", frames: 3)
        XCTAssertEqual(try encode([clip, "-o", path("a.etok"), "-q", "--fixed", "8"]).status, 0)
        let r = try CLI.etok(["info", path("a.etok"), "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let info = try XCTUnwrap(JSONSerialization.jsonObject(with: r.stdout) as? [String: Any])
        let model = try XCTUnwrap(info["model"] as? [String: Any])
        // The tiny model's levels are 8,8,8,5,5,5: indices 0 ..< 64000.
        XCTAssertEqual(model["fsq_quant_levels"] as? [Int], [8, 8, 8, 5, 5, 5])
        XCTAssertEqual(model["vocabulary_size"] as? Int, 64000)
        XCTAssertEqual(model["context_blocks"] as? Int, 3)
        XCTAssertEqual((info["source"] as? [String: Any])?["fps"] as? [Int], [25, 1])
        XCTAssertNotNil(info["etok_version"] as? String)
        XCTAssertFalse(String(decoding: r.stdout, as: UTF8.self).contains("\\/"), "slashes unescaped")
        // And --plot wants a format it can draw.
        let plot = try CLI.etok(["info", path("a.etok"), "--plot", path("p.jpg")])
        XCTAssertEqual(plot.status, 64, plot.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("p.jpg")))
    }

    func testAFolderGivenAsAStreamIsAMissingInput() throws {
        try FileManager.default.createDirectory(atPath: path("tokens"), withIntermediateDirectories: false)
        for arguments in [["decode", path("tokens"), "-o", path("x.y4m"), "--model", model], ["info", path("tokens")],
                          ["export", path("tokens"), "-o", path("x.jsonl")]] {
            let r = try CLI.etok(arguments)
            XCTAssertEqual(r.status, 66, "\(arguments): \(r.stderr)")
            XCTAssertEqual(r.errorLines.count, 1, r.stderr)
            XCTAssertTrue(r.stderr.contains("is a directory"), r.stderr)
        }
    }

    func testCommandLineMistakesAreOneLineWithStatus64() throws {
        let clip = try makeClip("in.mp4", frames: 2)
        let cases: [([String], String)] = [
            ([], "subcommand"),
            (["encode"], "--output"),   // inputs may come from --manifest: -o is what is missing first
            (["encode", "-o", path("a.etok")], "input"),
            (["encode", clip, "-o", path("a.etok"), "--frobnicate"], "--frobnicate"),
            (["encode", clip, "-o", path("a.etok"), "--threshold", "-1"], "--threshold"),
            (["encode", clip, "-o", path("a.etok"), "--fixed", "8", "--search", "binary"], "--fixed"),
            (["encode", clip, "-o", path("a.etok"), "-q", "-v"], "-q"),
            (["encode", clip, "-o", path("a.etok"), "--fps", "1/0"], "--fps"),
        ]
        for (arguments, word) in cases {
            let r = try CLI.etok(arguments)
            XCTAssertEqual(r.status, 64, "\(arguments): \(r.stderr)")
            XCTAssertEqual(r.errorLines.count, 1, "\(arguments): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains(word), "\(arguments): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains("--help"), "\(arguments): \(r.stderr)")
        }
        XCTAssertEqual(try files(), ["in.mp4"])
        // Help and version are not mistakes.
        XCTAssertEqual(try CLI.etok(["encode", "--help"]).status, 0)
        XCTAssertEqual(try CLI.etok(["--version"]).status, 0)
    }
}
