import Foundation
import XCTest

/// `etok import` on the built binary with the tiny models of the engine's fixtures: exported tokens
/// come back as a stream that decodes to the very frames of the original, edited and generated
/// tokens decode, and every bad input is refused with one line and no output.
final class ImportCommandTests: CLITestCase {
    var fsqModel: String { CLI.repoRoot.appendingPathComponent("Tests/EtokModelTests/Fixtures/fsq_tiny_f32.safetensors").path }
    var vaeModel: String { CLI.repoRoot.appendingPathComponent("Tests/EtokModelTests/Fixtures/vae_tiny_f32.safetensors").path }

    /// A 14-frame clip encoded with the tiny FSQ model (16 tokens per frame, chunks of 3: the last
    /// chunk is partial), and its frames decoded as raw RGB.
    func encoded(model: String? = nil, frames: Int = 14) throws -> (etok: String, rgb: Data) {
        let model = model ?? fsqModel
        let clip = try makeClip("in.mp4", frames: frames)
        let e = try CLI.etok(["encode", clip, "-o", path("a.etok"), "--model", model, "-q", "--threshold", "0.05"])
        XCTAssertEqual(e.status, 0, e.stderr)
        return (path("a.etok"), try decode(path("a.etok"), model: model))
    }

    func decode(_ etok: String, model: String? = nil) throws -> Data {
        let out = path(UUID().uuidString + ".rgb")
        let d = try CLI.etok(["decode", etok, "-o", out, "--model", model ?? fsqModel, "-q"])
        XCTAssertEqual(d.status, 0, d.stderr)
        return try Data(contentsOf: URL(fileURLWithPath: out))
    }

    func export(_ etok: String, _ format: String, _ output: String, model: String? = nil) throws {
        let r = try CLI.etok(["export", etok, "--format", format, "-o", output, "-q"])
        XCTAssertEqual(r.status, 0, r.stderr)
    }

    func importTokens(_ input: String, _ output: String, _ extra: [String] = [], model: String? = nil,
                      stdin: Any? = nil) throws -> CLI.Result {
        try CLI.etok(["import", input, "-o", output, "--model", model ?? fsqModel] + extra, stdin: stdin)
    }

    func jsonLines(_ file: String) throws -> [[String: Any]] {
        try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n").map {
            try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
    }

    func writeLines(_ lines: [[String: Any]], _ file: String) throws {
        let text = try lines.map { String(decoding: try JSONSerialization.data(withJSONObject: $0), as: UTF8.self) }
            .joined(separator: "\n") + "\n"
        try text.write(toFile: file, atomically: true, encoding: .utf8)
    }

    func info(_ file: String) throws -> [String: Any] {
        let r = try CLI.etok(["info", file, "--json", "--blocks"])
        XCTAssertEqual(r.status, 0, r.stderr)
        return try XCTUnwrap(JSONSerialization.jsonObject(with: r.stdout) as? [String: Any])
    }

    func testExportedTokensComeBackAsTheSameFrames() throws {
        let (original, frames) = try encoded()
        XCTAssertEqual(frames.count, 14 * 16 * 16 * 3)
        try export(original, "jsonl", path("a.jsonl"))
        try export(original, "npy", path("a_npy"))
        // JSON lines from a file and from stdin, and the npy folder: the decoder is deterministic
        // given the tokens and the chunks, so the frames are bit-identical.
        let fromFile = try importTokens(path("a.jsonl"), path("b.etok"))
        XCTAssertEqual(fromFile.status, 0, fromFile.stderr)
        XCTAssertTrue(fromFile.stderr.contains("imported 14 blocks"), fromFile.stderr)
        XCTAssertEqual(try decode(path("b.etok")), frames)
        let stdin = try FileHandle(forReadingFrom: URL(fileURLWithPath: path("a.jsonl")))
        let fromPipe = try importTokens("-", path("c.etok"), ["-q"], stdin: stdin)
        XCTAssertEqual(fromPipe.status, 0, fromPipe.stderr)
        XCTAssertEqual(fromPipe.stderr, "")
        XCTAssertEqual(try decode(path("c.etok")), frames)
        let fromFolder = try importTokens(path("a_npy"), path("d.etok"), ["-q"])
        XCTAssertEqual(fromFolder.status, 0, fromFolder.stderr)
        XCTAssertEqual(try decode(path("d.etok")), frames)

        // The same tokens, blocks, chunking and times; search "imported", no measured error.
        let a = try info(original), b = try info(path("b.etok"))
        let aBlocks = try XCTUnwrap(a["per_block"] as? [[String: Any]]), bBlocks = try XCTUnwrap(b["per_block"] as? [[String: Any]])
        XCTAssertEqual(aBlocks.map { $0["kept"] as? Int }, bBlocks.map { $0["kept"] as? Int })
        XCTAssertEqual(aBlocks.map { $0["seconds"] as? Double }, bBlocks.map { $0["seconds"] as? Double })
        XCTAssertTrue(bBlocks.allSatisfy { $0["mse"] is NSNull && $0["psnr"] is NSNull })
        XCTAssertTrue(b["mean_psnr"] is NSNull && b["share_meeting_threshold"] is NSNull)
        XCTAssertEqual(b["measured_blocks"] as? Int, 0)
        let encoding = try XCTUnwrap(b["encoding"] as? [String: Any])
        XCTAssertEqual(encoding["search"] as? String, "imported")
        XCTAssertEqual(encoding["chunk_blocks"] as? Int, (a["encoding"] as? [String: Any])?["chunk_blocks"] as? Int)
        XCTAssertEqual((b["model"] as? [String: Any])?["sha256"] as? String, (a["model"] as? [String: Any])?["sha256"] as? String)
        // Re-exported, the tokens are the ones imported.
        try export(path("b.etok"), "jsonl", path("b.jsonl"))
        XCTAssertEqual(try String(contentsOfFile: path("b.jsonl"), encoding: .utf8),
                       try String(contentsOfFile: path("a.jsonl"), encoding: .utf8))
        // The text report says n/a rather than a PSNR.
        let text = try CLI.etok(["info", path("b.etok"), "--blocks"])
        XCTAssertEqual(text.status, 0, text.stderr)
        let shown = String(decoding: text.stdout, as: UTF8.self)
        XCTAssertTrue(shown.contains("quality:   n/a"), shown)
        XCTAssertTrue(shown.contains("search imported"), shown)
        XCTAssertFalse(shown.contains("99.00"), shown)
        // The plot draws its blocks grey.
        let plot = try CLI.etok(["info", path("b.etok"), "--plot", path("b.svg")])
        XCTAssertEqual(plot.status, 0, plot.stderr)
        XCTAssertEqual(try String(contentsOfFile: path("b.svg"), encoding: .utf8).components(separatedBy: "class=\"unmeasured\" x=").count - 1, 15)  // 14 bars and the legend
    }

    func testTokensLeftOutBySkipDamagedDecodeAsInTheOriginal() throws {
        let (original, frames) = try encoded()
        try export(original, "jsonl", path("a.jsonl"))
        // Blocks 3-5 (the second chunk) gone, as --skip-damaged exports a stream whose chunk was
        // damaged: the context resets where the original's did, so the rest decode unchanged.
        try writeLines(try jsonLines(path("a.jsonl")).filter { !(3...5).contains($0["block"] as? Int ?? -1) }, path("gap.jsonl"))
        let r = try importTokens(path("gap.jsonl"), path("gap.etok"), ["-q"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let frameBytes = 16 * 16 * 3
        XCTAssertEqual(try decode(path("gap.etok")), frames.prefix(3 * frameBytes) + frames.suffix(8 * frameBytes))
    }

    func testEditedAndGeneratedTokensDecode() throws {
        let (original, _) = try encoded()
        try export(original, "jsonl", path("a.jsonl"))
        // Every block cut to the model's min_toks (2).
        let cut = try jsonLines(path("a.jsonl")).map { line -> [String: Any] in
            var line = line
            line["tokens"] = Array((line["tokens"] as? [Int] ?? []).prefix(2))
            line["kept"] = 2
            return line
        }
        try writeLines(cut, path("cut.jsonl"))
        let r = try importTokens(path("cut.jsonl"), path("cut.etok"), ["-q"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(try decode(path("cut.etok")).count, 14 * 16 * 16 * 3)
        let tokens = try XCTUnwrap(try info(path("cut.etok"))["tokens"] as? [String: Any])
        XCTAssertEqual(tokens["min"] as? Int, 2)
        XCTAssertEqual(tokens["max"] as? Int, 2)
        // Generated: tokens alone, no block numbers or times: 4 fps, chunks of the model's context.
        try writeLines((0..<5).map { i in ["tokens": (0..<(2 + i)).map { ($0 * 7919 + i) % 64000 }] }, path("gen.jsonl"))
        let g = try importTokens(path("gen.jsonl"), path("gen.etok"))
        XCTAssertEqual(g.status, 0, g.stderr)
        XCTAssertTrue(g.stderr.contains("4 fps"), g.stderr)
        let generated = try info(path("gen.etok"))
        XCTAssertEqual((generated["per_block"] as? [[String: Any]])?.map { $0["seconds"] as? Double }, [0, 0.25, 0.5, 0.75, 1])
        XCTAssertEqual(try decode(path("gen.etok")).count, 5 * 16 * 16 * 3)
        // --fps retimes; --chunk sets the context length.
        let retimed = try importTokens(path("gen.jsonl"), path("fast.etok"), ["-q", "--fps", "10", "--chunk", "1"])
        XCTAssertEqual(retimed.status, 0, retimed.stderr)
        let fast = try info(path("fast.etok"))
        XCTAssertEqual((fast["encoding"] as? [String: Any])?["chunk_blocks"] as? Int, 1)
        XCTAssertEqual((fast["per_block"] as? [[String: Any]])?.last?["seconds"] as? Double ?? 0, 0.4, accuracy: 1e-9)
    }

    func testVAELatentsComeBackAsTheSameFrames() throws {
        // The tiny VAE model: 4 frames per block, so 14 frames are 4 blocks, the last with 2.
        let (original, frames) = try encoded(model: vaeModel)
        XCTAssertEqual(frames.count, 14 * 16 * 8 * 3)
        try export(original, "jsonl", path("v.jsonl"))
        // etok export writes no frame count; the last block says it holds 2 frames.
        var lines = try jsonLines(path("v.jsonl"))
        lines[lines.count - 1]["frames"] = 2
        try writeLines(lines, path("v2.jsonl"))
        let r = try importTokens(path("v2.jsonl"), path("v.etok"), ["-q"], model: vaeModel)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(try decode(path("v.etok"), model: vaeModel), frames)
    }

    func testChunksComeBackAsTheyWereAndNameTheContextOfConcatenatedClips() throws {
        // Encoded with chunks of 2 (the model's context is 3): without the chunk in the export, an
        // import with the default --chunk put 3 blocks in a context and changed the frames.
        let clip = try makeClip("in.mp4", frames: 7)
        XCTAssertEqual(try CLI.etok(["encode", clip, "-o", path("c.etok"), "--model", fsqModel, "-q", "--threshold", "0.05",
                                     "--chunk", "2"]).status, 0)
        let frames = try decode(path("c.etok"))
        try export(path("c.etok"), "jsonl", path("c.jsonl"))
        try export(path("c.etok"), "npy", path("c_npy"))
        XCTAssertEqual(try jsonLines(path("c.jsonl")).map { $0["chunk"] as? Int }, [0, 0, 2, 2, 4, 4, 6])
        for input in [path("c.jsonl"), path("c_npy")] {
            XCTAssertEqual(try importTokens(input, path("back.etok"), ["-y", "-q"]).status, 0)
            XCTAssertEqual(try decode(path("back.etok")), frames, input)
        }
        // Two clips one after the other: each keeps its own chunks when their names differ, so the
        // second does not see the first as context; numbered on from the first, without chunks, it would.
        let lines = try jsonLines(path("c.jsonl"))
        let second = lines.map { line -> [String: Any] in
            var l = line
            l["block"] = (line["block"] as! Int) + 7
            l["chunk"] = (line["chunk"] as! Int) + 1000
            l["time"] = (line["time"] as! Double) + 1
            return l
        }
        try writeLines(lines + second, path("two.jsonl"))
        XCTAssertEqual(try importTokens(path("two.jsonl"), path("two.etok"), ["-q"]).status, 0)
        XCTAssertEqual(try decode(path("two.etok")), frames + frames)
        // A chunk longer than the context is refused, naming it.
        try writeLines(lines.map { var l = $0; l["chunk"] = 0; return l }, path("long.jsonl"))
        let long = try importTokens(path("long.jsonl"), path("long.etok"))
        XCTAssertEqual(long.status, 65, long.stderr)
        XCTAssertTrue(long.stderr.contains("line 4: chunk 0 holds more than 3 blocks"), long.stderr)
    }

    func testTimesRoundedToMillisecondsKeepTheirRateAndUnevenTimesGetOne() throws {
        let (original, _) = try encoded(frames: 6)
        try export(original, "jsonl", path("a.jsonl"))
        let lines = try jsonLines(path("a.jsonl"))
        // 30 fps as Matroska stores it, in whole milliseconds: 0, 0.033, 0.067, 0.1...
        try writeLines(lines.enumerated().map { var l = $1; l["time"] = (Double($0) / 30 * 1000).rounded() / 1000; return l },
                       path("ms.jsonl"))
        XCTAssertEqual(try importTokens(path("ms.jsonl"), path("ms.etok"), ["-q"]).status, 0)
        XCTAssertEqual((try info(path("ms.etok"))["source"] as? [String: Any])?["fps"] as? [Int], [30, 1])
        let y4m = path("ms.y4m")
        XCTAssertEqual(try CLI.etok(["decode", path("ms.etok"), "-o", y4m, "--model", fsqModel, "-q"]).status, 0)
        XCTAssertTrue(String(decoding: try Data(contentsOf: URL(fileURLWithPath: y4m)).prefix(80), as: UTF8.self).contains("F30:1"))
        // Uneven times stay to the microsecond, with the median step's rate for players.
        try writeLines(zip(lines, [0, 0.1, 0.2, 0.35, 0.5, 0.6]).map { var l = $0; l["time"] = $1; return l }, path("v.jsonl"))
        XCTAssertEqual(try importTokens(path("v.jsonl"), path("v.etok"), ["-q"]).status, 0)
        let source = try XCTUnwrap(try info(path("v.etok"))["source"] as? [String: Any])
        XCTAssertEqual(source["fps"] as? [Int], [10, 1])
        XCTAssertEqual(source["time_base"] as? [Int], [1, 1_000_000])
        XCTAssertEqual(try XCTUnwrap(source["duration"] as? Double), 0.7, accuracy: 1e-9)
        XCTAssertEqual(try importTokens(path("v.jsonl"), path("f.etok"), ["-q", "--fps", "30000/1001"]).status, 0)
    }

    func testBadInputsAreRefusedWithOneLineAndNoOutput() throws {
        let (original, _) = try encoded(frames: 4)
        try export(original, "jsonl", path("a.jsonl"))
        let good = try jsonLines(path("a.jsonl"))
        func variant(_ name: String, _ edit: (inout [[String: Any]]) -> Void) throws -> String {
            var lines = good
            edit(&lines)
            try writeLines(lines, path(name))
            return path(name)
        }
        try "{\"block\":0,\"tokens\":[1,2]\n".write(toFile: path("malformed.jsonl"), atomically: true, encoding: .utf8)
        try "".write(toFile: path("empty.jsonl"), atomically: true, encoding: .utf8)
        let cases: [(String, String)] = [
            (path("malformed.jsonl"), "malformed.jsonl: line 1: malformed JSON"),
            (try variant("kept.jsonl") { $0[2]["kept"] = 17 }, "kept.jsonl: line 3: kept 17 outside 2…16"),
            (try variant("few.jsonl") { $0[1]["tokens"] = [5] ; $0[1]["kept"] = 1 }, "few.jsonl: line 2: kept 1 outside 2…16"),
            (try variant("count.jsonl") { $0[1]["kept"] = (($0[1]["tokens"] as? [Int])?.count ?? 16) == 16 ? 15 : 16 },
             "count.jsonl: line 2: "),
            (try variant("index.jsonl") { $0[3]["tokens"] = [1, 2, 64000] ; $0[3]["kept"] = 3 },
             "index.jsonl: line 4: token 2: FSQ index 64000 outside 0…63999"),
            (try variant("time.jsonl") { $0[2]["time"] = 0.0 }, "time.jsonl: line 3: time 0.0 s does not come after line 2's 0.04 s"),
            (try variant("order.jsonl") { $0.swapAt(1, 2) },
             "order.jsonl: line 3: block number 1 is not above the one before (2, line 2)"),
            (try variant("digits.jsonl") { $0[0]["tokens"] = [[1, 2, 3, 4, 0, 1], [0, 0, 0, 0, 0, 0]]; $0[0]["kept"] = 2 },
             "digits.jsonl: line 1: \"tokens\" holds lists, but this model's tokens are single FSQ indices"),
            (try variant("mixed.jsonl") { $0[1]["chunk"] = nil }, "mixed.jsonl: line 2: has no \"chunk\", but line 1 has one"),
        ]
        for (input, expected) in cases {
            let r = try importTokens(input, path("out.etok"))
            XCTAssertEqual(r.status, 65, "\(input): \(r.stderr)")
            XCTAssertEqual(r.errorLines.count, 1, r.stderr)
            XCTAssertTrue(r.stderr.hasPrefix("etok: " + path("")) && r.stderr.contains(expected), r.stderr)
            if input.hasSuffix("count.jsonl") { XCTAssertTrue(r.stderr.contains(" tokens, but kept is "), r.stderr) }
            XCTAssertFalse(FileManager.default.fileExists(atPath: path("out.etok")), input)
        }
        // npy: tokens that do not add up.
        try export(original, "npy", path("n"))
        try FileManager.default.copyItem(atPath: path("n/blocks.npy"), toPath: path("wrong.npy"))
        try FileManager.default.removeItem(atPath: path("n/tokens.npy"))
        try FileManager.default.copyItem(atPath: path("wrong.npy"), toPath: path("n/tokens.npy"))
        let npy = try importTokens(path("n"), path("out.etok"))
        XCTAssertEqual(npy.status, 65, npy.stderr)
        XCTAssertTrue(npy.stderr.contains("tokens.npy: holds 4 tokens, but lengths.npy adds up to"), npy.stderr)
        // Bad options: 64; a missing input: 66; an existing output without -y: 73, kept as it was.
        for extra in [["--chunk", "0"], ["--chunk", "4"], ["--fps", "0"]] {
            let r = try importTokens(path("a.jsonl"), path("out.etok"), extra)
            XCTAssertEqual(r.status, 64, "\(extra): \(r.stderr)")
            XCTAssertEqual(r.errorLines.count, 1, r.stderr)
        }
        XCTAssertEqual(try importTokens(path("nothing.jsonl"), path("out.etok")).status, 66)
        let empty = try importTokens(path("empty.jsonl"), path("out.etok"))   // empty, as for every input: 66
        XCTAssertEqual(empty.status, 66, empty.stderr)
        XCTAssertTrue(empty.stderr.contains("empty.jsonl: no blocks (the input is empty)"), empty.stderr)
        try Data([0x50, 0x4B, 0x03, 0x04, 0, 0]).write(to: URL(fileURLWithPath: path("tokens.npz")))
        let npz = try importTokens(path("tokens.npz"), path("out.etok"))
        XCTAssertEqual(npz.status, 65, npz.stderr)
        XCTAssertTrue(npz.stderr.contains("archive"), npz.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("out.etok")))
        try Data("keep".utf8).write(to: URL(fileURLWithPath: path("old.etok")))
        let exists = try importTokens(path("a.jsonl"), path("old.etok"))
        XCTAssertEqual(exists.status, 73, exists.stderr)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path("old.etok"))), Data("keep".utf8))
        // No temporary file is left anywhere.
        XCTAssertEqual(try files().filter { $0.contains(".part") }, [])
        // An .etok given as tokens says what to do.
        let stream = try importTokens(original, path("out.etok"))
        XCTAssertEqual(stream.status, 65)
        XCTAssertTrue(stream.stderr.contains("is already an .etok stream: etok decode reads it"), stream.stderr)
    }
}
