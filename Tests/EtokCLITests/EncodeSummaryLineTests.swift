import Foundation
import XCTest

/// The line `etok encode` ends with: per-frame figures are per frame for any frames per block
/// (issue 15), and per-block figures say "block" when a block holds several frames.
final class EncodeSummaryLineTests: XCTestCase {
    func summaryLine(model: String) throws -> String {
        guard let input = CLI.sample("carphone_pristine.mp4") else { throw XCTSkip("Samples/carphone_pristine.mp4 missing") }
        let modelPath = CLI.repoRoot.appendingPathComponent("Tests/EtokModelTests/Fixtures/\(model)").path
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("etok-line-\(UUID().uuidString).etok").path
        defer { unlink(output) }
        let result = try CLI.etok(["encode", input, "-o", output, "--model", modelPath, "--fixed", "8"])
        XCTAssertEqual(result.status, 0, result.stderr)
        return try XCTUnwrap(result.errorLines.last { $0.hasPrefix("etok: 120 frames") }, result.stderr)
    }

    func testFourFrameBlocksGiveTokensPerFrameAndSayBlockForPerBlockFigures() throws {
        // vae_tiny: 4 frames per block, 16 tokens per block; --fixed 8 keeps 8 per block.
        let line = try summaryLine(model: "vae_tiny_f32.safetensors")
        XCTAssertTrue(line.contains("2.0 tokens/frame of 4 "), line)
        XCTAssertTrue(line.contains("1.00 passes/block"), line)
        XCTAssertTrue(line.contains("of blocks within threshold"), line)
    }

    func testOneFrameBlocksKeepTheFrameWording() throws {
        let line = try summaryLine(model: "fsq_tiny_f32.safetensors")
        XCTAssertTrue(line.contains("8.0 tokens/frame of 16 "), line)
        XCTAssertTrue(line.contains("1.00 passes/frame"), line)
        XCTAssertTrue(line.contains("of frames within threshold"), line)
    }
}
