import Foundation
import XCTest

final class ProbePreviewTests: CLITestCase {
    private func json(_ data: Data) throws -> [String: Any] {
        try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    func testHelpListsTheCommandsWithExamples() throws {
        let root = try CLI.etok(["--help"])
        XCTAssertEqual(root.status, 0)
        let text = String(decoding: root.stdout, as: UTF8.self)
        for word in ["probe", "preview", "Examples", "Exit status"] { XCTAssertTrue(text.contains(word), word) }
        let preview = String(decoding: try CLI.etok(["preview", "--help"]).stdout, as: UTF8.self)
        for word in ["--fit", "--fps", "--model-size", "--input-format", "-y", "-q", "etok preview Samples/bikes.mp4"] {
            XCTAssertTrue(preview.contains(word), word)
        }
    }

    func testProbeCountsWhatDecodesNotWhatTheHeaderClaims() throws {
        guard let tree = CLI.sample("tree.avi") else { throw XCTSkip("Samples/tree.avi missing") }
        let result = try CLI.etok(["probe", "--json", tree])
        XCTAssertEqual(result.status, 0, result.stderr)
        let report = try json(result.stdout)
        let info = try XCTUnwrap(report["info"] as? [String: Any])
        XCTAssertEqual(report["decodedFrames"] as? Int, 68)
        XCTAssertEqual(info["containerFrameCount"] as? Int, 444)
        XCTAssertEqual(info["width"] as? Int, 320)
        let text = String(decoding: try CLI.etok(["probe", tree]).stdout, as: UTF8.self)
        XCTAssertTrue(text.contains("68 decoded (container says 444)"), text)
    }

    func testAnImageSequencePatternIsAnInputAndAMissingOneIsNamed() throws {
        try FileManager.default.createDirectory(atPath: path("seq"), withIntermediateDirectories: false)
        try CLI.ffmpegFile(["-f", "lavfi", "-i", "testsrc2=size=64x48:rate=5", "-frames:v", "3"], path("seq/%03d.png"))
        let result = try CLI.etok(["probe", "--json", path("seq/%03d.png")])
        XCTAssertEqual(result.status, 0, result.stderr)
        let report = try json(result.stdout)
        XCTAssertEqual(report["decodedFrames"] as? Int, 3)
        XCTAssertEqual((report["info"] as? [String: Any])?["isStill"] as? Bool, false, "a sequence, not one picture")
        let missing = try CLI.etok(["probe", path("seq/%05d.png")])
        XCTAssertEqual(missing.status, 66, missing.stderr)
        XCTAssertEqual(missing.errorLines.count, 1, missing.stderr)
        XCTAssertTrue(missing.stderr.contains("%05d.png"), missing.stderr)
    }

    func testProbeReadsNutFromARealPipe() throws {
        let (ffmpeg, pipe) = try CLI.ffmpegPipe(["-f", "lavfi", "-i", "testsrc2=size=200x100:rate=30", "-frames:v", "45",
                                                 "-c:v", "mpeg4", "-f", "nut"])
        let result = try CLI.etok(["probe", "--json", "-"], stdin: pipe)
        ffmpeg.waitUntilExit()
        XCTAssertEqual(result.status, 0, result.stderr)
        let report = try json(result.stdout)
        let info = try XCTUnwrap(report["info"] as? [String: Any])
        XCTAssertEqual(report["decodedFrames"] as? Int, 45)
        XCTAssertEqual(info["input"] as? String, "stdin")
        XCTAssertEqual(info["container"] as? String, "nut")
        XCTAssertEqual(info["width"] as? Int, 200)
    }

    func testPreviewWritesTheModelFramesToMP4WithEveryFrame() throws {
        let clip = try makeClip("in.mkv", frames: 30, size: "320x180", ["-c:v", "libx264"])
        let result = try CLI.etok(["preview", clip, "-o", path("seen.mp4")])
        XCTAssertEqual(result.status, 0, result.stderr)
        let back = try CLI.etok(["probe", "--json", path("seen.mp4")])
        let report = try json(back.stdout)
        let info = try XCTUnwrap(report["info"] as? [String: Any])
        XCTAssertEqual(report["decodedFrames"] as? Int, 30)
        XCTAssertEqual(info["width"] as? Int, 128)
        XCTAssertEqual(info["height"] as? Int, 128)
        XCTAssertEqual(info["duration"] as? Double ?? 0, 1.2, accuracy: 0.01)
        XCTAssertEqual(try files(), ["in.mkv", "seen.mp4"])
    }

    func testPreviewResamplesByTimestampAndResizes() throws {
        let clip = try makeClip("in.nut", frames: 50, size: "320x180", rate: 25, ["-c:v", "mpeg4"])
        let result = try CLI.etok(["preview", clip, "--fps", "5", "--fit", "pad", "--model-size", "64x48", "-o", path("seen.y4m")])
        XCTAssertEqual(result.status, 0, result.stderr)
        let back = try json(try CLI.etok(["probe", "--json", path("seen.y4m")]).stdout)
        let info = try XCTUnwrap(back["info"] as? [String: Any])
        XCTAssertEqual(back["decodedFrames"] as? Int, 10)   // 2 s at 5 fps
        XCTAssertEqual(info["width"] as? Int, 64)
        XCTAssertEqual(info["height"] as? Int, 48)
        XCTAssertEqual(info["frameRate"] as? Double ?? 0, 5, accuracy: 1e-9)
    }

    func testPreviewToStdoutFeedsFFmpegAndRawFramesComeInOnStdin() throws {
        // Raw RGB frames piped in, y4m piped out: both ends are real pipes.
        let (ffmpeg, pipe) = try CLI.ffmpegPipe(["-f", "lavfi", "-i", "testsrc2=size=96x64:rate=10", "-frames:v", "12",
                                                 "-f", "rawvideo", "-pix_fmt", "rgb24"])
        let result = try CLI.etok(["preview", "-", "--input-format", "rawvideo", "--size", "96x64", "--rate", "10",
                                   "--model-size", "32x32", "-o", "-"], stdin: pipe)
        ffmpeg.waitUntilExit()
        XCTAssertEqual(result.status, 0, result.stderr)
        let y4m = result.stdout
        XCTAssertTrue(y4m.starts(with: Data("YUV4MPEG2 W32 H32 F10:1".utf8)))
        let frameBytes = "FRAME\n".utf8.count + 32 * 32 * 3
        let header = y4m.firstIndex(of: 0x0A)! + 1
        XCTAssertEqual(y4m.count - header, 12 * frameBytes)
    }

    func testQuietPrintsNothingOnSuccess() throws {
        let clip = try makeClip("in.nut", frames: 5, ["-c:v", "mpeg4"])
        let result = try CLI.etok(["preview", clip, "-q", "-o", path("seen.rgb")])
        XCTAssertEqual(result.status, 0)
        XCTAssertEqual(result.stderr, "")
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path("seen.rgb"))).count, 5 * 128 * 128 * 3)
    }
}
