import XCTest
@testable import EtokTokenizer

/// `EncodeSummary.reachablePSNR`: the strictest PSNR that a share of the blocks reach, from one encode.
final class EncodeSummaryTests: XCTestCase {
    func summary(met: Int, missedPSNR: [Double], threshold: Double = 0.01) -> EncodeSummary {
        var blocks: [BlockStats] = []
        for i in 0..<met {
            let mse = threshold * 0.9
            blocks.append(BlockStats(block: i, pts: 0, seconds: 0, kept: 40, mse: mse, psnr: psnr(mse: mse),
                                     meetsThreshold: true, passes: 1, evaluations: 1))
        }
        for (j, p) in missedPSNR.enumerated() {
            blocks.append(BlockStats(block: met + j, pts: 0, seconds: 0, kept: 256, mse: 4 / pow(10, p / 10), psnr: p,
                                     meetsThreshold: false, passes: 1, evaluations: 1))
        }
        return EncodeSummary(input: "in", output: "out", model: "m", threshold: threshold, search: "fast",
                             blocks: blocks.count, frames: blocks.count, chunks: 1, tokens: 0, maxTokensPerBlock: 256,
                             meanTokens: 0, savings: 0, meanPSNR: 0, shareMeetingThreshold: Double(met) / Double(blocks.count),
                             passesPerBlock: 1, bytes: 0, bitsPerToken: 0, decodeErrors: 0, seconds: 0, perBlock: blocks)
    }

    func testNilWhenEnoughBlocksMetTheThreshold() {
        XCTAssertNil(summary(met: 96, missedPSNR: [18, 19, 20, 21]).reachablePSNR(share: 0.95))
        XCTAssertNil(summary(met: 95, missedPSNR: [18, 19, 20, 21, 22]).reachablePSNR(share: 0.95))
    }

    func testTheAnswerIsTheStrictestPSNRThatTheShareReaches() {
        var rng = SplitMix64(state: 7)
        for _ in 0..<200 {
            let n = Int.random(in: 20...300, using: &rng)
            let met = Int.random(in: 0..<n, using: &rng)
            let missed = (0..<(n - met)).map { _ in Double.random(in: 15..<19.9, using: &rng) }
            let share = [0.5, 0.9, 0.95, 0.99].randomElement(using: &rng)!
            let s = summary(met: met, missedPSNR: missed)
            // A block reaches X when it met the threshold (0.01, 26 dB: above every missed block's
            // 15-19.9 dB, so above any X returned) or when its best PSNR is at least X.
            func reaching(_ x: Double) -> Int { met + missed.filter { $0 >= x }.count }
            guard let x = s.reachablePSNR(share: share) else {
                XCTAssertGreaterThanOrEqual(Double(met), share * Double(n) - 1e-9)
                continue
            }
            XCTAssertGreaterThanOrEqual(Double(reaching(x)), share * Double(n) - 1e-9)
            // Any stricter target loses the share.
            XCTAssertLessThan(Double(reaching(x.nextUp)), share * Double(n) - 1e-9)
        }
    }
}
