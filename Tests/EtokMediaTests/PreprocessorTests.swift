import XCTest
@testable import EtokMedia

final class PreprocessorTests: MediaTestCase {
    private func processAll(_ clip: String, _ options: PreprocessOptions, input: InputOptions = InputOptions()) throws -> [VideoFrame] {
        let (_, frames) = try decodeAll(clip, input)
        let pre = try Preprocessor(options: options)
        return try frames.map { try pre.process($0) }
    }

    func testStretchMatchesFFmpegsScaleAndConversion() throws {
        let clip = try makeTestClip("a.mp4", size: "160x120", frames: 5, ["-c:v", "libx264", "-qp", "0", "-pix_fmt", "yuv420p"])
        let ours = try processAll(clip, PreprocessOptions(width: 64, height: 48, fit: .stretch))
        let theirs = try ffmpegRGB(clip, filter: "scale=64:48:flags=bicubic", width: 64, height: 48)
        XCTAssertEqual(ours.count, theirs.count)
        for (a, b) in zip(ours, theirs) { XCTAssertLessThan(meanAbsoluteDifference(a.rgb, b), 1.5) }
    }

    func testCropTakesTheCentreAsFFmpegsCropThenScale() throws {
        let clip = try makeTestClip("a.mp4", size: "160x120", frames: 5, ["-c:v", "libx264", "-qp", "0", "-pix_fmt", "yuv420p"])
        let ours = try processAll(clip, PreprocessOptions(width: 64, height: 64, fit: .crop))
        // Shortest side 120 → 64; the 120x120 centre starts at x = 20.
        let theirs = try ffmpegRGB(clip, filter: "crop=120:120:20:0,scale=64:64:flags=bicubic", width: 64, height: 64)
        XCTAssertEqual(ours.count, 5)
        for (a, b) in zip(ours, theirs) { XCTAssertLessThan(meanAbsoluteDifference(a.rgb, b), 1.5) }
        // And it is not the stretched picture (the test can tell the two apart).
        let stretched = try ffmpegRGB(clip, filter: "scale=64:64:flags=bicubic", width: 64, height: 64)
        XCTAssertGreaterThan(meanAbsoluteDifference(ours[0].rgb, stretched[0]), 5)
    }

    func testPadLetterboxesWithBlackBars() throws {
        let clip = try makeTestClip("a.mp4", size: "160x120", frames: 2, ["-c:v", "libx264", "-qp", "0", "-pix_fmt", "yuv420p"])
        let ours = try processAll(clip, PreprocessOptions(width: 64, height: 64, fit: .pad))
        let theirs = try ffmpegRGB(clip, filter: "scale=64:48:flags=bicubic,pad=64:64:0:8:black", width: 64, height: 64)
        for (a, b) in zip(ours, theirs) { XCTAssertLessThan(meanAbsoluteDifference(a.rgb, b), 1.5) }
        for x in 0..<64 {
            XCTAssertTrue(ours[0].pixel(x: x, y: 0) == (0, 0, 0))
            XCTAssertTrue(ours[0].pixel(x: x, y: 63) == (0, 0, 0))
        }
    }

    func testColourMatrixAndRangeOfTheSourceAreHonoured() throws {
        // A known colour, stored as YUV under each matrix and range; every one must decode back to it.
        let colour: (r: Int, g: Int, b: Int) = (0x30, 0x90, 0xC0)
        let variants: [(String, String, String)] = [("bt709", "tv", "bt709"), ("bt709", "pc", "bt709"),
                                                    ("bt601", "tv", "smpte170m"), ("bt601", "pc", "smpte170m")]
        for (matrix, range, tag) in variants {
            let name = "\(matrix)-\(range).mkv"
            let clip = try makeClip(name, ["-f", "lavfi", "-i", "color=c=0x3090C0:size=64x64:rate=25", "-frames:v", "2",
                                            "-vf", "scale=out_color_matrix=\(matrix):out_range=\(range)", "-pix_fmt", "yuv444p",
                                            "-colorspace", tag, "-color_range", range, "-c:v", "libx264", "-qp", "0"])
            let frame = try processAll(clip, PreprocessOptions(width: 16, height: 16, fit: .stretch))[0]
            let p = frame.pixel(x: 8, y: 8)
            XCTAssertEqual(Int(p.r), colour.r, accuracy: 3, name)
            XCTAssertEqual(Int(p.g), colour.g, accuracy: 3, name)
            XCTAssertEqual(Int(p.b), colour.b, accuracy: 3, name)
        }
    }

    func testRotationTurnsThePictureAsFFmpegDoes() throws {
        // Left half red, right half blue; the display matrix asks for a quarter turn.
        let plain = try makeClip("rb.mp4", ["-f", "lavfi", "-i", "color=c=red:size=64x32,drawbox=x=32:y=0:w=32:h=32:color=blue:t=fill",
                                            "-frames:v", "1", "-c:v", "libx264", "-pix_fmt", "yuv444p", "-qp", "0"])
        let clip = try makeClip("rb90.mp4", ["-i", plain, "-c", "copy", "-metadata:s:v:0", "rotate=90"])
        let frame = try processAll(clip, PreprocessOptions(width: 16, height: 32, fit: .stretch))[0]
        let theirs = try ffmpegRGB(clip, filter: "scale=16:32:flags=bicubic", width: 16, height: 32)   // autorotates
        XCTAssertLessThan(meanAbsoluteDifference(frame.rgb, theirs[0]), 2)
        XCTAssertGreaterThan(frame.pixel(x: 8, y: 2).b, 200)    // blue on top
        XCTAssertGreaterThan(frame.pixel(x: 8, y: 29).r, 200)   // red below
    }

    func testFramesKeepIndexAndTimestamp() throws {
        let clip = try makeTestClip("a.nut", rate: 10, frames: 4, ["-c:v", "mpeg4"])
        let frames = try processAll(clip, PreprocessOptions(width: 32, height: 32))
        XCTAssertEqual(frames.map(\.index), [0, 1, 2, 3])
        XCTAssertEqual(frames.map(\.seconds), [0, 0.1, 0.2, 0.3].map { $0 }, accuracy: 1e-9)
        XCTAssertTrue(frames.allSatisfy { $0.width == 32 && $0.height == 32 && $0.rgb.count == 32 * 32 * 3 })
    }

    func testRotateRGBQuarterTurnsComposeToIdentity() {
        var rng = SystemRandomNumberGenerator()
        let src = (0..<(5 * 3 * 3)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let once = rotateRGB(src, width: 5, height: 3, clockwise: 90)
        let back = rotateRGB(once, width: 3, height: 5, clockwise: 270)
        XCTAssertEqual(back, src)
        let half = rotateRGB(rotateRGB(src, width: 5, height: 3, clockwise: 90), width: 3, height: 5, clockwise: 90)
        XCTAssertEqual(half, rotateRGB(src, width: 5, height: 3, clockwise: 180))
        // Clockwise: the top-left pixel goes to the top-right corner.
        XCTAssertEqual(Array(once[(2) * 3..<(3) * 3]), Array(src[0..<3]))
    }
}

private func XCTAssertEqual(_ a: [Double], _ b: [Double], accuracy: Double, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, file: file, line: line)
    for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: accuracy, file: file, line: line) }
}
