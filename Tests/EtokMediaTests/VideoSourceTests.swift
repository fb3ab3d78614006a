import XCTest
@testable import EtokMedia

final class VideoSourceTests: MediaTestCase {
    func testMP4MetadataAndEveryFrameDecodeInOrder() throws {
        let clip = try makeTestClip("a.mp4", size: "160x120", rate: 25, frames: 30, ["-c:v", "libx264", "-pix_fmt", "yuv420p"])
        let (source, frames) = try decodeAll(clip)
        XCTAssertEqual(source.info.codec, "h264")
        XCTAssertEqual(source.info.width, 160)
        XCTAssertEqual(source.info.height, 120)
        XCTAssertEqual(source.info.frameRate ?? 0, 25, accuracy: 1e-9)
        XCTAssertEqual(source.info.duration ?? 0, 1.2, accuracy: 0.05)
        XCTAssertEqual(source.info.rotation, 0)
        XCTAssertEqual(frames.count, 30)
        XCTAssertEqual(frames.map(\.index), Array(0..<30))
        for (a, b) in zip(frames, frames.dropFirst()) { XCTAssertEqual(b.seconds - a.seconds, 0.04, accuracy: 1e-6) }
        XCTAssertEqual(source.decodeErrors, 0)
    }

    func testContainersNutMatroskaAviY4MAndStillImagesOpen() throws {
        let cases: [(String, [String], Int)] = [
            ("a.nut", ["-c:v", "mpeg4"], 12), ("a.mkv", ["-c:v", "libx264"], 12), ("a.webm", ["-c:v", "libvpx", "-b:v", "200k"], 12),
            ("a.avi", ["-c:v", "mpeg4"], 12), ("a.y4m", ["-pix_fmt", "yuv420p"], 12), ("a.mov", ["-c:v", "libx264"], 12),
        ]
        for (name, args, count) in cases {
            let clip = try makeTestClip(name, frames: count, args)
            let (source, frames) = try decodeAll(clip)
            XCTAssertEqual(frames.count, count, name)
            XCTAssertEqual(source.info.width, 160, name)
            XCTAssertFalse(source.info.isStill, name)
        }
        for name in ["still.png", "still.jpg"] {
            let clip = try makeTestClip(name, size: "96x64", frames: 1, ["-update", "1"])
            let (source, frames) = try decodeAll(clip)
            XCTAssertEqual(frames.count, 1, name)
            XCTAssertTrue(source.info.isStill, name)
            XCTAssertEqual(frames.first?.width, 96)
        }
    }

    func testRawVideoFramesAreReadWithSizeFormatAndRate() throws {
        let clip = try makeTestClip("a.rgb", size: "32x24", frames: 5, ["-f", "rawvideo", "-pix_fmt", "rgb24"])
        let options = InputOptions(format: "rawvideo", rawSize: PixelSize(width: 32, height: 24), rawPixelFormat: "rgb24", rawRate: 10)
        let (source, frames) = try decodeAll(clip, options)
        XCTAssertEqual(frames.count, 5)
        XCTAssertEqual(source.info.frameRate ?? 0, 10, accuracy: 1e-9)
        XCTAssertEqual(frames.last?.seconds ?? 0, 0.4, accuracy: 1e-9)
        // The raw bytes come through untouched: compare frame 2 with the file.
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: clip)))
        let f = frames[2].frame.pointee
        let row0 = Array(UnsafeBufferPointer(start: f.data.0, count: 32 * 3))
        XCTAssertEqual(row0, Array(bytes[2 * 32 * 24 * 3..<(2 * 32 * 24 * 3 + 96)]))
    }

    func testRawVideoWithAPartialLastFrameIsAnError() throws {
        let clip = try makeTestClip("a.rgb", size: "16x12", frames: 3, ["-f", "rawvideo", "-pix_fmt", "rgb24"])
        let data = try Data(contentsOf: URL(fileURLWithPath: clip))
        try data.prefix(data.count - 100).write(to: URL(fileURLWithPath: path("cut.rgb")))
        let options = InputOptions(format: "rawvideo", rawSize: PixelSize(width: 16, height: 12))
        let error = mediaError { _ = try decodeAll(path("cut.rgb"), options) }
        XCTAssertEqual(error, .partialRawFrame(file: path("cut.rgb"), bytes: 16 * 12 * 3 - 100, frameBytes: 576, framesRead: 2))
    }

    func testContainerFrameCountsAreReportedButFramesAreCounted() throws {
        guard let tree = MediaFixtures.sample("tree.avi") else { throw XCTSkip("Samples/tree.avi missing") }
        let (source, frames) = try decodeAll(tree)
        XCTAssertEqual(source.info.containerFrameCount, 444)   // what the header claims
        XCTAssertEqual(frames.count, try ffprobeFrameCount(tree))
        XCTAssertEqual(frames.count, 68)
    }

    func testSampleClipsDecodeAsFFprobeCounts() throws {
        for name in ["bikes.mp4", "carphone_pristine.mp4"] {
            guard let clip = MediaFixtures.sample(name) else { throw XCTSkip("Samples/\(name) missing") }
            let (source, frames) = try decodeAll(clip)
            XCTAssertEqual(frames.count, try ffprobeFrameCount(clip), name)
            XCTAssertEqual(source.decodeErrors, 0, name)
        }
    }

    func testFpsResamplingSelectsFramesByTimestamp() throws {
        let clip = try makeTestClip("a.mp4", rate: 25, frames: 50, ["-c:v", "libx264"])
        let (_, all) = try decodeAll(clip)
        let (_, sampled) = try decodeAll(clip, InputOptions(frameRate: 4))
        // 2 s at 4 fps: indices 0..7 at k/4 s, each showing the source frame on screen then.
        XCTAssertEqual(sampled.map(\.index), Array(0..<8))
        for frame in sampled {
            XCTAssertEqual(frame.seconds, Double(frame.index) / 4, accuracy: 1e-9)
            let shown = all.last { $0.seconds <= Double(frame.index) / 4 + 1e-9 }!
            XCTAssertEqual(frame.frame.pointee.best_effort_timestamp, shown.frame.pointee.best_effort_timestamp)
        }
        // Raising the rate repeats frames: 1 s of 5 fps at 10 fps gives 10 frames.
        let slow = try makeTestClip("slow.nut", rate: 5, frames: 5, ["-c:v", "mpeg4"])
        let (slowSource, doubled) = try decodeAll(slow, InputOptions(frameRate: 10))
        XCTAssertEqual(doubled.count, 10)
        var last: Int64 = .min
        for frame in doubled {
            XCTAssertGreaterThan(frame.pts, last)
            last = frame.pts
            XCTAssertEqual(frame.timeBase, slowSource.frameTimeBase)
            XCTAssertEqual(frame.seconds, Double(frame.index) / 10, accuracy: 1e-6)
        }
    }

    func testFpsFramesGetATimeBaseWithTicksToSpare() {
        XCTAssertEqual(VideoSource.frameTimeBase(stream: Rational(1, 12800), rate: 4), Rational(1, 12800))
        XCTAssertEqual(VideoSource.frameTimeBase(stream: Rational(1, 12800), rate: nil), Rational(1, 12800))
        // A stream clock of 1/5 s cannot tell 10 fps frames apart: a finer unit takes over.
        XCTAssertEqual(VideoSource.frameTimeBase(stream: Rational(1, 5), rate: 10), Rational(1, 90_000))
        XCTAssertEqual(VideoSource.frameTimeBase(stream: Rational(0, 0), rate: 4), Rational(1, 90_000))
        XCTAssertEqual(VideoSource.frameTimeBase(stream: Rational(1, 20), rate: 10), Rational(1, 20))
    }

    func testFpsResamplingKeepsTheSourceClockAndItsStart() throws {
        // A stream starting at 1.5 s: resampled frame k stands at 1.5 + k/4 s, in the stream's
        // own time base (the unit the .etok header records), not at k ticks.
        let clip = try makeClip("late.mp4", ["-f", "lavfi", "-i", "testsrc=size=32x32:rate=25:duration=2",
                                             "-c:v", "libx264", "-output_ts_offset", "1.5"])
        let (source, sampled) = try decodeAll(clip, InputOptions(frameRate: 4))
        XCTAssertEqual(source.frameTimeBase, source.info.timeBase)
        XCTAssertEqual(sampled.count, 8)
        for frame in sampled {
            XCTAssertEqual(frame.timeBase, source.info.timeBase)
            XCTAssertEqual(frame.seconds, 1.5 + Double(frame.index) / 4, accuracy: 1e-3)
        }
    }

    func testDecodeErrorsInADamagedFileAreCountedTheSameOnEveryRun() throws {
        // Flip bytes in the middle of an H.264 stream: the decoder conceals the damage and logs
        // it. With frame threading the frame flags and return codes of that damage depend on thread
        // timing (the count was 0 or 1 from run to run); the logged errors do not.
        FFmpegLog.silence()  // counting must not depend on printing
        let clip = try makeTestClip("t.mp4", frames: 25, ["-c:v", "libx264", "-pix_fmt", "yuv420p"])
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: clip)))
        for i in stride(from: bytes.count / 3, to: bytes.count / 3 + 400, by: 7) { bytes[i] ^= 0xFF }
        let damaged = path("damaged.mp4")
        try Data(bytes).write(to: URL(fileURLWithPath: damaged))
        var counts: [Int] = []
        for _ in 0..<4 {
            let (source, frames) = try decodeAll(damaged)
            XCTAssertEqual(frames.count, 25)
            counts.append(source.decodeErrors)
        }
        XCTAssertGreaterThan(counts[0], 0)
        XCTAssertEqual(Set(counts).count, 1, "\(counts)")
        XCTAssertEqual(try decodeAll(clip).0.decodeErrors, 0)
    }

    func testATruncatedLastFrameIsFoundOnEveryRun() throws {
        // Real footage remuxed to MPEG-TS and cut in half: nothing in the container says so, only
        // the decoder's verdict on the last frame. With frame threads that verdict came and went
        // from run to run; every run must now say the input ends early.
        guard let bikes = MediaFixtures.sample("bikes.mp4") else { throw XCTSkip("Samples/bikes.mp4 missing") }
        let ts = try makeClip("two.ts", ["-i", bikes, "-t", "2", "-c", "copy"])
        let data = try Data(contentsOf: URL(fileURLWithPath: ts))
        let cut = path("half.ts")
        try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: cut))
        FFmpegLog.silence()
        for run in 0..<6 {
            let error = mediaError { _ = try decodeAll(cut) }
            guard case .endsEarly? = error else { return XCTFail("run \(run): \(String(describing: error))") }
        }
    }

    func testACutMatroskaFileIsFoundByWhatItsDemuxerSays() throws {
        // Matroska cut inside a cluster: every packet read is whole, the decoder sees nothing
        // wrong, and only the demuxer's error ("File ended prematurely") tells. It used to pass.
        let clip = try makeTestClip("whole.mkv", frames: 50, ["-c:v", "libx264", "-pix_fmt", "yuv420p"])
        let data = try Data(contentsOf: URL(fileURLWithPath: clip))
        let cut = path("cut.mkv")
        try data.prefix(data.count * 6 / 10).write(to: URL(fileURLWithPath: cut))
        FFmpegLog.silence()
        let error = mediaError { _ = try decodeAll(cut) }
        guard case .endsEarly(_, let frames, let message)? = error else { return XCTFail(String(describing: error)) }
        XCTAssertTrue((1..<50).contains(frames), "\(frames)")
        XCTAssertTrue(message.contains("container"), message)
        XCTAssertEqual(try decodeAll(clip).1.count, 50)
        // --skip-damaged's setting keeps the frames before the cut.
        var keep = InputOptions()
        keep.keepsTruncatedInput = true
        let (source, kept) = try decodeAll(cut, keep)
        XCTAssertEqual(kept.count, frames)
        XCTAssertNotNil(source.endedEarly)
    }

    func testTheLargestVideoStreamIsTheOneRead() throws {
        // A small stream first, then the real one: as ffmpeg does, the one with most pixels wins.
        let clip = try makeClip("two.mkv", ["-f", "lavfi", "-i", "testsrc2=size=16x16:rate=5",
                                            "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=5",
                                            "-map", "0", "-map", "1", "-frames:v", "3", "-c:v", "ffv1"])
        let source = try VideoSource(path: clip)
        XCTAssertEqual(source.info.width, 64)
        XCTAssertEqual(source.info.height, 48)
    }

    func testRotationIsReadFromTheDisplayMatrix() throws {
        let plain = try makeTestClip("r.mp4", size: "64x32", frames: 2, ["-c:v", "libx264"])
        // ffmpeg writes the display matrix on a stream copy; "rotate=90" is a quarter turn counter-clockwise.
        let clip = try makeClip("r90.mp4", ["-i", plain, "-c", "copy", "-metadata:s:v:0", "rotate=90"])
        let source = try VideoSource(path: clip)
        XCTAssertEqual(source.info.rotation, 270)
    }
}
