import EtokModel
import XCTest
@testable import EtokTokenizer

/// A deterministic generator so property tests reproduce.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// An MSE curve that falls with the kept count, like a trained ElasticTok's: a * exp(-n / scale) + floor.
struct Curve {
    var a: Float, scale: Float, floor: Float
    func mse(_ n: Int) -> Float { a * Float(Foundation.exp(Double(-Float(n) / scale))) + floor }
}

final class TokenBudgetSearchTests: XCTestCase {
    let threshold: Float = 0.003

    /// The exact answer by brute force: smallest n meeting the threshold, else max.
    func bruteForce(_ f: (Int) -> Float, _ lo: Int, _ hi: Int) -> Int {
        (lo...hi).first { f($0) <= threshold } ?? hi
    }

    func randomCurves(count: Int, seed: UInt64) -> [Curve] {
        var rng = SplitMix64(state: seed)
        var scale: Float = 60
        return (0..<count).map { _ in
            // The answer drifts slowly from block to block, with an occasional cut.
            if Int.random(in: 0..<20, using: &rng) == 0 { scale = Float.random(in: 20...160, using: &rng) }
            scale = min(max(scale * Float.random(in: 0.93...1.07, using: &rng), 10), 200)
            return Curve(a: 0.05, scale: scale, floor: Float.random(in: 0.0005...0.0025, using: &rng))
        }
    }

    func testBinaryFindsTheExactSmallestPassingBudgetOnMonotoneCurves() throws {
        let search = TokenBudgetSearch(strategy: .binary, threshold: threshold, minTokens: 16, maxTokens: 256)
        for curve in randomCurves(count: 200, seed: 1) {
            let choice = search.choose { $0.map(curve.mse) }
            XCTAssertEqual(choice.keptTokens, bruteForce(curve.mse, 16, 256))
            XCTAssertEqual(choice.passes, choice.evaluations, "binary evaluates one count per pass")
            XCTAssertLessThanOrEqual(choice.passes, 9)
        }
    }

    func testEveryStrategyKeepsTheThresholdGuaranteeEvenOnNoisyCurves() throws {
        var rng = SplitMix64(state: 7)
        for strategy in SearchStrategy.allCases {
            let search = TokenBudgetSearch(strategy: strategy, threshold: threshold, minTokens: 16, maxTokens: 256)
            for curve in randomCurves(count: 100, seed: 3) {
                let noise = (0...256).map { _ in Float.random(in: 0.8...1.25, using: &rng) }
                let f = { (n: Int) in curve.mse(n) * noise[n] }
                let choice = search.choose(hint: Int.random(in: 16...256, using: &rng)) { $0.map(f) }
                XCTAssertEqual(choice.mse, f(choice.keptTokens), "\(strategy): reported MSE is the measured one")
                if choice.keptTokens != 256 {
                    XCTAssertLessThanOrEqual(choice.mse, threshold, "\(strategy) chose a failing budget")
                }
                XCTAssertEqual(choice.meetsThreshold, choice.mse <= threshold)
            }
        }
    }

    func testFastOnAnyRangeAndHintTerminatesInRangeWithinTolerance() throws {
        // Odd ranges (a minimum of 0 or 1, a single count, a few counts), hints outside the range
        // or none, noisy curves and flat ones: the search ends, asks only for counts in range,
        // never the same count twice, and on monotone curves lands within `tolerance` above
        // the exact answer.
        var rng = SplitMix64(state: 99)
        for trial in 0..<400 {
            let lo = [0, 1, 2, 16, 100].randomElement(using: &rng)!
            let hi = lo + [0, 1, 3, 20, 240].randomElement(using: &rng)!
            let search = TokenBudgetSearch(strategy: .fast, threshold: threshold, minTokens: lo, maxTokens: hi)
            let curve = randomCurves(count: 1, seed: UInt64(trial)).first!
            let noisy = trial % 2 == 0
            let noise = (0...hi).map { _ in noisy ? Float.random(in: 0.8...1.25, using: &rng) : 1 }
            let flat = trial % 7 == 0
            let f = { (n: Int) -> Float in flat ? self.threshold : curve.mse(n) * noise[n] }
            let hint: Int? = trial % 5 == 0 ? nil : Int.random(in: -10...(hi + 10), using: &rng)
            var asked = Set<Int>()
            let choice = search.choose(hint: hint) { counts in
                for n in counts {
                    XCTAssertTrue((lo...hi).contains(n), "trial \(trial): \(n) outside \(lo)...\(hi)")
                    XCTAssertTrue(asked.insert(n).inserted, "trial \(trial): \(n) asked twice")
                }
                return counts.map(f)
            }
            XCTAssertTrue((lo...hi).contains(choice.keptTokens))
            XCTAssertLessThanOrEqual(choice.evaluations, hi - lo + 1)
            if !noisy && !flat {
                let exact = bruteForce(f, lo, hi)
                XCTAssertGreaterThanOrEqual(choice.keptTokens, exact, "trial \(trial)")
                XCTAssertLessThanOrEqual(Double(choice.keptTokens - exact), max(1, search.tolerance * Double(choice.keptTokens)),
                                         "trial \(trial): \(choice.keptTokens) against \(exact)")
            }
        }
    }

    func testUnreachableThresholdFallsBackToMaxTokens() throws {
        for strategy in SearchStrategy.allCases {
            let search = TokenBudgetSearch(strategy: strategy, threshold: 1e-6, minTokens: 16, maxTokens: 256)
            let choice = search.choose(hint: 40) { $0.map { _ in 0.01 } }
            XCTAssertEqual(choice.keptTokens, 256, "\(strategy)")
            XCTAssertFalse(choice.meetsThreshold)
        }
    }

    func testEasyBlocksGetTheMinimumBudget() throws {
        for strategy in SearchStrategy.allCases {
            let search = TokenBudgetSearch(strategy: strategy, threshold: threshold, minTokens: 16, maxTokens: 256)
            let choice = search.choose(hint: 200) { $0.map { _ in 0.0001 } }
            XCTAssertEqual(choice.keptTokens, 16, "\(strategy)")
        }
    }

    func testEvaluatorReceivesDistinctAscendingCountsInRange() throws {
        for strategy in SearchStrategy.allCases {
            let search = TokenBudgetSearch(strategy: strategy, threshold: threshold, minTokens: 16, maxTokens: 256)
            for curve in randomCurves(count: 30, seed: 11) {
                _ = search.choose(hint: 100) { counts in
                    XCTAssertEqual(counts, Array(Set(counts)).sorted())
                    XCTAssertTrue(counts.allSatisfy { (16...256).contains($0) })
                    XCTAssertLessThanOrEqual(counts.count, max(2, search.batchSize))
                    return counts.map(curve.mse)
                }
            }
        }
    }

    func testLinearReturnsTheFirstPassingGridPoint() throws {
        let grid = TokenBudgetSearch.officialGrid(16, 256)
        let search = TokenBudgetSearch(strategy: .linear, threshold: threshold, minTokens: 16, maxTokens: 256)
        for curve in randomCurves(count: 50, seed: 5) {
            let expected = grid.first { curve.mse($0) <= threshold } ?? 256
            XCTAssertEqual(search.choose { $0.map(curve.mse) }.keptTokens, expected)
        }
    }

    func testOfficialGridIsLogSpacedFromMinToMax() throws {
        let grid = TokenBudgetSearch.officialGrid(16, 256)
        XCTAssertEqual(grid.first, 16)
        XCTAssertEqual(grid.last, 256)
        XCTAssertEqual(grid, grid.sorted())
        XCTAssertEqual(Set(grid).count, grid.count)
        // Log spacing: successive ratios stay near (256/16)^(1/15).
        let ratio = pow(16.0, 1.0 / 15.0)
        for (a, b) in zip(grid, grid.dropFirst()) {
            XCTAssertEqual(Double(b) / Double(a), ratio, accuracy: 0.08)
        }
    }

    /// The bar for `fast`: at most 2% more tokens in total than `binary`, and at most three
    /// passes per block on average, when budgets drift from block to block as in real video.
    func testFastSpendsAtMostTwoPercentMoreThanBinaryInFewPasses() throws {
        let curves = randomCurves(count: 400, seed: 42)
        let binary = TokenBudgetSearch(strategy: .binary, threshold: threshold, minTokens: 16, maxTokens: 256)
        let fast = TokenBudgetSearch(strategy: .fast, threshold: threshold, minTokens: 16, maxTokens: 256)
        var binaryTokens = 0, fastTokens = 0, fastPasses = 0, binaryEvaluations = 0, fastEvaluations = 0
        var hint: Int?
        for curve in curves {
            let b = binary.choose { $0.map(curve.mse) }
            binaryTokens += b.keptTokens
            binaryEvaluations += b.evaluations
            let choice = fast.choose(hint: hint) { $0.map(curve.mse) }
            fastTokens += choice.keptTokens
            fastPasses += choice.passes
            fastEvaluations += choice.evaluations
            hint = choice.keptTokens
        }
        XCTAssertLessThanOrEqual(Double(fastTokens), 1.02 * Double(binaryTokens))
        XCTAssertLessThanOrEqual(Double(fastPasses) / Double(curves.count), 3.0)
        // On a CPU the cost is the number of budgets evaluated, not passes: fast must be much
        // cheaper (0.31 here; the two-per-pass search it replaced needed 0.42).
        XCTAssertLessThanOrEqual(Double(fastEvaluations), 0.36 * Double(binaryEvaluations))
    }

    func testFastStopsAfterOneEvaluationWhenTheHintIsMaxAndStillMisses() throws {
        // A run of frames the model cannot bring under the threshold costs one evaluation each.
        let fast = TokenBudgetSearch(strategy: .fast, threshold: threshold, minTokens: 16, maxTokens: 256)
        var seen: [[Int]] = []
        let choice = fast.choose(hint: 256) { counts in seen.append(counts); return counts.map { _ in 0.01 } }
        XCTAssertEqual(seen, [[256]])
        XCTAssertEqual(choice.keptTokens, 256)
        XCTAssertFalse(choice.meetsThreshold)
    }

    func testFastClosesTheBracketInTwoEvaluationsWhenTheHintIsRight() throws {
        // The hint passes just under the threshold: the next count is the highest whose failing
        // closes the bracket (hint − 1 − tolerance·hint), and it fails.
        let fast = TokenBudgetSearch(strategy: .fast, threshold: threshold, minTokens: 16, maxTokens: 256)
        let curve = { (n: Int) -> Float in self.threshold * Float(Foundation.pow(Double(n) / 120.5, -0.75)) }
        var seen: [[Int]] = []
        let choice = fast.choose(hint: 121) { counts in seen.append(counts); return counts.map(curve) }
        XCTAssertEqual(choice.keptTokens, 121)
        XCTAssertEqual(seen.count, 2)
        XCTAssertEqual(seen.first, [121])
        XCTAssertEqual(choice.evaluations, 2)
    }

    func testFastWithoutAHintStartsAtAThirdOfTheRange() throws {
        let fast = TokenBudgetSearch(strategy: .fast, threshold: threshold, minTokens: 16, maxTokens: 256)
        var first: [Int]?
        _ = fast.choose(hint: nil) { counts in first = first ?? counts; return counts.map { _ in 0.001 } }
        XCTAssertEqual(first, [100])
    }

    /// The caller keeps what `adopt` points at and commits it at the end: that must always be
    /// the chosen count, measured in the pass that `adopt` followed, for every strategy, on noisy
    /// curves, unreachable thresholds and single-count (fixed) ranges.
    func testTheLastAdoptedCandidateIsTheChoice() throws {
        var rng = SplitMix64(state: 21)
        let ranges = [(16, 256), (16, 16), (5, 6), (0, 3)]
        for strategy in SearchStrategy.allCases {
            for (trial, curve) in randomCurves(count: 120, seed: 17).enumerated() {
                let (lo, hi) = ranges[trial % ranges.count]
                let search = TokenBudgetSearch(strategy: strategy, threshold: trial % 7 == 0 ? 1e-7 : threshold,
                                               minTokens: lo, maxTokens: hi, batchSize: 3)
                let noise = (0...256).map { _ in Float.random(in: 0.8...1.25, using: &rng) }
                var pass: [Int] = [], kept: (count: Int, mse: Float)?, adoptedThisPass = false
                let choice = search.choose(hint: Int.random(in: 0...300, using: &rng), evaluate: { counts in
                    pass = counts
                    adoptedThisPass = false
                    return counts.map { curve.mse($0) * noise[$0] }
                }, adopt: { i in
                    XCTAssertFalse(adoptedThisPass, "adopted twice after one pass")
                    adoptedThisPass = true
                    kept = (pass[i], curve.mse(pass[i]) * noise[pass[i]])
                })
                XCTAssertEqual(kept?.count, choice.keptTokens, "\(strategy) trial \(trial)")
                XCTAssertEqual(kept?.mse, choice.mse, "\(strategy) trial \(trial)")
            }
        }
    }

    func testAFixedBudgetIsOnePassAtThatCount() throws {
        let model = try ElasticTokModel.load(path: TokenizerFixtures.fsqModelPath)
        let fixed = try EncoderSettings(fixedTokens: 7).resolved(for: model.config).search
        var seen: [[Int]] = []
        let choice = fixed.choose(hint: 3) { counts in seen.append(counts); return counts.map { _ in 1 } }
        XCTAssertEqual(seen, [[7]])
        XCTAssertEqual(choice.keptTokens, 7)
        XCTAssertFalse(choice.meetsThreshold)
        XCTAssertEqual(choice.passes, 1)
    }
}
