@testable import EtokFormat
@testable import EtokTokenizer
import XCTest

/// Frames after the first of a multi-frame block get times one frame period apart when decoded.
final class FrameTicksTests: XCTestCase {
    private func header(timeBase: EtokHeader.Rational, sourceFPS: EtokHeader.Rational?, encodingFPS: Double?) -> EtokHeader {
        EtokHeader(
            etokVersion: "0.1.0",
            model: .init(name: "t", sha256: String(repeating: "ab", count: 32), imageSize: [32, 32],
                         patchSize: [2, 8, 8], framesPerBlock: 2, minToks: 1, maxToks: 16,
                         contextBlocks: 3, bottleneck: .fsq, fsqQuantLevels: [8, 5, 5, 5]),
            encoding: .init(threshold: 0.003, search: .fast, fit: .crop, fps: encodingFPS, chunkBlocks: 3,
                            tokenCoding: .rcFSQ2),
            source: .init(name: "clip.mp4", width: 64, height: 64, timeBase: timeBase, fps: sourceFPS, duration: nil))
    }

    func testOneFramePeriodInTicks() {
        // 25 fps on a 1/12800 clock: 512 ticks a frame (was 1 tick: frames 1/12800 s apart).
        XCTAssertEqual(DecodeRun.frameTicks(header(timeBase: .init(1, 12800), sourceFPS: .init(25, 1), encodingFPS: nil)), 512)
        // --fps 4 resampled: the encoding's rate wins.
        XCTAssertEqual(DecodeRun.frameTicks(header(timeBase: .init(1, 12800), sourceFPS: .init(25, 1), encodingFPS: 4)), 3200)
        // A clock of one frame period, and an unknown rate: one tick.
        XCTAssertEqual(DecodeRun.frameTicks(header(timeBase: .init(1, 25), sourceFPS: .init(25, 1), encodingFPS: nil)), 1)
        XCTAssertEqual(DecodeRun.frameTicks(header(timeBase: .init(1, 90000), sourceFPS: nil, encodingFPS: nil)), 1)
        XCTAssertEqual(DecodeRun.frameTicks(header(timeBase: .init(1001, 30000), sourceFPS: .init(30000, 1001), encodingFPS: nil)), 1)
        // Absurd but valid headers give one tick, not a trap converting an enormous Double.
        XCTAssertEqual(DecodeRun.frameTicks(header(timeBase: .init(1, Int.max), sourceFPS: .init(25, 1), encodingFPS: nil)), 1)
        XCTAssertEqual(DecodeRun.frameTicks(header(timeBase: .init(1, 12800), sourceFPS: nil, encodingFPS: 1e-300)), 1)
    }
}
