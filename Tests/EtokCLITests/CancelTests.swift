import Foundation
import XCTest

/// Ctrl-C and a closed output pipe stop a run cleanly: documented status, one line, no partial file.
final class CancelTests: CLITestCase {
    func testInterruptStopsAndRemovesThePartialOutput() throws {
        // ffmpeg -re sends a 20 s clip in real time, so etok is still busy when interrupted.
        let (ffmpeg, pipe) = try CLI.ffmpegPipe(["-re", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25", "-t", "20",
                                                 "-c:v", "mpeg4", "-f", "nut"])
        defer { if ffmpeg.isRunning { ffmpeg.terminate() } }
        let output = path("seen.mp4")
        let result = try CLI.etok(["preview", "-", "-o", output], stdin: pipe, timeout: 30) { etok in
            Thread.sleep(forTimeInterval: 1.5)
            XCTAssertTrue(etok.isRunning, "etok ended before the interrupt")
            etok.interrupt()   // SIGINT
        }
        XCTAssertEqual(result.status, 130, result.stderr)
        XCTAssertEqual(result.errorLines.count, 1, result.stderr)
        XCTAssertTrue(result.stderr.contains("interrupted"), result.stderr)
        XCTAssertEqual(try files(), [], "the partial output (and its temporary file) must be gone")
    }

    func testAClosedOutputPipeEndsTheRunWithItsOwnStatus() throws {
        let clip = try makeClip("in.nut", frames: 200, ["-c:v", "mpeg4"])
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try CLI.etok)
        process.arguments = ["preview", clip, "-o", "-"]
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // Read a little, then hang up like `| head -c 1000`.
        _ = out.fileHandleForReading.readData(ofLength: 1000)
        try out.fileHandleForReading.close()
        let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 141, message)
        XCTAssertEqual(message.split(separator: "\n").count, 1, message)
        XCTAssertTrue(message.contains("stdout") && message.contains("closed"), message)
    }
}
