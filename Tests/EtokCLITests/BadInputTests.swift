import Foundation
import XCTest

/// Every bad input of issue 2: a non-zero documented exit status, exactly one line on stderr that
/// names the file, and no output file left behind.
final class BadInputTests: CLITestCase {
    private var out: String { path("out") }

    override func setUpWithError() throws {
        try super.setUpWithError()
        try FileManager.default.createDirectory(atPath: path("out"), withIntermediateDirectories: false)
    }

    /// Runs `etok preview INPUT -o out/seen.mp4` and checks the failure contract.
    @discardableResult
    private func expectFailure(_ input: String, stdin: Any? = nil, extra: [String] = [], output: String? = nil,
                               status: Int32, naming name: String, saying words: String? = nil,
                               file: StaticString = #filePath, line: UInt = #line) throws -> CLI.Result {
        let target = output ?? out + "/seen.mp4"
        let result = try CLI.etok(["preview", input, "-o", target] + extra, stdin: stdin)
        XCTAssertEqual(result.status, status, result.stderr, file: file, line: line)
        XCTAssertEqual(result.errorLines.count, 1, "expected one line, got: \(result.stderr)", file: file, line: line)
        let message = result.errorLines.first ?? ""
        XCTAssertTrue(message.hasPrefix("etok: "), message, file: file, line: line)
        XCTAssertTrue(message.contains(name), "\(message) should name \(name)", file: file, line: line)
        if let words { XCTAssertTrue(message.contains(words), "\(message) should say \(words)", file: file, line: line) }
        XCTAssertEqual(try files(in: out), [], "no output may be left behind", file: file, line: line)
        return result
    }

    /// A pipe carrying the output of a command (real bytes through a real pipe).
    private func pipe(_ tool: String, _ arguments: [String]) throws -> FileHandle {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        return pipe.fileHandleForReading
    }

    func testMissingFileDirectoryAndEmptyFile() throws {
        try expectFailure(path("nope.mp4"), status: 66, naming: "nope.mp4", saying: "no such file")
        try FileManager.default.createDirectory(atPath: path("folder.mp4"), withIntermediateDirectories: false)
        try expectFailure(path("folder.mp4"), status: 66, naming: "folder.mp4", saying: "directory")
        FileManager.default.createFile(atPath: path("zero.mp4"), contents: Data())
        try expectFailure(path("zero.mp4"), status: 66, naming: "zero.mp4", saying: "empty")
    }

    func testTextFileRenamedMP4AndAudioOnlyFile() throws {
        try Data("this is not a video\n".utf8).write(to: URL(fileURLWithPath: path("text.mp4")))
        try expectFailure(path("text.mp4"), status: 65, naming: "text.mp4", saying: "not a video")
        try CLI.ffmpegFile(["-f", "lavfi", "-i", "sine=duration=1", "-c:a", "aac"], path("audio.m4a"))
        try expectFailure(path("audio.m4a"), status: 65, naming: "audio.m4a", saying: "no video stream")
    }

    func testTruncatedMP4WithIndexFirstAndIndexLast() throws {
        let first = try makeClip("first.mp4", frames: 50, ["-c:v", "libx264", "-movflags", "+faststart"])
        let last = try makeClip("last.mp4", frames: 50, ["-c:v", "libx264"])
        for (clip, name) in [(first, "cut_first.mp4"), (last, "cut_last.mp4")] {
            let data = try Data(contentsOf: URL(fileURLWithPath: clip))
            try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: path(name)))
            try expectFailure(path(name), status: 65, naming: name, saying: "ends early")
        }
    }

    func testMP4WithIndexAtTheEndOnAPipeTellsWhatToPipeInstead() throws {
        let clip = try CLI.sample("bikes.mp4")
            ?? makeClip("big.mp4", frames: 250, size: "640x480", ["-c:v", "libx264", "-crf", "10"])
        try expectFailure("-", stdin: try pipe("/bin/cat", [clip]), status: 65, naming: "stdin", saying: "-f nut")
    }

    func testStdinClosedAtOnceOrInTheMiddle() throws {
        try expectFailure("-", stdin: try pipe("/bin/true", []), status: 66, naming: "stdin", saying: "empty")
        let clip = try makeClip("in.nut", frames: 40, ["-c:v", "mpeg4"])
        let size = try FileManager.default.attributesOfItem(atPath: clip)[.size] as! Int
        try expectFailure("-", stdin: try pipe("/usr/bin/head", ["-c", "\(size / 2)", clip]), status: 65,
                          naming: "stdin", saying: "ends early")
    }

    func testRawVideoThatIsNotAWholeNumberOfFrames() throws {
        try CLI.ffmpegFile(["-f", "lavfi", "-i", "testsrc2=size=32x24", "-frames:v", "4", "-f", "rawvideo", "-pix_fmt", "rgb24"],
                           path("in.rgb"))
        try expectFailure("-", stdin: try pipe("/usr/bin/head", ["-c", "\(32 * 24 * 3 * 3 + 100)", path("in.rgb")]),
                          extra: ["--input-format", "rawvideo", "--size", "32x24"], status: 65, naming: "stdin", saying: "partial frame")
        try expectFailure("-", stdin: try pipe("/bin/true", []), extra: ["--input-format", "rawvideo", "--size", "32x24"],
                          status: 66, naming: "stdin", saying: "empty")
    }

    func testUnwritableOutputAndExistingOutputWithoutY() throws {
        let clip = try makeClip("in.nut", frames: 5, ["-c:v", "mpeg4"])
        try expectFailure(clip, output: path("out/no/such/folder/seen.mp4"), status: 73, naming: "seen.mp4", saying: "cannot create")
        try Data("a file".utf8).write(to: URL(fileURLWithPath: path("plain")))
        try expectFailure(clip, output: path("plain/seen.mp4"), status: 73, naming: "plain/seen.mp4")
        try Data("keep me".utf8).write(to: URL(fileURLWithPath: path("kept.mp4")))
        let result = try CLI.etok(["preview", clip, "-o", path("kept.mp4")])
        XCTAssertEqual(result.status, 73)
        XCTAssertTrue(result.stderr.contains("-y"), result.stderr)
        XCTAssertEqual(try String(contentsOfFile: path("kept.mp4"), encoding: .utf8), "keep me")
        XCTAssertEqual(try CLI.etok(["preview", clip, "-y", "-o", path("kept.mp4")]).status, 0)
    }

    func testFullDiskIsAWriteErrorAndLeavesNothing() throws {
        let mount = path("small")
        try FileManager.default.createDirectory(atPath: mount, withIntermediateDirectories: false)
        let mounting = Process()
        mounting.executableURL = URL(fileURLWithPath: "/bin/mount")
        mounting.arguments = ["-t", "tmpfs", "-o", "size=256k", "tmpfs", mount]
        mounting.standardError = FileHandle.nullDevice
        try mounting.run()
        mounting.waitUntilExit()
        guard mounting.terminationStatus == 0 else {
            throw XCTSkip("cannot mount a small tmpfs here (needs root and mount rights): full-disk test skipped")
        }
        defer {
            let umount = Process()
            umount.executableURL = URL(fileURLWithPath: "/bin/umount")
            umount.arguments = [mount]
            try? umount.run()
            umount.waitUntilExit()
        }
        let clip = try makeClip("in.nut", frames: 60, ["-c:v", "mpeg4"])
        let result = try CLI.etok(["preview", clip, "-o", mount + "/seen.y4m"])
        XCTAssertEqual(result.status, 74, result.stderr)
        XCTAssertEqual(result.errorLines.count, 1, result.stderr)
        XCTAssertTrue(result.stderr.contains("seen.y4m") && result.stderr.contains("No space left"), result.stderr)
        XCTAssertEqual(try files(in: mount), [])
    }

    func testBadOptionsAreUsageErrors() throws {
        let clip = try makeClip("in.nut", frames: 2, ["-c:v", "mpeg4"])
        for arguments in [["--fit", "zoom"], ["--fps", "0"], ["--model-size", "12"], ["--size", "32x32"],
                          ["--input-format", "rawvideo"]] {
            let result = try CLI.etok(["preview", clip, "-o", out + "/seen.mp4"] + arguments)
            XCTAssertEqual(result.status, 64, "\(arguments): \(result.stderr)")
            XCTAssertEqual(try files(in: out), [])
        }
    }
}
