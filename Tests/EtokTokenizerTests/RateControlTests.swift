import EtokFormat
import EtokMedia
import EtokModel
import Foundation
import XCTest
@testable import EtokTokenizer

/// The rate-control rules on their own (allocator, bucket, chunk stage) and on the tiny models.
final class RateControlTests: XCTestCase {
    /// A block's measured points: a falling curve sampled at a random grid, with noise (the MSE
    /// need not fall monotonically), as the encoder measures them.
    func randomCurve(_ rng: inout SplitMix64, lo: Int, hi: Int) -> [RatePoint] {
        let curve = Curve(a: Float.random(in: 0.01...0.2, using: &rng), scale: Float.random(in: 10...200, using: &rng),
                          floor: Float.random(in: 0.0005...0.01, using: &rng))
        var counts = Set([lo])
        for _ in 0..<Int.random(in: 0...7, using: &rng) { counts.insert(Int.random(in: lo...hi, using: &rng)) }
        return counts.sorted().map { n in
            RatePoint(tokens: n, mse: Double(curve.mse(n)) * Double.random(in: 0.85...1.15, using: &rng))
        }
    }

    /// The property the issue asks for: on any curves and any cap at least the blocks' floor, the
    /// allocation never exceeds the cap, meets it exactly unless every block is at its curve's end,
    /// and keeps each block within its measured range.
    func testTheCapIsNeverExceededOnRandomCurves() {
        var rng = SplitMix64(state: 16)
        for trial in 0..<600 {
            let lo = [0, 1, 16].randomElement(using: &rng)!
            let hi = lo + [0, 5, 240].randomElement(using: &rng)!
            let curves = (0..<Int.random(in: 1...12, using: &rng)).map { _ in randomCurve(&rng, lo: lo, hi: hi) }
            let floor = curves.map { $0.map(\.tokens).min()! }.reduce(0, +)
            let ceiling = curves.map { $0.map(\.tokens).max()! }.reduce(0, +)
            let cap = Int.random(in: floor...(ceiling + 50), using: &rng)
            let a = RateAllocator.allocate(curves: curves, cap: cap)
            let total = a.counts.reduce(0, +)
            XCTAssertLessThanOrEqual(total, cap, "trial \(trial)")
            let atEnds = zip(curves, a.counts).allSatisfy { curve, n in n == curve.map(\.tokens).max()! }
            XCTAssertTrue(total == cap || atEnds, "trial \(trial): \(total) of \(cap) with room left")
            for (curve, n) in zip(curves, a.counts) {
                XCTAssertTrue((curve.map(\.tokens).min()!...curve.map(\.tokens).max()!).contains(n), "trial \(trial)")
            }
        }
    }

    /// Equal slope is optimal: on three blocks no other split of the same total has a lower summed
    /// modelled MSE, or summed log MSE for the PSNR objective (brute force over every split).
    func testNoOtherSplitOfTheTotalHasLessModelledError() {
        var rng = SplitMix64(state: 5)
        for trial in 0..<60 {
            let objective: RateObjective = trial % 2 == 0 ? .mse : .psnr
            let curves = (0..<3).map { _ in randomCurve(&rng, lo: 4, hi: 40) }
            let models = curves.map { curve in
                RateAllocator.hull(RateAllocator.filledIn(curve).map { objective == .mse ? $0 : RatePoint(tokens: $0.tokens, mse: log($0.mse)) })
            }
            let ranges = models.map { $0.first!.tokens...$0.last!.tokens }
            let cap = Int.random(in: ranges.map(\.lowerBound).reduce(0, +)...ranges.map(\.upperBound).reduce(0, +), using: &rng)
            let a = RateAllocator.allocate(curves: curves, cap: cap, objective: objective)
            XCTAssertEqual(a.counts.reduce(0, +), cap)
            func cost(_ n: [Int]) -> Double { zip(models, n).map { RateAllocator.interpolate($0, $1) }.reduce(0, +) }
            var best = Double.infinity
            for x in ranges[0] {
                for y in ranges[1] {
                    let z = cap - x - y
                    if ranges[2].contains(z) { best = min(best, cost([x, y, z])) }
                }
            }
            XCTAssertLessThanOrEqual(cost(a.counts), best + 1e-9, "trial \(trial) \(objective): \(a.counts)")
        }
    }

    /// A block whose error falls faster gets more of the tokens than an easy one.
    func testTheHarderBlockGetsMoreTokens() {
        let easy = [16, 64, 256].map { RatePoint(tokens: $0, mse: 0.002 * pow(Double($0) / 16, -0.3)) }
        let hard = [16, 64, 256].map { RatePoint(tokens: $0, mse: 0.05 * pow(Double($0) / 16, -0.8)) }
        let a = RateAllocator.allocate(curves: [easy, hard, easy], cap: 300)
        XCTAssertEqual(a.counts.reduce(0, +), 300)
        XCTAssertGreaterThan(a.counts[1], a.counts[0])
        XCTAssertEqual(a.counts[0], a.counts[2])
        // The PSNR objective weighs relative gains: the easy block's MSE halves as fast, so it
        // keeps more than under the MSE objective.
        let p = RateAllocator.allocate(curves: [easy, hard, easy], cap: 300, objective: .psnr)
        XCTAssertEqual(p.counts.reduce(0, +), 300)
        XCTAssertGreaterThan(p.counts[0], a.counts[0])
    }

    /// The balanced objective's guarantees on any curves and any cap at least the blocks' floor:
    /// the cap is spent exactly (never exceeded), every block keeps at least its floor count and is
    /// predicted at or below the floor MSE, and the floor is no worse than the even split's worst
    /// block and no better than what every block can reach within the cap (the maximin).
    func testTheBalancedFloorHoldsOnRandomCurves() {
        var rng = SplitMix64(state: 29)
        for trial in 0..<600 {
            let lo = [0, 1, 16].randomElement(using: &rng)!
            let hi = lo + [0, 5, 240].randomElement(using: &rng)!
            let curves = (0..<Int.random(in: 1...12, using: &rng)).map { _ in randomCurve(&rng, lo: lo, hi: hi) }
            let smallest = curves.map { $0.map(\.tokens).min()! }.reduce(0, +)
            let ceiling = curves.map { $0.map(\.tokens).max()! }.reduce(0, +)
            let cap = Int.random(in: smallest...(ceiling + 50), using: &rng)
            let floor = RateAllocator.balancedFloor(curves: curves, cap: cap)
            let a = RateAllocator.allocate(curves: curves, cap: cap, objective: .balanced)
            let total = a.counts.reduce(0, +)
            XCTAssertLessThanOrEqual(total, cap, "trial \(trial)")
            let atEnds = zip(curves, a.counts).allSatisfy { curve, n in n == curve.map(\.tokens).max()! }
            XCTAssertTrue(total == cap || atEnds, "trial \(trial): \(total) of \(cap) with room left")
            XCTAssertLessThanOrEqual(floor.counts.reduce(0, +), cap, "trial \(trial)")
            let filled = curves.map(RateAllocator.filledIn)
            // The even split (the first cap % blocks one token more), clamped to each curve.
            let even = filled.enumerated().map { b, f -> Double in
                let n = min(max(cap / curves.count + (b < cap % curves.count ? 1 : 0), f.first!.tokens), f.last!.tokens)
                return f.first { $0.tokens == n }!.mse
            }
            XCTAssertLessThanOrEqual(floor.mse, even.max()! * (1 + 1e-12), "trial \(trial): no worse than the even split")
            for b in curves.indices {
                XCTAssertGreaterThanOrEqual(a.counts[b], floor.counts[b], "trial \(trial) block \(b)")
                XCTAssertLessThanOrEqual(filled[b].first { $0.tokens == floor.counts[b] }!.mse, floor.mse * (1 + 1e-12),
                                         "trial \(trial) block \(b): the floor count reaches the floor")
                XCTAssertLessThanOrEqual(a.predictedMSE[b], floor.mse * (1 + 1e-9), "trial \(trial) block \(b): predicted below the floor")
            }
            // The maximin, by brute force (every sixth trial: it is slow): the lowest MSE among the
            // curves' values that every block reaches with counts summing to at most the cap. The
            // floor lies between it and the even split's worst.
            let reachable = trial % 6 != 0 ? [] : Set(filled.flatMap { $0.map(\.mse) }).filter { m in
                let need = filled.map { f in f.first { $0.mse <= m }?.tokens }
                return need.allSatisfy { $0 != nil } && need.map { $0! }.reduce(0, +) <= cap
            }
            if trial % 6 == 0, let best = reachable.min() {
                XCTAssertGreaterThanOrEqual(floor.mse, best * (1 - 1e-12), "trial \(trial): beyond the maximin")
                XCTAssertEqual(floor.mse, max(best, even.max()! / pow(10, RateAllocator.floorMargin / 10)),
                               accuracy: floor.mse * 1e-12, "trial \(trial): the margin over the even split, or the maximin")
            }
        }
    }

    /// A worked case: A's MSE falls 1 → 0.5 over 0…10 tokens, B's 0.4 → 0.2 (straight: a count of
    /// 0 fills in linearly), 10 tokens. The even split (5, 5) leaves A at 0.75; the maximin is 0.5
    /// (A at 10, B at 0: B needs nothing to reach it); the floor is 0.5 dB above the even split,
    /// 0.75 / 10^0.05 = 0.668, which A first reaches at 7 tokens (0.65) and B at 0. The 3 left go
    /// by equal slope of log MSE: A's chord 7→10 falls 0.087 per token, B's 0→10 0.069, so A.
    func testTheBalancedFloorOnAWorkedCase() {
        let a = [RatePoint(tokens: 0, mse: 1), RatePoint(tokens: 10, mse: 0.5)]
        let b = [RatePoint(tokens: 0, mse: 0.4), RatePoint(tokens: 10, mse: 0.2)]
        let floor = RateAllocator.balancedFloor(curves: [a, b], cap: 10)
        XCTAssertEqual(floor.mse, 0.75 / pow(10, 0.05), accuracy: 1e-12)
        XCTAssertEqual(floor.counts, [7, 0])
        // 6 tokens: even (3, 3) leaves A at 0.85; 0.85 / 10^0.05 = 0.758 needs A at 5 (0.75), B at
        // 0: fits. 3 tokens: even (2, 1) leaves A at 0.9, the margin asks 0.802 (A at 4), but
        // A can reach only 0.85 with all 3: the maximin binds.
        XCTAssertEqual(RateAllocator.balancedFloor(curves: [a, b], cap: 6).counts, [5, 0])
        let tight = RateAllocator.balancedFloor(curves: [a, b], cap: 3)
        XCTAssertEqual(tight.mse, 0.85, accuracy: 1e-12)
        XCTAssertEqual(tight.counts, [3, 0])
        let balanced = RateAllocator.allocate(curves: [a, b], cap: 10, objective: .balanced)
        XCTAssertEqual(balanced.counts, [10, 0])
        XCTAssertEqual(balanced.predictedMSE[0], 0.5, accuracy: 1e-12)
        // The PSNR objective alone starves A next to a block whose MSE falls 8× (A's chord falls
        // ln 2 / 10 per token, the other's ln 8 / 10); the floor keeps A at 7 or more.
        let easy = [RatePoint(tokens: 0, mse: 0.4), RatePoint(tokens: 10, mse: 0.05)]
        XCTAssertEqual(RateAllocator.allocate(curves: [a, easy], cap: 10, objective: .psnr).counts, [0, 10])
        XCTAssertEqual(RateAllocator.balancedFloor(curves: [a, easy], cap: 10).counts[0], 7)
        XCTAssertGreaterThanOrEqual(RateAllocator.allocate(curves: [a, easy], cap: 10, objective: .balanced).counts[0], 7)
    }

    /// Runs `ClosedLoopCommit` over a chunk whose true error is `truth(block, count, committed so
    /// far)` (the encoder's batched pass, faked): returns the committed counts.
    func runClosedLoop(_ loop: ClosedLoopCommit, blocks: Int, truth: (Int, Int, [Int]) -> Double) -> [Int] {
        var loop = loop, committed: [Int] = []
        for k in 0..<blocks {
            let counts = loop.candidates(k)
            XCTAssertEqual(counts, counts.sorted(), "ascending")
            XCTAssertEqual(Set(counts).count, counts.count, "distinct")
            let mse = counts.count > 1 ? counts.map { truth(k, $0, committed) } : nil
            committed.append(loop.choose(k, mse: mse))
            XCTAssertTrue(counts.contains(committed[k]))
        }
        return committed
    }

    /// The closed loop keeps the chunk's total to the token whatever the true errors do (here the
    /// measured curve times a per-block factor, worse after starved predecessors), never takes
    /// a block outside min…max, and always leaves the later blocks their smallest count.
    func testTheClosedLoopSpendsTheChunkTotalExactlyWhateverTheTrueErrors() {
        var rng = SplitMix64(state: 41)
        for trial in 0..<400 {
            let lo = [1, 16].randomElement(using: &rng)!, hi = lo + [5, 240].randomElement(using: &rng)!
            let n = Int.random(in: 1...6, using: &rng)
            let grid = TokenBudgetSearch.officialGrid(lo, hi, points: 6)
            let curves = (0..<n).map { _ -> [RatePoint] in
                let c = Curve(a: Float.random(in: 0.01...0.2, using: &rng), scale: Float.random(in: 10...200, using: &rng),
                              floor: Float.random(in: 0.0005...0.01, using: &rng))
                return grid.map { RatePoint(tokens: $0, mse: Double(c.mse($0))) }
            }
            let total = Int.random(in: (lo * n)...(hi * n), using: &rng)
            let counts = RateAllocator.allocate(curves: curves, cap: total, objective: .balanced).counts
            let floor = RateAllocator.balancedFloor(curves: curves, cap: total, margin: 0.2).mse
            let factor = (0..<n).map { _ in Double.random(in: 0.7...1.6, using: &rng) }
            let filled = curves.map(RateAllocator.filledIn)
            let committed = runClosedLoop(ClosedLoopCommit(counts: counts, curves: curves, floorMSE: floor, minTokens: lo, maxTokens: hi),
                                          blocks: n) { k, c, before in
                let starved = before.enumerated().map { max(0, Double(counts[$0] - $1)) / Double(hi) }.reduce(0, +)
                return filled[k].first { $0.tokens == c }!.mse * factor[k] * (1 + starved)
            }
            XCTAssertEqual(committed.reduce(0, +), total, "trial \(trial): \(counts) -> \(committed)")
            XCTAssertTrue(committed.allSatisfy { (lo...hi).contains($0) }, "trial \(trial): \(committed)")
        }
    }

    /// A block that misses the floor at its planned count with its real context is raised to the
    /// smallest candidate that meets it while the later blocks still do (as predicted), and they
    /// give the tokens back; a block that meets it keeps its count (a plain commit of the planned
    /// counts would keep [40, 40, 40]). Raising stops where a later block would become the worst.
    func testTheClosedLoopRaisesABlockThatMissesItsFloor() {
        let hard = [16, 32, 64, 128].map { RatePoint(tokens: $0, mse: 0.02 * pow(Double($0) / 16, -0.7)) }
        let easy = hard.map { RatePoint(tokens: $0.tokens, mse: $0.mse / 2) }
        let loop = ClosedLoopCommit(counts: [40, 40, 40], curves: [hard, easy, easy], floorMSE: 0.0106, minTokens: 16, maxTokens: 128)
        XCTAssertEqual(loop.candidates(0), [40, 48, 58, 70])
        let filled = RateAllocator.filledIn(hard)
        func model(_ n: Int) -> Double { filled.first { $0.tokens == n }!.mse }
        // The hard curve is 0.02 · (n / 16)^−0.7: 0.01053 at 40, under the floor. Block 0 is 1.4×
        // worse than its curve: 0.0147 at 40, 0.0130 at 48, 0.0114 at 58 miss; 0.0100 at 70 meets,
        // and leaves 50 tokens: 25 each for the easy blocks, 0.0074 on their curve, 0.0103 with
        // block 0's miss: under the floor too.
        let committed = runClosedLoop(loop, blocks: 3) { k, n, _ in model(n) * (k == 0 ? 1.4 : 0.5) }
        XCTAssertEqual(committed[0], 70)
        XCTAssertEqual(committed.reduce(0, +), 120)
        XCTAssertLessThan(committed[1], 40)
        // Where the truth is the curve, every block keeps its plan.
        XCTAssertEqual(runClosedLoop(loop, blocks: 3) { k, n, _ in model(n) * (k == 0 ? 1 : 0.5) }, [40, 40, 40])
        // With hard later blocks, 70 would leave them at 0.0147 · 1.4 (predicted, with the miss):
        // worse than block 0 keeping 40, so it does.
        let tight = ClosedLoopCommit(counts: [40, 40, 40], curves: [hard, hard, hard], floorMSE: 0.0106, minTokens: 16, maxTokens: 128)
        XCTAssertEqual(runClosedLoop(tight, blocks: 3) { k, n, _ in model(n) * (k == 0 ? 1.4 : 1) }[0], 40)
    }

    /// `--budget`'s whole-file split on any curves: the total is spent exactly (unless every block
    /// is at its largest count) and never exceeded, every block keeps at least its lower bound,
    /// the bounds fit the total, and no chunk goes over a cap per chunk.
    func testTheBudgetFloorsHoldAndTheTotalIsSpentOnRandomCurves() {
        var rng = SplitMix64(state: 53)
        for trial in 0..<200 {
            let curves = (0..<Int.random(in: 1...24, using: &rng)).map { _ in randomCurve(&rng, lo: 16, hi: 256) }
            let chunkBlocks = Int.random(in: 1...4, using: &rng)
            let total = Int.random(in: (16 * curves.count)...(256 * curves.count), using: &rng)
            let chunkCap: Int? = trial % 3 == 0 ? Int.random(in: (16 * chunkBlocks)...(256 * chunkBlocks), using: &rng) : nil
            let split = RateAllocator.allocateBudget(curves: curves, total: total, chunkBlocks: chunkBlocks, chunkCap: chunkCap)
            XCTAssertLessThanOrEqual(split.floor.counts.reduce(0, +), total, "trial \(trial)")
            XCTAssertLessThanOrEqual(split.counts.reduce(0, +), total, "trial \(trial)")
            let chunks = stride(from: 0, to: curves.count, by: chunkBlocks).map { $0..<min($0 + chunkBlocks, curves.count) }
            if let chunkCap {
                for c in chunks { XCTAssertLessThanOrEqual(split.counts[c].reduce(0, +), chunkCap, "trial \(trial)") }
            } else {
                let atEnds = zip(curves, split.counts).allSatisfy { $1 == $0.map(\.tokens).max()! }
                XCTAssertTrue(split.counts.reduce(0, +) == total || atEnds, "trial \(trial)")
                for b in curves.indices { XCTAssertGreaterThanOrEqual(split.counts[b], split.floor.counts[b], "trial \(trial) block \(b)") }
            }
            XCTAssertTrue(split.counts.allSatisfy { (16...256).contains($0) }, "trial \(trial)")
        }
    }

    /// A chunk of four alike blocks and a harder one-block chunk after it (which sets the floor):
    /// the easy chunk's lower bounds rise with the position (`positionMargin` dB more each), none
    /// under half the share. Worked numbers: the curve 0.02 · (n / 16)^−0.7, the easy ones ÷ 1.5;
    /// the floor is the hard block at the share (120) less 0.3 dB; the easy blocks reach it,
    /// 0.7 dB more per position, at 75, 94, 118 and 149 tokens, the hard block at 133.
    func testTheBudgetFloorRisesWithThePositionInTheChunk() throws {
        let hard = [16, 32, 64, 128, 256].map { RatePoint(tokens: $0, mse: 0.02 * pow(Double($0) / 16, -0.7)) }
        let easy = hard.map { RatePoint(tokens: $0.tokens, mse: $0.mse / 1.5) }
        let curves = [easy, easy, easy, easy, hard]
        let floors = RateAllocator.budgetFloors(curves: curves, total: 600, chunkBlocks: 4)
        XCTAssertEqual(floors.least, 60)
        let mse = try XCTUnwrap(floors.mse)
        XCTAssertEqual(mse, 0.02 * pow(120.0 / 16, -0.7) / pow(10, RateAllocator.budgetFloorMargin / 10), accuracy: 1e-9)
        XCTAssertEqual(floors.counts, [75, 94, 118, 149, 133])
        let split = RateAllocator.allocateBudget(curves: curves, total: 600, chunkBlocks: 4, chunkCap: nil)
        XCTAssertEqual(split.counts.reduce(0, +), 600)
        XCTAssertTrue(zip(split.counts, floors.counts).allSatisfy { $0 >= $1 })
    }

    func testTheHullDropsPointsAboveTheChordAndPastTheLowestError() {
        let points = [RatePoint(tokens: 10, mse: 1), RatePoint(tokens: 20, mse: 0.9), RatePoint(tokens: 30, mse: 0.2),
                      RatePoint(tokens: 40, mse: 0.1), RatePoint(tokens: 50, mse: 0.15)]
        XCTAssertEqual(RateAllocator.hull(points).map(\.tokens), [10, 30, 40])
    }

    /// The bucket gives out what the rate allows to within half a token, and carries what a clamp
    /// withheld into later chunks.
    func testTheBucketTracksTheTargetAndRepaysClamps() {
        var rng = SplitMix64(state: 3)
        var bucket = TokenRateBucket(rate: 1234.5)
        var seconds = 0.0
        for _ in 0..<500 {
            let s = Double.random(in: 0.01...0.5, using: &rng)
            seconds += s
            _ = bucket.cap(seconds: s, range: 0...100_000)
            XCTAssertLessThanOrEqual(abs(Double(bucket.given) - 1234.5 * seconds), 0.5 + 1e-6)
        }
        var clamped = TokenRateBucket(rate: 100)
        XCTAssertEqual(clamped.cap(seconds: 1, range: 0...40), 40)
        XCTAssertEqual(clamped.cap(seconds: 1, range: 0...1000), 160, "the 60 withheld come back")
    }

    func frame(_ i: Int, seconds: Double) -> VideoFrame {
        VideoFrame(index: i, pts: Int64((seconds * 1000).rounded()), timeBase: Rational(1, 1000), width: 1, height: 1, rgb: [0, 0, 0])
    }

    /// The chunk stage's caps add up to the rate over the frames' time (irregular timestamps
    /// included: the time between chunks, not a nominal frame rate), and respect the cap per chunk.
    func testTheChunkStageCapsFollowTheMediaTime() throws {
        var times: [Double] = [0]
        var rng = SplitMix64(state: 11)
        for _ in 1..<23 { times.append(times.last! + Double.random(in: 0.02...0.9, using: &rng)) }
        func caps(_ cap: Int?) throws -> (counts: [Int], firsts: [Int], caps: [Int]) {
            var gatherer = ChunkGatherer(framesPerBlock: 1, chunkBlocks: 4,
                                         planner: .bucket(TokenRateBucket(rate: 300), tokens: 16...256, cap: cap, repeats: false, fallbackInterval: 0.04))
            var chunks: [ChunkFrames] = []
            for (i, t) in times.enumerated() { try gatherer.process(frame(i, seconds: t)) { chunks.append($0) } }
            try gatherer.finish { chunks.append($0) }
            return (chunks.map(\.frames.count), chunks.map(\.firstBlock), chunks.map { chunk -> Int in
                guard case .cap(let c)? = chunk.plan else { XCTFail("no cap"); return 0 }
                return c
            })
        }
        let free = try caps(nil)
        XCTAssertEqual(free.counts, [4, 4, 4, 4, 4, 3])
        XCTAssertEqual(free.firsts, [0, 4, 8, 12, 16, 20])
        let covered = coveredSeconds(first: times.first!, last: times.last!, frames: times.count, fallbackInterval: 0.04)
        XCTAssertEqual(Double(free.caps.reduce(0, +)), 300 * covered, accuracy: 0.5)
        XCTAssertGreaterThan(Set(free.caps).count, 2, "irregular times give unequal caps: \(free.caps)")
        let capped = try caps(300)
        XCTAssertTrue(capped.caps.allSatisfy { $0 <= 300 }, "\(capped.caps)")
        // A rate below every block's least (4 × 16 per chunk): with repeats a chunk can keep as little
        // as its first block's 16, so the caps still add up to the rate; without, each is clamped to 64.
        func lowCaps(repeats: Bool) throws -> [Int] {
            var gatherer = ChunkGatherer(framesPerBlock: 1, chunkBlocks: 4,
                                         planner: .bucket(TokenRateBucket(rate: 20), tokens: 16...256, cap: nil, repeats: repeats,
                                                          fallbackInterval: 0.04))
            var caps: [Int] = []
            for (i, t) in times.enumerated() {
                try gatherer.process(frame(i, seconds: t)) { if case .cap(let c)? = $0.plan { caps.append(c) } }
            }
            try gatherer.finish { if case .cap(let c)? = $0.plan { caps.append(c) } }
            return caps
        }
        let low = try lowCaps(repeats: true)
        XCTAssertTrue(low.allSatisfy { $0 >= 16 }, "\(low)")
        XCTAssertTrue(low.contains { $0 < 64 }, "\(low)")
        XCTAssertEqual(Double(low.reduce(0, +)), max(20 * covered, 16 * 6), accuracy: 16)
        XCTAssertEqual(try lowCaps(repeats: false).dropLast(), Array(repeating: 64, count: 5))
        // Without a planner nothing is held back or planned.
        var plain = ChunkGatherer(framesPerBlock: 1, chunkBlocks: 4)
        var emitted = 0
        for i in 0..<4 { try plain.process(frame(i, seconds: Double(i))) { XCTAssertNil($0.plan); emitted += 1 } }
        XCTAssertEqual(emitted, 1, "a plain chunk goes out as soon as it is full")
    }

    // MARK: - On the tiny models

    func testACapPlanKeepsExactlyTheCapAndBudgetCountsAreKept() throws {
        let model = try ElasticTokModel.load(path: TokenizerFixtures.fsqModelPath)
        let encoder = try ConditionalEncoder(model: model, settings: EncoderSettings())
        let blocks = try TokenizerFixtures.blocks(3, model: model).enumerated().map { ($1, Int64($0), 1) }
        for cap in [6, 17, 30, 48, 60] {
            let chunk = try encoder.encodeChunk(blocks, firstBlock: 0, plan: .cap(cap))
            XCTAssertEqual(chunk.results.map(\.keptTokens).reduce(0, +), min(cap, 48), "cap \(cap)")
            XCTAssertEqual(chunk.results.map(\.passes), [2, 2, 2])
            XCTAssertTrue(chunk.results.allSatisfy { $0.predictedMSE != nil })
        }
        // The curves hold the even split exactly: measured at the share, the earlier blocks
        // committed at it, each block's point there is the error `.counts` at the share commits.
        let share = 4
        XCTAssertFalse(encoder.curveCounts.contains(share), "a share off the grid: \(encoder.curveCounts)")
        XCTAssertEqual(encoder.provisionalCount(share: 12.0 / 3), share)
        let measured = try encoder.measureChunk(blocks, provisional: share)
        let even = try encoder.encodeChunk(blocks, firstBlock: 0, plan: .counts([share, share, share]))
        for (curve, result) in zip(measured.curves, even.results) {
            let point = try XCTUnwrap(curve.first { $0.tokens == share })
            XCTAssertEqual(point.mse, Double(result.mse), accuracy: Double(result.mse) * 1e-4)
        }
        let fixed = try encoder.encodeChunk(blocks, firstBlock: 7, plan: .counts([3, 9, 2]))
        XCTAssertEqual(fixed.results.map(\.keptTokens), [3, 9, 2])
        XCTAssertEqual(fixed.chunk.blocks.map(\.kept), [3, 9, 2])
        XCTAssertEqual(fixed.chunk.firstBlock, 7)
    }

    /// The VAE path (candidates decoded one at a time, the provisional count encoded again to
    /// commit it) keeps a cap to the token too, and its decoder reproduces the committed error.
    func testACapPlanOnAVAEModelKeepsTheCapAndCountsItsExtraPass() throws {
        let model = try ElasticTokModel.load(path: TokenizerFixtures.vaeModelPath)
        let c = model.config
        let encoder = try ConditionalEncoder(model: model, settings: EncoderSettings())
        let blocks = try TokenizerFixtures.blocks(2, model: model).enumerated().map { ($1, Int64($0), c.framesPerBlock) }
        let cap = c.minToks + c.maxToks
        let chunk = try encoder.encodeChunk(blocks, firstBlock: 0, plan: .cap(cap))
        XCTAssertEqual(chunk.results.map(\.keptTokens).reduce(0, +), cap)
        XCTAssertEqual(chunk.results.map(\.passes), [3, 3], "measure (2, with the commit of the provisional count) and commit (1)")
    }

    /// `--max-tokens-per-chunk` over the threshold search: a binding cap is never exceeded; a cap
    /// that does not bind leaves the chunk exactly as without it.
    func testMaxTokensPerChunkCapsOnlyTheChunksOverIt() throws {
        let model = try ElasticTokModel.load(path: TokenizerFixtures.fsqModelPath)
        let blocks = try TokenizerFixtures.blocks(3, model: model).enumerated().map { ($1, Int64($0), 1) }
        let free = try ConditionalEncoder(model: model, settings: EncoderSettings(threshold: 1e-6))
            .encodeChunk(blocks, firstBlock: 0)
        XCTAssertEqual(free.results.map(\.keptTokens), [16, 16, 16], "a threshold no count meets keeps the maximum")
        let capped = try ConditionalEncoder(model: model, settings: EncoderSettings(threshold: 1e-6, maxTokensPerChunk: 20))
            .encodeChunk(blocks, firstBlock: 0)
        XCTAssertEqual(capped.results.map(\.keptTokens).reduce(0, +), 20)
        XCTAssertTrue(zip(capped.results, free.results).allSatisfy { $0.passes > $1.passes }, "the search's passes count too")
        let loose = try ConditionalEncoder(model: model, settings: EncoderSettings(threshold: 1e-6, maxTokensPerChunk: 48))
            .encodeChunk(blocks, firstBlock: 0)
        XCTAssertEqual(loose.chunk, free.chunk)
    }

    func testRateSettingsThatCannotBeMetAreRefusedByName() throws {
        let model = try ElasticTokModel.load(path: TokenizerFixtures.fsqModelPath)
        func refused(_ s: EncoderSettings, _ words: String) {
            XCTAssertThrowsError(try ConditionalEncoder(model: model, settings: s)) { error in
                XCTAssertTrue("\(error)".contains(words), "\(error)")
            }
        }
        refused(EncoderSettings(maxTokensPerChunk: 5), "--max-tokens-per-chunk 5")   // 3 blocks × 2 tokens
        refused(EncoderSettings(rateTarget: .tokensPerSecond(0)), "--tokens-per-second")
        refused(EncoderSettings(rateTarget: .budget(0)), "--budget")
        refused(EncoderSettings(fixedTokens: 4, rateTarget: .budget(10)), "--fixed")
        XCTAssertNoThrow(try ConditionalEncoder(model: model, settings: EncoderSettings(maxTokensPerChunk: 6)))
    }

    // MARK: - Whole encodes

    func encode(_ settings: EncoderSettings, workers: Int = 2, name: String) throws -> (EncodeSummary, URL) {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("etok-rate-\(UUID().uuidString)-\(name)")
        addTeardownBlock { try? FileManager.default.removeItem(at: output) }
        let job = EncodeJob(input: TokenizerFixtures.sample("carphone_pristine.mp4"), output: output.path,
                            settings: settings, workers: workers)
        let run = try EncodeRun(job: job, model: try ModelCatalog.load(path: TokenizerFixtures.fsqModelPath))
        return (try run.run(), output)
    }

    /// One pass at a rate: the file's mean lands on the target, the header and `info` say so, and
    /// the bytes do not depend on the worker count.
    func testTokensPerSecondLandsOnTheTargetForAnyWorkerCount() throws {
        let settings = EncoderSettings(rateTarget: .tokensPerSecond(250))
        let (one, a) = try encode(settings, workers: 1, name: "a.etok")
        let (three, b) = try encode(settings, workers: 3, name: "b.etok")
        XCTAssertEqual(try Data(contentsOf: a), try Data(contentsOf: b))
        let rate = try XCTUnwrap(one.rateControl)
        XCTAssertEqual(rate.mode, "tokens_per_second")
        XCTAssertEqual(rate.achieved, 250, accuracy: 250 * 0.02)
        XCTAssertEqual(Double(one.tokens), 250 * rate.mediaSeconds, accuracy: 1)
        XCTAssertEqual(three.perBlock.map(\.kept), one.perBlock.map(\.kept))
        let report = try StreamReport.read(path: a.path)
        XCTAssertEqual(report.header.encoding.rateControl, EtokHeader.RateControl(mode: .tokensPerSecond, target: 250, objective: "balanced"))
        XCTAssertEqual(report.header.encoding.search, .rate)
        XCTAssertEqual(report.rateControl, rate)
    }

    /// The closed loop commits a block's chosen count from the pass that checked it, with the same
    /// bits as the path that checks keeping nothing and encodes the chosen count again (what a
    /// model with large keys and values takes: `spareSlotBytes`), one pass fewer per checked block.
    func testTheClosedLoopCommitsFromItsCheckingPassWithTheSameBits() throws {
        let model = try ElasticTokModel.load(path: TokenizerFixtures.fsqModelPath)
        let blocks = try TokenizerFixtures.blocks(3, model: model).enumerated().map { ($1, Int64($0), 1) }
        let encoder = try ConditionalEncoder(model: model, settings: EncoderSettings(rateTarget: .budget(1000)))
        let curves = try encoder.measureChunk(blocks, provisional: 6).curves
        // A floor no block reaches at its planned count: every block but the last is checked.
        let floor = curves.map { $0.map(\.mse).min()! }.min()! / 2
        let plan = ChunkPlan.closedLoop(counts: [4, 6, 8], curves: curves, floorMSE: floor, leastPlanned: 0)
        let fast = try encoder.encodeChunk(blocks, firstBlock: 0, plan: plan)
        encoder.spareSlotBytes = 0
        let slow = try encoder.encodeChunk(blocks, firstBlock: 0, plan: plan)
        XCTAssertEqual(fast.chunk, slow.chunk)
        XCTAssertEqual(fast.results.map(\.mse), slow.results.map(\.mse))
        XCTAssertEqual(fast.results.map(\.keptTokens).reduce(0, +), 18)
        XCTAssertEqual(fast.results.map(\.passes), [1, 1, 1], "one batched pass, committed from")
        XCTAssertEqual(slow.results.map(\.passes).prefix(2), [2, 2], "the check, then the chosen count again")
        XCTAssertEqual(fast.results.map(\.evaluations).prefix(2), slow.results.map { $0.evaluations - 1 }.prefix(2))
    }

    /// Targets below every block's least count (the tiny model's 2 tokens a block): with repeats
    /// a rate and a budget are still met (a chunk's first block keeps its tokens, the others
    /// repeat); without, the rate is clamped to every block's least and the budget refused.
    func testLowTargetsAreMetWithRepeats() throws {
        let (probe, _) = try encode(EncoderSettings(rateTarget: .tokensPerSecond(1000)), workers: 1, name: "probe.etok")
        let seconds = try XCTUnwrap(probe.rateControl).mediaSeconds, frames = probe.frames
        let rate = 1.2 * Double(frames) / seconds   // 1.2 tokens a frame, under the tiny model's 2
        let (low, _) = try encode(EncoderSettings(rateTarget: .tokensPerSecond(rate)), name: "low.etok")
        XCTAssertEqual(try XCTUnwrap(low.rateControl).achieved, rate, accuracy: rate * 0.02)
        XCTAssertGreaterThan(low.repeatBlocks, frames / 2)
        let (clamped, _) = try encode(EncoderSettings(rateTarget: .tokensPerSecond(rate), repeatBlocks: false), name: "clamped.etok")
        XCTAssertEqual(clamped.tokens, 2 * frames)
        let total = frames + frames / 5
        let (budget, _) = try encode(EncoderSettings(rateTarget: .budget(total)), name: "budget.etok")
        XCTAssertEqual(budget.tokens, total)
        XCTAssertGreaterThan(budget.repeatBlocks, frames / 2)
        XCTAssertThrowsError(try encode(EncoderSettings(rateTarget: .budget(total), repeatBlocks: false), name: "refused.etok")) { error in
            XCTAssertTrue("\(error)".contains("below the least"), "\(error)")
        }
        XCTAssertThrowsError(try encode(EncoderSettings(rateTarget: .budget(frames / 2)), name: "too-low.etok")) { error in
            XCTAssertTrue("\(error)".contains("every block after a chunk's first a repeat"), "\(error)")
        }
    }

    /// A whole-file budget: two passes, the total kept is the budget, every chunk under the cap.
    func testABudgetIsKeptToTheTokenWithinTheCapPerChunk() throws {
        let (summary, url) = try encode(EncoderSettings(maxTokensPerChunk: 30, rateTarget: .budget(1000)), name: "budget.etok")
        XCTAssertEqual(summary.tokens, 1000)
        XCTAssertLessThanOrEqual(summary.rateControl?.largestChunk ?? .max, 30)
        XCTAssertTrue(summary.perBlock.allSatisfy { $0.passes == ($0.isRepeat ? 1 : 2) },
                      "measure pass, then the closed loop's pass over the planned and larger counts, committed from (or the "
                      + "commit pass alone); a repeat block only the measure pass")
        let report = try StreamReport.read(path: url.path)
        XCTAssertEqual(report.rateControl?.achieved, 1000)
        XCTAssertEqual(report.rateControl?.maxTokensPerChunk, 30)
        XCTAssertThrowsError(try encode(EncoderSettings(rateTarget: .budget(100), repeatBlocks: false), name: "small.etok")) { error in
            XCTAssertTrue("\(error)".contains("below the least"), "\(error)")
        }
    }

    /// The whole-file split under a cap per chunk: no chunk over it, the total met when the caps
    /// leave room for it, and without a binding cap the plain equal-slope split.
    func testTheBudgetSplitHoldsEveryChunkUnderItsCap() {
        var rng = SplitMix64(state: 21)
        for trial in 0..<150 {
            let curves = (0..<Int.random(in: 1...40, using: &rng)).map { _ in randomCurve(&rng, lo: 16, hi: 256) }
            let chunkBlocks = Int.random(in: 1...5, using: &rng)
            let chunkCap = Int.random(in: (16 * chunkBlocks)...(256 * chunkBlocks), using: &rng)
            let chunks = stride(from: 0, to: curves.count, by: chunkBlocks).map { $0..<min($0 + chunkBlocks, curves.count) }
            let room = chunks.map { c in min(chunkCap, c.map { curves[$0].map(\.tokens).max()! }.reduce(0, +)) }.reduce(0, +)
            let total = Int.random(in: (16 * curves.count)...(256 * curves.count), using: &rng)
            let counts = RateAllocator.allocate(curves: curves, cap: total, chunkBlocks: chunkBlocks, chunkCap: chunkCap)
            for c in chunks { XCTAssertLessThanOrEqual(counts[c].reduce(0, +), chunkCap, "trial \(trial)") }
            XCTAssertEqual(counts.reduce(0, +), min(total, room), "trial \(trial)")
            XCTAssertEqual(RateAllocator.allocate(curves: curves, cap: total, chunkBlocks: chunkBlocks, chunkCap: nil),
                           RateAllocator.allocate(curves: curves, cap: total).counts)
        }
    }

    func testABudgetRefusesStdin() throws {
        let job = EncodeJob(input: "-", output: "/dev/null", settings: EncoderSettings(rateTarget: .budget(1000)))
        XCTAssertThrowsError(try EncodeRun(job: job, model: try ModelCatalog.load(path: TokenizerFixtures.fsqModelPath))) { error in
            XCTAssertTrue("\(error)".contains("needs a file, not stdin"), "\(error)")
        }
    }

    /// §4: `rate_control` round-trips, and a header without it has no such key (older bytes).
    func testTheHeaderKeyRoundTripsAndIsAbsentWithoutRateControl() throws {
        let model = EtokHeader.Model(name: "m", sha256: "00", imageSize: [8, 8], patchSize: [1, 4, 4], framesPerBlock: 1,
                                     minToks: 1, maxToks: 4, bottleneck: .vae, vaeBottleneckDim: 2)
        var header = EtokHeader(model: model, encoding: EtokHeader.Encoding(threshold: 0.01, search: .fast, chunkBlocks: 4, tokenCoding: .f16v1),
                                source: EtokHeader.Source(timeBase: EtokHeader.Rational(1, 25)))
        XCTAssertFalse(String(decoding: header.jsonBytes(), as: UTF8.self).contains("rate_control"))
        header.encoding.rateControl = EtokHeader.RateControl(mode: .budget, target: 5000, maxTokensPerChunk: 300)
        let json = String(decoding: header.jsonBytes(), as: UTF8.self)
        XCTAssertTrue(json.contains(#""rate_control":{"max_tokens_per_chunk":300,"mode":"budget","target":5000}"#), json)
        XCTAssertEqual(try EtokHeader.decode(header.jsonBytes(), file: "x"), header)
        header.encoding.rateControl?.target = -1
        XCTAssertThrowsError(try EtokHeader.decode(header.jsonBytes(), file: "x"))
    }
}

/// Rate control with repeat blocks (`RateAllocator.bestRepeats`), on synthetic curves.
extension RateControlTests {
    /// A chunk of `n` blocks of one falling curve, and the repeat curves of frames `factor` times
    /// as far from each earlier block's reconstruction as that block's own error (nearly static at
    /// 1.02, moving at 10), at that block's measured counts.
    func chunk(_ n: Int, factor: Double) -> (curves: [[RatePoint]], repeats: [[[RatePoint]]]) {
        let curve = TokenBudgetSearch.officialGrid(16, 256, points: 6).map { RatePoint(tokens: $0, mse: 0.05 * pow(Double($0), -0.8)) }
        let curves = Array(repeating: curve, count: n)
        let repeats = (0..<n).map { k in (0..<k).map { _ in curve.map { RatePoint(tokens: $0.tokens, mse: $0.mse * factor) } } }
        return (curves, repeats)
    }

    /// A nearly static chunk: the first block takes the whole cap and the others repeat it, since
    /// its error at 240 tokens, shown again, is far below any block's at the even 60; the
    /// predicted errors are the curves' at 240. Frames that move keep the plain allocation.
    func testANearlyStaticChunkSpendsItsCapOnTheFirstBlockAndRepeatsIt() {
        for objective in RateObjective.allCases {
            let (curves, repeats) = chunk(4, factor: 1.02)
            let a = RateAllocator.allocate(curves: curves, repeats: repeats, cap: 240, objective: objective)
            XCTAssertEqual(a.counts, [240, 0, 0, 0], "\(objective)")
            let at240 = RateAllocator.filledIn(curves[0]).first { $0.tokens == 240 }!.mse
            XCTAssertEqual(a.predictedMSE[0], at240, accuracy: at240 * 1e-12)
            for k in 1..<4 { XCTAssertEqual(a.predictedMSE[k], at240 * 1.02, accuracy: at240 * 1e-12) }
            // Moving frames: a repeat would cost 10× the error; the plain allocation stands.
            let (moving, far) = chunk(4, factor: 10)
            XCTAssertEqual(RateAllocator.allocate(curves: moving, repeats: far, cap: 240, objective: objective),
                           RateAllocator.allocate(curves: moving, cap: 240, objective: objective))
        }
        // A cap the first block cannot spend alone (4 × 100 > 256): the blocks it cannot hold are coded.
        let (curves, repeats) = chunk(4, factor: 1.02)
        let a = RateAllocator.allocate(curves: curves, repeats: repeats, cap: 400, objective: .balanced)
        XCTAssertEqual(a.counts.reduce(0, +), 400)
        XCTAssertEqual(a.counts[0] > 0, true)
        XCTAssertTrue(a.counts.allSatisfy { $0 <= 256 })
    }

    /// A cap below every block's smallest count can only be kept with repeats: the allocation
    /// spends it exactly with the chunk's first block coded (at least its smallest count) and
    /// enough of the others repeating, on random chunks; on a nearly static one, all of it on the
    /// first block.
    func testACapBelowEveryBlocksSmallestCountIsKeptWithRepeats() {
        let (still, stillRepeats) = chunk(4, factor: 1.02)
        for cap in [16, 40, 63] {
            XCTAssertEqual(RateAllocator.allocate(curves: still, repeats: stillRepeats, cap: cap, objective: .balanced).counts,
                           [cap, 0, 0, 0])
        }
        var rng = SplitMix64(state: 1617)
        for trial in 0..<200 {
            let objective = RateObjective.allCases[trial % 3]
            let n = Int.random(in: 2...5, using: &rng)
            // Measured from the smallest count to the largest, as the encoder measures.
            let curves = (0..<n).map { _ in randomCurve(&rng, lo: 16, hi: 256) + [RatePoint(tokens: 256, mse: 1e-4)] }
            let repeats = (0..<n).map { k in (0..<k).map { j in
                curves[j].map { RatePoint(tokens: $0.tokens, mse: $0.mse * Double.random(in: 0.9...3, using: &rng)) }
            } }
            let cap = Int.random(in: 16..<(16 * n), using: &rng)
            let a = RateAllocator.allocate(curves: curves, repeats: repeats, cap: cap, objective: objective)
            XCTAssertEqual(a.counts.reduce(0, +), cap, "trial \(trial)")
            XCTAssertGreaterThanOrEqual(a.counts[0], 16, "trial \(trial)")
            XCTAssertTrue(a.counts.allSatisfy { $0 == 0 || (16...256).contains($0) }, "trial \(trial): \(a.counts)")
        }
        // Curves that end below the cap (one measured count each): no pattern spends it; the best
        // one within it (here the repeat is worse than coding, so as few repeats as fit), never more.
        let short = [[RatePoint(tokens: 16, mse: 0.01)], [RatePoint(tokens: 16, mse: 0.01)], [RatePoint(tokens: 16, mse: 0.01)]]
        let shortRepeats = [[], [[RatePoint(tokens: 16, mse: 0.02)]], [[RatePoint(tokens: 16, mse: 0.02)], [RatePoint(tokens: 16, mse: 0.02)]]]
        let a = RateAllocator.allocate(curves: short, repeats: shortRepeats, cap: 40).counts
        XCTAssertEqual(a.reduce(0, +), 32, "\(a)")
        XCTAssertEqual(a[0], 16)
    }

    /// The properties on random chunks, for every objective: the allocation with repeats spends
    /// what the plain one spends (the cap unless every block is at its end) and never more; a
    /// chunk's first block is coded and every coded block stays in its range; a repeat's predicted
    /// error is its own curve at the count of the coded block it shows (the last one before it);
    /// under `balanced` no block is predicted above the floor; and the objective over the
    /// predicted errors is never worse than the plain allocation's.
    func testRepeatsKeepTheCapAndTheFloorAndNeverLoseOnRandomChunks() {
        var rng = SplitMix64(state: 1616)
        var chosen = 0
        for trial in 0..<400 {
            let objective = RateObjective.allCases[trial % 3]
            let n = Int.random(in: 1...5, using: &rng)
            let curves = (0..<n).map { _ in randomCurve(&rng, lo: 16, hi: 256) }
            let repeats = (0..<n).map { k in (0..<k).map { j in
                let motion = Double.random(in: 0...0.01, using: &rng) * (Bool.random(using: &rng) ? 1 : 0)
                return curves[j].map { RatePoint(tokens: $0.tokens, mse: $0.mse * Double.random(in: 0.9...1.3, using: &rng) + motion) }
            } }
            let lowest = curves.map { $0.map(\.tokens).min()! }.reduce(0, +)
            let highest = curves.map { $0.map(\.tokens).max()! }.reduce(0, +)
            let cap = Int.random(in: lowest...(highest + 50), using: &rng)
            let plain = RateAllocator.allocate(curves: curves, cap: cap, objective: objective)
            let a = RateAllocator.allocate(curves: curves, repeats: repeats, cap: cap, objective: objective)
            XCTAssertEqual(a.counts.reduce(0, +), plain.counts.reduce(0, +), "trial \(trial)")
            XCTAssertLessThanOrEqual(a.counts.reduce(0, +), cap, "trial \(trial)")
            XCTAssertNotEqual(a.counts[0], 0, "trial \(trial)")
            guard a.counts.contains(0) else { continue }
            chosen += 1
            let filled = curves.map(RateAllocator.filledIn)
            func mse(_ f: [RatePoint], _ count: Int) -> Double { f.first { $0.tokens == count }!.mse }
            var shown = 0
            for k in 0..<n {
                if a.counts[k] == 0 {
                    XCTAssertEqual(a.predictedMSE[k], mse(RateAllocator.filledIn(repeats[k][shown]), a.counts[shown]), "trial \(trial)")
                } else {
                    shown = k
                    XCTAssertTrue((filled[k][0].tokens...filled[k].last!.tokens).contains(a.counts[k]), "trial \(trial)")
                    XCTAssertEqual(a.predictedMSE[k], mse(filled[k], a.counts[k]), "trial \(trial)")
                }
            }
            if objective == .balanced {
                let floor = RateAllocator.balancedFloor(curves: curves, cap: cap).mse
                XCTAssertTrue(a.predictedMSE.allSatisfy { $0 <= floor }, "trial \(trial): above the floor \(floor)")
            }
            func score(_ m: [Double]) -> Double { m.map { objective == .mse ? $0 : log($0) }.reduce(0, +) }
            XCTAssertLessThan(score(a.predictedMSE), score(zip(filled, plain.counts).map { mse($0, $1) }), "trial \(trial)")
        }
        XCTAssertGreaterThan(chosen, 40, "the random chunks must exercise repeats")
    }
}
