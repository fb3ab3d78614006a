import Foundation
import XCTest

/// The fuzz target `etok-fuzz-reader` (Tools/fuzz), built by SwiftPM with the tests: in its plain
/// mode it replays inputs through the same function libFuzzer calls, which traps when a file and the
/// same bytes on a pipe get different verdicts.
final class FuzzTargetTests: XCTestCase {
    private var corpus: URL { CLI.repoRoot.appendingPathComponent("Tools/fuzz/corpus") }

    /// The target's binary, next to the test bundle (the test target depends on it, so it is built).
    private func fuzzReader() throws -> String {
        let candidates = [Bundle.main.bundleURL, URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()]
            + Bundle.allBundles.map { $0.bundleURL.deletingLastPathComponent() }
        let found = candidates.map { $0.appendingPathComponent("etok-fuzz-reader").path }
            .first { FileManager.default.isExecutableFile(atPath: $0) }
        return try XCTUnwrap(found, "etok-fuzz-reader was not built next to the test bundle")
    }

    private func run(_ arguments: [String]) throws -> (status: Int32, out: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try fuzzReader())
        process.arguments = arguments
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    func testReplaysEverySeedWithoutATrapAndFindsTheDamageOfTheDamagedOnes() throws {
        let seeds = try FileManager.default.contentsOfDirectory(atPath: corpus.path).filter { $0.hasSuffix(".etok") }.sorted()
        XCTAssertGreaterThanOrEqual(seeds.count, 8)
        let result = try run(seeds.map { corpus.appendingPathComponent($0).path })
        XCTAssertEqual(result.status, 0, result.out)
        let lines = result.out.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, seeds.count, result.out)
        for (seed, line) in zip(seeds, lines) {
            XCTAssertTrue(line.hasPrefix(seed + ": "), line)
            let whole = seed.hasSuffix("-complete.etok") || seed == "fsq-empty.etok"
            XCTAssertEqual(line.hasSuffix(" 0 damaged ranges"), whole, line)
        }
    }

    /// The committed seeds are what the target's `--make-corpus` writes today (in the current token
    /// coding), so a format change cannot leave the corpus behind.
    func testCommittedSeedsAreWhatMakeCorpusWrites() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("etok-corpus-\(getpid())")
        defer { try? FileManager.default.removeItem(at: dir) }
        XCTAssertEqual(try run(["--make-corpus", dir.path]).status, 0)
        let made = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
        let committed = try FileManager.default.contentsOfDirectory(atPath: corpus.path).sorted()
        XCTAssertEqual(made, committed)
        for name in made {
            XCTAssertEqual(FileManager.default.contents(atPath: dir.appendingPathComponent(name).path),
                           FileManager.default.contents(atPath: corpus.appendingPathComponent(name).path), name)
        }
    }
}
