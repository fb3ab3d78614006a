// The OpenBLAS kernels etok runs on, as a user sees them: with OPENBLAS_CORETYPE unset etok
// chooses (never the SSE3 Prescott fallback on a CPU with AVX2), a re-executed start keeps the
// arguments and the output, and the user's own variable wins.
import Foundation
import XCTest

final class BLASKernelChoiceTests: CLITestCase {
    /// Runs etok with the test's environment minus OPENBLAS_CORETYPE, plus `extra`.
    func run(_ arguments: [String], _ extra: [String: String] = [:]) throws -> CLI.Result {
        var environment = ProcessInfo.processInfo.environment
        environment["OPENBLAS_CORETYPE"] = nil
        environment.merge(extra) { $1 }
        return try CLI.etok(arguments, environment: environment)
    }

    /// The "blas" line of `etok model info`.
    func blasLine(_ result: CLI.Result) -> String {
        String(decoding: result.stdout, as: UTF8.self).split(separator: "\n").first { $0.hasPrefix("blas") }.map(String.init) ?? ""
    }

    /// This CPU's /proc/cpuinfo flags (empty where there is none).
    var cpuFlags: Set<String> {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") })
        else { return [] }
        return Set(line.split(separator: ":")[1].split(separator: " ").map(String.init))
    }

    func testUnsetCoreTypeGivesEtoksCheckedChoiceNotPrescott() throws {
        guard cpuFlags.isSuperset(of: ["avx2", "fma"]) else { throw XCTSkip("etok leaves the choice to OpenBLAS below AVX2+FMA") }
        let result = try run(["model", "info"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let line = blasLine(result)
        XCTAssertTrue(line.contains("kernels (chosen by etok;"), line)
        XCTAssertTrue(line.hasSuffix("; checked)"), line)
        XCTAssertFalse(line.contains("Prescott"), line)
        let wide = cpuFlags.isSuperset(of: ["avx512f", "avx512bw", "avx512dq", "avx512vl"])
        XCTAssertTrue(line.contains(wide ? "SkylakeX" : "Haswell") || line.contains(wide ? "Cooperlake" : "Zen"), line)
        XCTAssertEqual(result.stderr, "")
    }

    func testARestartedStartKeepsArgumentsAndOutput() throws {
        // Lowering etok's features to AVX2 makes its choice differ from OpenBLAS's own on AVX-512
        // machines, so etok restarts itself with OPENBLAS_CORETYPE set: what is printed must
        // still answer the command line given.
        guard cpuFlags.isSuperset(of: ["avx2", "fma"]) else { throw XCTSkip("etok leaves the choice to OpenBLAS below AVX2+FMA") }
        let model = CLI.repoRoot.appendingPathComponent("Sources/EtokTokenizer/Resources/default.safetensors").path
        let result = try run(["model", "info", "--json", model], ["ETOK_BLAS_ISA": "avx2"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any])
        XCTAssertEqual(object["file"] as? String, model)
        let blas = try XCTUnwrap(object["blas"] as? String)
        XCTAssertTrue(blas.contains("Haswell kernels (chosen by etok;") || blas.contains("Zen kernels (chosen by etok;"), blas)
        XCTAssertEqual(result.stderr, "")
        // -v names the kernels on stderr.
        let verbose = try run(["info", "-v", "/nonexistent.etok"], ["ETOK_BLAS_ISA": "avx2"])
        XCTAssertTrue(verbose.stderr.contains("etok: BLAS: OpenBLAS"), verbose.stderr)
    }

    func testTheUsersCoreTypeWins() throws {
        let result = try run(["model", "info"], ["OPENBLAS_CORETYPE": "Sandybridge"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(blasLine(result).contains("Sandybridge kernels (set by OPENBLAS_CORETYPE;"), blasLine(result))
        XCTAssertTrue(blasLine(result).hasSuffix("; checked)"), blasLine(result))
    }
}
