import EtokIO
import XCTest
@testable import EtokMedia

final class WriterTests: MediaTestCase {
    /// `count` model-input frames of a moving test pattern at 25 fps (time base 1/25).
    private func frames(_ count: Int, size: Int = 64) throws -> [VideoFrame] {
        let clip = try makeTestClip("src.nut", size: "160x120", rate: 25, frames: count, ["-c:v", "ffv1"])
        let (_, decoded) = try decodeAll(clip)
        let pre = try Preprocessor(options: PreprocessOptions(width: size, height: size))
        return try decoded.map { try pre.process($0) }
    }

    private func write(_ frames: [VideoFrame], to path: String, _ options: OutputOptions = OutputOptions()) throws {
        let writer = try openVideoWriter(path: path, options: options)
        for frame in frames { try writer.write(frame) }
        try writer.finish()
        XCTAssertEqual(writer.framesWritten, frames.count)
    }

    private func leftovers() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0 != "src.nut" }.sorted()
    }

    func testMP4KeepsEveryFrameWithCorrectDuration() throws {
        let input = try frames(30)
        try write(input, to: path("out.mp4"), OutputOptions(crf: 18))
        XCTAssertEqual(try ffprobeFrameCount(path("out.mp4")), 30)
        let (source, back) = try decodeAll(path("out.mp4"))
        XCTAssertEqual(source.info.codec, "h264")
        XCTAssertEqual(source.info.duration ?? 0, 1.2, accuracy: 0.001)
        XCTAssertEqual(back.count, 30)
        XCTAssertEqual(back.last?.seconds ?? 0, 29.0 / 25, accuracy: 1e-6)
        let pre = try Preprocessor(options: PreprocessOptions(width: 64, height: 64))
        // Lossy (4:2:0 chroma on a sharp test pattern) but the same pictures in the same order.
        for (a, b) in zip(input, back) { XCTAssertLessThan(meanAbsoluteDifference(a.rgb, try pre.process(b).rgb), 10) }
        XCTAssertEqual(try leftovers(), ["out.mp4"])
    }

    func testMP4FallsBackToMPEG4WhenAskedOrWithoutX264() throws {
        try write(try frames(10), to: path("out.mp4"), OutputOptions(videoCodec: "mpeg4"))
        let source = try VideoSource(path: path("out.mp4"))
        XCTAssertEqual(source.info.codec, "mpeg4")
        XCTAssertEqual(try ffprobeFrameCount(path("out.mp4")), 10)
    }

    func testY4MIsReadBackByFFmpegWithTheSameColours() throws {
        let input = try frames(6)
        try write(input, to: path("out.y4m"))
        let back = try ffmpegRGB(path("out.y4m"), filter: "null", width: 64, height: 64)
        XCTAssertEqual(back.count, 6)
        for (a, b) in zip(input, back) { XCTAssertLessThan(meanAbsoluteDifference(a.rgb, b), 2) }
        let header = String(decoding: try Data(contentsOf: URL(fileURLWithPath: path("out.y4m"))).prefix(40), as: UTF8.self)
        XCTAssertTrue(header.hasPrefix("YUV4MPEG2 W64 H64 F25:1"), header)
    }

    func testRawRGBIsTheFramesBytes() throws {
        let input = try frames(3)
        try write(input, to: path("out.rgb"))
        XCTAssertEqual([UInt8](try Data(contentsOf: URL(fileURLWithPath: path("out.rgb")))), input.flatMap(\.rgb))
    }

    func testPNGSingleAndNumberedSequence() throws {
        let input = try frames(3)
        try write([input[0]], to: path("one.png"))
        XCTAssertEqual(try ffmpegRGB(path("one.png"), filter: "null", width: 64, height: 64).first, input[0].rgb)
        try FileManager.default.createDirectory(atPath: path("seq"), withIntermediateDirectories: false)
        try write(input, to: path("seq/%03d.png"))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: path("seq")).sorted(), ["001.png", "002.png", "003.png"])
        XCTAssertEqual(try ffmpegRGB(path("seq/003.png"), filter: "null", width: 64, height: 64).first, input[2].rgb)
    }

    func testASinglePictureRefusesASecondFrameAndLeavesNothing() throws {
        let input = try frames(2)
        let writer = try openVideoWriter(path: path("one.png"))
        try writer.write(input[0])
        let error = mediaError { try writer.write(input[1]) }
        XCTAssertEqual(error, .tooManyFramesForImage(file: path("one.png")))
        writer.cancel()
        XCTAssertEqual(try leftovers(), [])
    }

    func testExistingOutputIsKeptWithoutOverwriteAndReplacedWithIt() throws {
        try Data("keep".utf8).write(to: URL(fileURLWithPath: path("out.y4m")))
        XCTAssertEqual(outputError { _ = try openVideoWriter(path: path("out.y4m")) }, .exists(file: path("out.y4m")))
        XCTAssertEqual(try String(contentsOfFile: path("out.y4m"), encoding: .utf8), "keep")
        try write(try frames(2), to: path("out.y4m"), OutputOptions(overwrite: true))
        XCTAssertGreaterThan(try Data(contentsOf: URL(fileURLWithPath: path("out.y4m"))).count, 64 * 64 * 3)
    }

    func testCancelledAndFailedWritersLeaveNoFile() throws {
        let input = try frames(4)
        for name in ["c.mp4", "c.y4m", "c.rgb"] {
            let writer = try openVideoWriter(path: path(name))
            for frame in input { try writer.write(frame) }
            writer.cancel()
        }
        try FileManager.default.createDirectory(atPath: path("seq"), withIntermediateDirectories: false)
        let sequence = try openVideoWriter(path: path("seq/%02d.png"))
        for frame in input { try sequence.write(frame) }
        sequence.cancel()
        XCTAssertEqual(try leftovers(), ["seq"])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: path("seq")), [])
    }

    func testUnwritablePlacesAreReportedBeforeAnyWork() throws {
        let missing = path("no/such/folder/out.mp4")
        guard case .cannotCreate(let file, _)? = outputError({ _ = try openVideoWriter(path: missing) }) else {
            return XCTFail("expected cannotCreateOutput")
        }
        XCTAssertEqual(file, missing)
        try FileManager.default.createDirectory(atPath: path("d.mp4"), withIntermediateDirectories: false)
        guard case .cannotCreate? = outputError({ _ = try openVideoWriter(path: path("d.mp4")) }) else {
            return XCTFail("a directory is not an output file")
        }
        guard case .invalidArgument? = mediaError({ _ = try openVideoWriter(path: path("out.xyz")) }) else {
            return XCTFail("unknown extension")
        }
    }

    func testAFullDiskIsAWriteErrorAndTheOutputIsRemoved() throws {
        let mount = path("small")
        try FileManager.default.createDirectory(atPath: mount, withIntermediateDirectories: false)
        guard let status = try? MediaFixtures.run("/bin/mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", mount]), status.status == 0 else {
            throw XCTSkip("cannot mount a small tmpfs here (needs root): full-disk test skipped")
        }
        defer { _ = try? MediaFixtures.run("/bin/umount", [mount]) }
        let input = try frames(8)
        for name in ["full.y4m", "full.mp4"] {
            let writer = try openVideoWriter(path: mount + "/" + name, options: OutputOptions(crf: 0))
            var failure: OutputError?
            do {
                for _ in 0..<20 { for frame in input { try writer.write(frame) } }
                try writer.finish()
            } catch let error as OutputError {
                failure = error
                writer.cancel()
            }
            guard case .writeFailed(let file, let message)? = failure else { return XCTFail("\(name): expected writeFailed, got \(String(describing: failure))") }
            XCTAssertEqual(file, mount + "/" + name)
            XCTAssertTrue(message.contains("No space left"), message)
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: mount), [], name)
        }
    }
}
