import XCTest
@testable import EtokMedia

/// A seeded generator for the property tests here, so that a failing case fails on every run
/// (SplitMix64).
private struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

final class FitGeometryTests: XCTestCase {
    private func randomShapes(_ n: Int, seed: UInt64 = 2026) -> [(w: Int, h: Int, aspect: Double, cw: Int, ch: Int)] {
        var rng = SeededGenerator(state: seed)
        return (0..<n).map { _ in
            (Int.random(in: 16...1920, using: &rng), Int.random(in: 16...1080, using: &rng),
             [1.0, 128.0 / 117.0, 4.0 / 3.0, 0.9].randomElement(using: &rng)!,
             Int.random(in: 8...256, using: &rng), Int.random(in: 8...256, using: &rng))
        }
    }

    func testCropKeepsTheCentredRegionWithTheCanvasShape() {
        for s in randomShapes(500) {
            let plan = FitPlan(width: s.w, height: s.h, aspect: s.aspect, canvasWidth: s.cw, canvasHeight: s.ch, mode: .crop)
            let r = plan.source
            XCTAssertEqual(plan.target, PixelRect(x: 0, y: 0, width: s.cw, height: s.ch))
            XCTAssertTrue(r.x >= 0 && r.y >= 0 && r.x + r.width <= s.w && r.y + r.height <= s.h, "\(s) \(r)")
            XCTAssertLessThanOrEqual(abs(2 * r.x + r.width - s.w), 1)
            XCTAssertLessThanOrEqual(abs(2 * r.y + r.height - s.h), 1)
            // One side is kept whole (shortest side scaled to fit), and the shown shape matches the canvas.
            XCTAssertTrue(r.width == s.w || r.height == s.h)
            let shown = Double(r.width) * s.aspect / Double(r.height)
            let wanted = Double(s.cw) / Double(s.ch)
            let tolerance = wanted * (1.0 / Double(r.width) + 1.0 / Double(r.height)) + 1e-9
            // A region is at least one pixel wide and high: where the ideal one is thinner (a
            // 1719x16 frame on an 8x253 canvas wants 0.5 px), only that minimum can be asked for.
            let idealWidth = wanted * Double(r.height) / s.aspect, idealHeight = Double(r.width) * s.aspect / wanted
            if idealWidth < 1 || idealHeight < 1 {
                XCTAssertTrue(r.width == 1 || r.height == 1, "\(s) \(r)")
                continue
            }
            XCTAssertEqual(shown, wanted, accuracy: tolerance, "\(s) \(r)")
        }
    }

    func testPadKeepsTheWholePictureLetterboxedInTheCentre() {
        for s in randomShapes(500) {
            let plan = FitPlan(width: s.w, height: s.h, aspect: s.aspect, canvasWidth: s.cw, canvasHeight: s.ch, mode: .pad)
            let t = plan.target
            XCTAssertEqual(plan.source, PixelRect(x: 0, y: 0, width: s.w, height: s.h))
            XCTAssertTrue(t.width == s.cw || t.height == s.ch, "\(s) \(t)")
            XCTAssertLessThanOrEqual(abs(2 * t.x + t.width - s.cw), 1)
            XCTAssertLessThanOrEqual(abs(2 * t.y + t.height - s.ch), 1)
            let shown = Double(s.w) * s.aspect / Double(s.h)
            let tolerance = shown * (1.0 / Double(t.width) + 1.0 / Double(t.height)) + 1e-9
            // The picture is at least one pixel wide and high on the canvas (a 20x913 frame in a
            // 38x11 canvas would be 0.24 px wide): there only that minimum can be asked for.
            if shown * Double(t.height) < 1 || Double(t.width) / shown < 1 {
                XCTAssertTrue(t.width == 1 || t.height == 1, "\(s) \(t)")
                continue
            }
            XCTAssertEqual(Double(t.width) / Double(t.height), shown, accuracy: tolerance, "\(s) \(t)")
        }
    }

    func testStretchUsesEverythingEverywhere() {
        let plan = FitPlan(width: 640, height: 272, canvasWidth: 128, canvasHeight: 128, mode: .stretch)
        XCTAssertEqual(plan.source, PixelRect(x: 0, y: 0, width: 640, height: 272))
        XCTAssertEqual(plan.target, PixelRect(x: 0, y: 0, width: 128, height: 128))
    }

    func testImagePatternsNumberWithPadding() {
        XCTAssertEqual(ImagePattern("frames/%05d.png")?.path(for: 7), "frames/00007.png")
        XCTAssertEqual(ImagePattern("a%d-%%.png")?.path(for: 12), "a12-%.png")
        XCTAssertNil(ImagePattern("a.png"))
        XCTAssertNil(ImagePattern("%d%d.png"))
        XCTAssertNil(ImagePattern("%s.png"))
    }
}

final class FrameRateSamplerTests: XCTestCase {
    /// Reference: for each output time, search every source interval for the one containing it.
    private func reference(_ times: [Double], last: Double, rate: Double) -> [Int] {
        var result: [Int] = []
        var k = 0
        let ends = Array(times.dropFirst()) + [last]
        while true {
            let t = times[0] + Double(k) / rate
            guard t < last - 1e-9 else { break }
            guard let i = times.indices.first(where: { times[$0] - 1e-9 <= t && t < ends[$0] - 1e-9 }) else { break }
            result.append(i)
            k += 1
        }
        return result
    }

    func testSamplerPicksTheFrameOnScreenAtEachOutputTime() {
        var rng = SeededGenerator(state: 2026)
        for _ in 0..<200 {
            let count = Int.random(in: 1...80, using: &rng)
            var times = [Double.random(in: 0...3, using: &rng)]
            for _ in 1..<count { times.append(times.last! + Double.random(in: 0.005...0.3, using: &rng)) }
            let last = times.last! + 0.04
            let rate = [1.0, 4.0, 7.5, 25.0, 30000.0 / 1001.0, 60.0].randomElement(using: &rng)!
            var sampler = FrameRateSampler(rate: rate)
            var picked: [Int] = []
            for i in times.indices {
                let end = i + 1 < times.count ? times[i + 1] : last
                picked += sampler.indices(from: times[i], to: end).map { _ in i }
            }
            XCTAssertEqual(picked, reference(times, last: last, rate: rate), "rate \(rate)")
        }
    }

    func testExactBoundariesGoToTheLaterFrame() {
        // 25 fps source resampled to 5 fps: frames 0, 5, 10... exactly.
        var sampler = FrameRateSampler(rate: 5)
        var picked: [Int] = []
        for i in 0..<50 {
            let start = Double(i * 512) / 12800, end = Double((i + 1) * 512) / 12800
            picked += sampler.indices(from: start, to: end).map { _ in i }
        }
        XCTAssertEqual(picked, stride(from: 0, to: 50, by: 5).map { $0 })
    }
}
