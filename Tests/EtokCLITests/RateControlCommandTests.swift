import Foundation
import XCTest

/// `etok encode`'s rate-control options end to end: their usage errors, the lines they print, and
/// what `etok info` reads back.
final class RateControlCommandTests: XCTestCase {
    var model: String { CLI.repoRoot.appendingPathComponent("Tests/EtokModelTests/Fixtures/fsq_tiny_f32.safetensors").path }

    func temporary(_ name: String) -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("etok-rate-\(UUID().uuidString)-\(name)").path
        addTeardownBlock { unlink(path) }
        return path
    }

    func testBadRateOptionsAreUsageErrorsNamingTheOption() throws {
        guard let input = CLI.sample("carphone_pristine.mp4") else { throw XCTSkip("Samples/carphone_pristine.mp4 missing") }
        let cases: [([String], String)] = [
            (["--tokens-per-second", "100", "--budget", "1000"], "not both"),
            (["--budget", "1000", "--fixed", "8"], "--fixed"),
            (["--tokens-per-second", "-3"], "--tokens-per-second"),
            (["--budget", "0"], "--budget"),
            (["--max-tokens-per-chunk", "0"], "--max-tokens-per-chunk"),
            (["--tokens-per-second", "100", "--search", "binary"], "--search"),
            (["--max-tokens-per-chunk", "5"], "--max-tokens-per-chunk 5"),   // below 3 blocks × 2 tokens
        ]
        for (arguments, words) in cases {
            let result = try CLI.etok(["encode", input, "-o", temporary("x.etok"), "--model", model] + arguments)
            XCTAssertEqual(result.status, 64, "\(arguments): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains(words), "\(arguments): \(result.stderr)")
        }
        let stdin = try CLI.etok(["encode", "-", "-o", temporary("x.etok"), "--model", model, "--budget", "1000"])
        XCTAssertEqual(stdin.status, 64, stdin.stderr)
        XCTAssertTrue(stdin.stderr.contains("not stdin"), stdin.stderr)
    }

    func testARateEncodePrintsTargetAndAchievedAndInfoReadsThemBack() throws {
        guard let input = CLI.sample("carphone_pristine.mp4") else { throw XCTSkip("Samples/carphone_pristine.mp4 missing") }
        let output = temporary("r.etok"), stats = temporary("r.json")
        let result = try CLI.etok(["encode", input, "-o", output, "--model", model, "--tokens-per-second", "200",
                                   "--max-tokens-per-chunk", "24", "--stats", stats])
        XCTAssertEqual(result.status, 0, result.stderr)
        let line = try XCTUnwrap(result.errorLines.first { $0.hasPrefix("etok: rate ") }, result.stderr)
        XCTAssertTrue(line.contains("target 200"), line)
        XCTAssertFalse(result.stderr.contains("the model's limit"), result.stderr)   // a rate run gives no such hint
        XCTAssertFalse(result.stderr.contains("out of reach"), result.stderr)

        // A budget beyond what every block can keep is met as closely as it can be, and said so.
        let huge = try CLI.etok(["encode", input, "-o", temporary("h.etok"), "--model", model, "--budget", "99999999"])
        XCTAssertEqual(huge.status, 0, huge.stderr)
        let warning = try XCTUnwrap(huge.errorLines.first { $0.contains("out of reach") }, huge.stderr)
        XCTAssertTrue(warning.contains("at most the model's most"), warning)
        // A rate below what even one block per chunk keeps: the warning names the limit that binds.
        for (extra, limit) in [([], "each chunk's first block keeps at least"), (["--no-repeat"], "each block keeps at least")] {
            let tiny = try CLI.etok(["encode", input, "-o", temporary("t.etok"), "--model", model, "--tokens-per-second", "0.5"] + extra)
            XCTAssertEqual(tiny.status, 0, tiny.stderr)
            let line = try XCTUnwrap(tiny.errorLines.first { $0.contains("out of reach") }, tiny.stderr)
            XCTAssertTrue(line.contains(limit), line)
        }

        // The threshold search under a tight cap: frames that miss are put down to the cap, not the model.
        let capped = try CLI.etok(["encode", input, "-o", temporary("c.etok"), "--model", model, "--psnr", "60",
                                   "--max-tokens-per-chunk", "6"])
        XCTAssertEqual(capped.status, 0, capped.stderr)
        let hint = try XCTUnwrap(capped.errorLines.first { $0.contains("missed the threshold") }, capped.stderr)
        XCTAssertTrue(hint.contains("under --max-tokens-per-chunk 6"), hint)
        XCTAssertFalse(hint.contains("the model's limit"), hint)
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: stats))) as? [String: Any]
        let rate = try XCTUnwrap(json?["rate_control"] as? [String: Any])
        XCTAssertEqual(rate["mode"] as? String, "tokens_per_second")
        XCTAssertEqual(try XCTUnwrap(rate["achieved"] as? Double), 200, accuracy: 4)
        XCTAssertLessThanOrEqual(try XCTUnwrap(rate["largest_chunk"] as? Int), 24)
        let info = try CLI.etok(["info", output])
        XCTAssertEqual(info.status, 0, info.stderr)
        let text = String(decoding: info.stdout, as: UTF8.self)
        XCTAssertTrue(text.contains("rate:      target 200 tokens/s"), text)
        XCTAssertTrue(text.contains("cap 24 per chunk, objective balanced"), text)
        let plain = try CLI.etok(["info", output, "--json"])
        let object = try JSONSerialization.jsonObject(with: plain.stdout) as? [String: Any]
        XCTAssertEqual((object?["rate_control"] as? [String: Any])?["target"] as? Double, 200)
    }

    /// A batch applies --tokens-per-second and --max-tokens-per-chunk to each file (they were once
    /// dropped silently) and refuses --budget, whatever lists the inputs.
    func testABatchAppliesTheRateToEachFileAndRefusesABudget() throws {
        guard let input = CLI.sample("carphone_pristine.mp4") else { throw XCTSkip("Samples/carphone_pristine.mp4 missing") }
        let folder = temporary("batch")
        addTeardownBlock { try? FileManager.default.removeItem(atPath: folder) }
        let clip = folder + "-in.mp4"
        addTeardownBlock { unlink(clip) }
        try FileManager.default.copyItem(atPath: input, toPath: clip)
        let result = try CLI.etok(["encode", input, clip, "-o", folder + "/", "--model", model,
                                   "--tokens-per-second", "200", "--max-tokens-per-chunk", "24"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let outputs = try FileManager.default.subpathsOfDirectory(atPath: folder).filter { $0.hasSuffix(".etok") }
        XCTAssertEqual(outputs.count, 2, "\(outputs)")
        for output in outputs {
            let info = try CLI.etok(["info", folder + "/" + output, "--json"])
            XCTAssertEqual(info.status, 0, info.stderr)
            let object = try JSONSerialization.jsonObject(with: info.stdout) as? [String: Any]
            let rate = try XCTUnwrap(object?["rate_control"] as? [String: Any], output)
            XCTAssertEqual(rate["target"] as? Double, 200, output)
        }
        let manifest = temporary("list.txt")
        try Data((input + "\n").utf8).write(to: URL(fileURLWithPath: manifest))
        for arguments in [[input, clip, "-o", folder + "-b/"], ["--manifest", manifest, "-o", folder + "-m/"]] {
            let refused = try CLI.etok(["encode"] + arguments + ["--model", model, "--budget", "1000"])
            XCTAssertEqual(refused.status, 64, refused.stderr)
            XCTAssertTrue(refused.stderr.contains("a batch takes --tokens-per-second"), refused.stderr)
        }
    }
}
