// --precision as a user meets it: bf16 refused with exit 69 where the CPU cannot run it (simulated
// with ETOK_CKERNELS_ISA), recorded in the header when used, and the decoder following the stream
// or refusing a different explicit precision.
import Foundation
import XCTest

final class PrecisionCommandTests: CLITestCase {
    func run(_ arguments: [String], _ extra: [String: String] = [:]) throws -> CLI.Result {
        var environment = ProcessInfo.processInfo.environment
        environment.merge(extra) { $1 }
        return try CLI.etok(arguments, environment: environment)
    }

    func testBF16IsRefusedWithExit69OnACPUWithoutAVX512BF16() throws {
        let clip = try makeClip("a.mp4", frames: 2)
        for level in ["avx2", "avx512"] {
            let out = path("a-\(level).etok")
            let result = try run(["encode", clip, "-o", out, "--precision", "bf16", "-q"], ["ETOK_CKERNELS_ISA": level])
            XCTAssertEqual(result.status, 69, result.stderr)
            XCTAssertEqual(result.errorLines.count, 1, result.stderr)
            XCTAssertTrue(result.stderr.contains("AVX512-BF16") && result.stderr.contains("default.safetensors"), result.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: out))
            // auto falls back to fp32 there: the run succeeds.
            let auto = try run(["encode", clip, "-o", out, "--precision", "auto", "-q"], ["ETOK_CKERNELS_ISA": level])
            XCTAssertEqual(auto.status, 0, auto.stderr)
        }
    }

    func testBF16IsRecordedAndTheDecoderFollowsOrRefuses() throws {
        guard let flags = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8), flags.contains("avx512_bf16") else {
            throw XCTSkip("no AVX512-BF16 on this CPU")
        }
        let clip = try makeClip("b.mp4", frames: 2)
        let fp32 = path("fp32.etok"), bf16 = path("bf16.etok")
        XCTAssertEqual(try run(["encode", clip, "-o", fp32, "-q"]).status, 0)
        XCTAssertEqual(try run(["encode", clip, "-o", bf16, "--precision", "bf16", "-q"]).status, 0)
        let text32 = String(decoding: try Data(contentsOf: URL(fileURLWithPath: fp32)), as: UTF8.self)
        let text16 = String(decoding: try Data(contentsOf: URL(fileURLWithPath: bf16)), as: UTF8.self)
        XCTAssertFalse(text32.contains("\"precision\""), "the default model's auto is fp32, and fp32 writes no key")
        XCTAssertTrue(text16.contains("\"precision\":\"bf16\""))
        // etok info names it (text and JSON); fp32 is what an absent key means.
        let shown = try run(["info", bf16])
        XCTAssertTrue(String(decoding: shown.stdout, as: UTF8.self).contains("precision bf16"), String(decoding: shown.stdout, as: UTF8.self))
        for (file, want) in [(bf16, "bf16"), (fp32, "fp32")] {
            let object = try JSONSerialization.jsonObject(with: try run(["info", file, "--json"]).stdout) as? [String: Any]
            XCTAssertEqual((object?["encoding"] as? [String: Any])?["precision"] as? String, want, file)
        }
        let refused = try run(["decode", bf16, "-o", path("x.y4m"), "--precision", "fp32", "-q"])
        XCTAssertEqual(refused.status, 65, refused.stderr)
        XCTAssertTrue(refused.stderr.contains("bf16") && refused.stderr.contains(bf16), refused.stderr)
        let followed = try run(["decode", bf16, "-o", path("y.y4m"), "-q"])
        XCTAssertEqual(followed.status, 0, followed.stderr)
        let plain = try run(["decode", fp32, "-o", path("z.y4m"), "-q"])
        XCTAssertEqual(plain.status, 0, plain.stderr)
        XCTAssertNotEqual(try Data(contentsOf: URL(fileURLWithPath: path("y.y4m"))),
                          try Data(contentsOf: URL(fileURLWithPath: path("z.y4m"))), "bf16 must change the reconstruction")
    }
}
