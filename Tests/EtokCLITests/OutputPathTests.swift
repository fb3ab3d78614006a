import Foundation
import XCTest

/// Where outputs and diagnostics go: stderr that cannot be written, outputs that would replace the
/// model, full disks, names taken meanwhile (the library's commit is tested in EtokIOTests).
final class OutputPathTests: CLITestCase {
    var model: String { CLI.repoRoot.appendingPathComponent("Tests/EtokModelTests/Fixtures/fsq_tiny_f32.safetensors").path }

    /// Runs etok through `sh -c` with `redirect` applied to its stderr (`2>&-`, `2>/dev/full`), or
    /// with stderr into a pipe whose reader has already gone (`redirect` nil). Returns the status.
    func status(stderr redirect: String?, _ arguments: [String]) throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "exec \"$0\" \"$@\" \(redirect ?? "")", try CLI.etok] + arguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        let gone = Pipe()
        try gone.fileHandleForReading.close()
        process.standardError = redirect == nil ? gone.fileHandleForWriting : FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus
    }

    func testAFailedWriteToStderrNeverStopsACommand() throws {
        let clip = try makeClip("in.mp4", frames: 6)
        let encoded = try CLI.etok(["encode", clip, "-o", path("a.etok"), "--model", model, "--threshold", "0.2", "-q"])
        XCTAssertEqual(encoded.status, 0, encoded.stderr)
        let reference = try CLI.etok(["decode", path("a.etok"), "-o", path("ref.y4m"), "--model", model, "-q"])
        XCTAssertEqual(reference.status, 0, reference.stderr)
        let expected = try Data(contentsOf: URL(fileURLWithPath: path("ref.y4m")))
        let exported = try CLI.etok(["export", path("a.etok"), "-o", "-"]).stdout
        for (i, redirect) in ["2>&-", "2>/dev/full", nil].enumerated() {
            let what = redirect ?? "a closed pipe"
            // decode, encode and export print a summary on stderr at the end; all must finish.
            XCTAssertEqual(try status(stderr: redirect, ["decode", path("a.etok"), "-o", path("d\(i).y4m"), "--model", model]), 0, what)
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path("d\(i).y4m"))), expected, what)
            XCTAssertEqual(try status(stderr: redirect, ["encode", clip, "-o", path("e\(i).etok"), "--model", model,
                                                         "--threshold", "0.2"]), 0, what)
            XCTAssertEqual(try status(stderr: redirect, ["export", path("a.etok"), "-o", path("x\(i).jsonl")]), 0, what)
            // With stderr closed, descriptor 2 is reserved: no diagnostic lands in an output.
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path("x\(i).jsonl"))), exported, what)
            // A failure keeps its documented status with nowhere to say why.
            XCTAssertEqual(try status(stderr: redirect, ["decode", path("missing.etok"), "-o", path("m.y4m"), "--model", model]),
                           66, what)
            XCTAssertEqual(try status(stderr: redirect, ["encode", clip, "--frobnicate"]), 64, what)
        }
        let left = try files()
        XCTAssertFalse(left.contains { $0.contains(".part") }, "\(left)")
    }

    func testAnOutputNamingTheModelFileIsRefusedEvenWithDashY() throws {
        let clip = try makeClip("in.mp4", frames: 2)
        let weights = path("m.safetensors")
        try FileManager.default.copyItem(atPath: model, toPath: weights)
        let original = try Data(contentsOf: URL(fileURLWithPath: weights))
        let encoded = try CLI.etok(["encode", clip, "-o", path("a.etok"), "--model", weights, "--fixed", "4", "-q"])
        XCTAssertEqual(encoded.status, 0, encoded.stderr)
        try Data("{\"tokens\":[1,2,3,4]}\n".utf8).write(to: URL(fileURLWithPath: path("t.jsonl")))
        for arguments in [["encode", clip, "--fixed", "4"], ["decode", path("a.etok"), "--format", "y4m"],
                          ["import", path("t.jsonl")]] {
            let r = try CLI.etok(arguments + ["-o", weights, "--model", weights, "-y"])
            XCTAssertEqual(r.status, 64, "\(arguments): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains("is the model file"), r.stderr)
        }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: weights)), original)
    }

    func testExportToAFullDiskIsAWriteError() throws {
        let clip = try makeClip("in.mp4", frames: 2)
        let encoded = try CLI.etok(["encode", clip, "-o", path("a.etok"), "--model", model, "--fixed", "4", "-q"])
        XCTAssertEqual(encoded.status, 0, encoded.stderr)
        let r = try CLI.etok(["export", path("a.etok"), "--format", "jsonl", "-o", "/dev/full"])
        XCTAssertEqual(r.status, 74, r.stderr)
        XCTAssertTrue(r.stderr.contains("No space left"), r.stderr)
    }

    /// Two runs to one new name without -y: the one that commits second leaves the first's file
    /// alone and exits 73. Made deterministic: the "other run" writes the name while this encode
    /// waits for its input on stdin, after its temporary file exists.
    func testANameTakenWhileEncodingIsNotReplaced() throws {
        let clip = try makeClip("in.y4m", frames: 3)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: clip))
        let input = Pipe()
        let r = try CLI.etok(["encode", "-", "-o", path("out.etok"), "--model", model, "--fixed", "4"], stdin: input) { _ in
            let deadline = Date().addingTimeInterval(30)
            while Date() < deadline, !((try? self.files()) ?? []).contains(where: { $0.hasPrefix(".out.etok.part") }) {
                usleep(10_000)
            }
            try? Data("theirs".utf8).write(to: URL(fileURLWithPath: self.path("out.etok")))
            input.fileHandleForWriting.write(bytes)
            try? input.fileHandleForWriting.close()
        }
        XCTAssertEqual(r.status, 73, r.stderr)
        XCTAssertTrue(r.stderr.contains("out.etok: appeared while etok was writing it; not replaced"), r.stderr)
        XCTAssertEqual(try String(contentsOfFile: path("out.etok"), encoding: .utf8), "theirs")
        XCTAssertEqual(try files().sorted(), ["in.y4m", "out.etok"])
    }
}
