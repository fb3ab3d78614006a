import Foundation

/// How the encoder looks for each block's token budget: the smallest kept count whose reconstruction
/// error is at most the threshold.
public enum SearchStrategy: String, Sendable, CaseIterable, Codable {
    /// Bisection over [minTokens, maxTokens], one candidate per pass, like the official inference_binary but
    /// always returning the smallest passing count (about log2(max − min) passes per block).
    case binary
    /// The official log-spaced grid, scanned from the smallest budget up; several grid points per pass.
    case linear
    /// Ours: start from the previous block's budget, predict where the error crosses the
    /// threshold from log(MSE) against log(kept count), one budget per pass, and stop once the
    /// answer is bracketed within `tolerance` of it. Far fewer evaluations than `binary`.
    case fast
}

/// The result of one block's search.
public struct TokenBudgetChoice: Sendable, Equatable {
    /// The chosen kept count (the block's token budget).
    public var keptTokens: Int
    /// The reconstruction MSE measured at `keptTokens`.
    public var mse: Float
    /// True when `mse` is at most the threshold. False only when even `maxTokens` missed it.
    public var meetsThreshold: Bool
    /// Batched forward passes the search ran (each evaluates one or more kept counts).
    public var passes: Int
    /// Kept counts evaluated in total, over all passes.
    public var evaluations: Int
}

/// Finds per-block token budgets against a reconstruction-error threshold.
///
/// The search never sees the model: it calls `evaluate` with a batch of kept counts (one batched
/// forward pass) and receives their MSEs. Whatever the strategy, the answer is the smallest
/// count evaluated that met the threshold, else `maxTokens` (the threshold guarantee). That rule
/// is applied here only: after each pass the search tells the caller (`adopt`) when the answer
/// it would give if it stopped now became one of that pass's counts, so the caller keeps that
/// candidate's measurement and commits it at the end without running it again. A fixed budget
/// is the range `fixed...fixed` (one pass). Value type; not thread-safe to share while searching.
public struct TokenBudgetSearch: Sendable {
    public var strategy: SearchStrategy
    /// Reconstruction MSE bound on the [−1, 1] pixel scale (the paper's 0.003 ≈ 31.2 dB PSNR).
    public var threshold: Float
    public var minTokens: Int
    public var maxTokens: Int
    /// Kept counts evaluated together in one pass by `linear` (`fast` and `binary` use one).
    public var batchSize: Int
    /// `fast` stops when the unexplored gap below its best passing count is at most this fraction of it.
    public var tolerance: Double

    public init(strategy: SearchStrategy, threshold: Float, minTokens: Int, maxTokens: Int,
                batchSize: Int = 4, tolerance: Double = 0.04) {
        precondition(minTokens >= 0 && minTokens <= maxTokens, "token range must be non-empty")
        precondition(batchSize >= 1)
        self.strategy = strategy
        self.threshold = threshold
        self.minTokens = minTokens
        self.maxTokens = maxTokens
        self.batchSize = batchSize
        self.tolerance = tolerance
    }

    /// Chooses the budget for one block.
    /// - Parameters:
    ///   - hint: a budget expected to be near the answer (the previous block's); `fast` starts there.
    ///   - evaluate: runs one batched pass over the given kept counts (distinct, ascending) and
    ///     returns their MSEs in the same order.
    ///   - adopt: called after a pass, before the next one, with the index (in that pass's
    ///     counts) of the count that became the answer so far; not called when the answer did
    ///     not change. The returned choice is the count adopted last.
    public func choose(hint: Int? = nil, evaluate: ([Int]) throws -> [Float],
                       adopt: (Int) throws -> Void) rethrows -> TokenBudgetChoice {
        var probe = Probe(threshold: threshold, minTokens: minTokens, maxTokens: maxTokens)
        switch strategy {
        case .binary: try probe.bisect(evaluate, adopt)
        case .linear: try probe.scanGrid(Self.officialGrid(minTokens, maxTokens), batchSize: batchSize, evaluate, adopt)
        case .fast: try probe.predict(from: hint, tolerance: tolerance, evaluate, adopt)
        }
        return try probe.finish(evaluate, adopt)
    }

    /// Chooses the budget for one block, for a caller that keeps no measurement.
    public func choose(hint: Int? = nil, evaluate: ([Int]) throws -> [Float]) rethrows -> TokenBudgetChoice {
        try choose(hint: hint, evaluate: evaluate, adopt: { _ in })
    }

    /// The log-spaced grid of budgets that the official linear search walks: about 16 points from
    /// min to max, spaced evenly in log(n), rounded and deduplicated, always ending at max.
    public static func officialGrid(_ minTokens: Int, _ maxTokens: Int, points: Int = 16) -> [Int] {
        let lo = Double(max(minTokens, 1)), hi = Double(maxTokens)
        var grid: [Int] = []
        for i in 0..<points {
            let t = points == 1 ? 1.0 : Double(i) / Double(points - 1)
            let n = Int((lo * pow(hi / lo, t)).rounded())
            let clamped = min(max(n, minTokens), maxTokens)
            if grid.last != clamped { grid.append(clamped) }
        }
        if grid.last != maxTokens { grid.append(maxTokens) }
        return grid
    }
}

/// The bookkeeping shared by every strategy: which counts were evaluated, the largest failing count
/// below the smallest passing one, the answer so far, and pass counts.
private struct Probe {
    typealias Evaluate = ([Int]) throws -> [Float]
    typealias Adopt = (Int) throws -> Void
    let threshold: Float
    let minTokens: Int
    let maxTokens: Int
    var measured: [Int: Float] = [:]
    var passes = 0
    /// Smallest count known to meet the threshold (nil: none yet).
    var bestPassing: Int?
    /// Largest count known to miss the threshold that is below `bestPassing` (minTokens − 1: none).
    var largestFailing: Int
    /// The answer if the search stopped now, as last adopted: `bestPassing`, else `maxTokens`
    /// once measured (nil: neither yet).
    var answer: Int?

    init(threshold: Float, minTokens: Int, maxTokens: Int) {
        self.threshold = threshold
        self.minTokens = minTokens
        self.maxTokens = maxTokens
        self.largestFailing = minTokens - 1
    }

    /// Upper end of the open interval still to search: the best passing count, or max + 1.
    var upper: Int { bestPassing ?? maxTokens + 1 }

    /// One pass over the counts not measured yet (in range, ascending); then, when the answer
    /// moved to one of them, `adopt` with its index in the pass.
    mutating func run(_ counts: [Int], _ evaluate: Evaluate, _ adopt: Adopt) rethrows {
        let fresh = Array(Set(counts.filter { measured[$0] == nil && $0 >= minTokens && $0 <= maxTokens })).sorted()
        guard !fresh.isEmpty else { return }
        let errors = try evaluate(fresh)
        precondition(errors.count == fresh.count, "evaluator returned \(errors.count) MSEs for \(fresh.count) counts")
        passes += 1
        for (n, e) in zip(fresh, errors) {
            measured[n] = e
            if e <= threshold {
                if n < upper { bestPassing = n }
            }
        }
        // The failing bound only counts below the best passing count (MSE need not be monotone).
        largestFailing = measured.filter { $0.value > threshold && $0.key < upper }.map(\.key).max() ?? minTokens - 1
        // The answer moves only to a count of this pass: a new best passing one, or maxTokens
        // measured (and failing) while none passed.
        let now = bestPassing ?? (measured[maxTokens] != nil ? maxTokens : nil)
        if let now, now != answer {
            answer = now
            try adopt(fresh.firstIndex(of: now)!)
        }
    }

    /// True when the search can stop: the bracket is closed, or even maxTokens missed the threshold.
    var exhausted: Bool {
        if bestPassing == nil && measured[maxTokens] != nil { return true }
        return upper - largestFailing <= 1
    }

    /// Bisection: the exact smallest passing count when the MSE falls monotonically with n.
    mutating func bisect(_ evaluate: Evaluate, _ adopt: Adopt) rethrows {
        while !exhausted {
            try run([(largestFailing + upper) / 2], evaluate, adopt)
        }
    }

    /// Scans `grid` ascending, `batchSize` points per pass, stopping after the first pass with a hit.
    mutating func scanGrid(_ grid: [Int], batchSize: Int, _ evaluate: Evaluate, _ adopt: Adopt) rethrows {
        var i = 0
        while i < grid.count && bestPassing == nil {
            try run(Array(grid[i..<min(i + batchSize, grid.count)]), evaluate, adopt)
            i += batchSize
        }
    }

    /// Predictive search, one kept count per pass (on a CPU a pass costs the same per count
    /// whether it holds one or several, so each count is placed knowing every earlier result).
    /// It starts at the hint (most blocks need about what the previous one needed) or, without
    /// one, at `startWithoutHint` of the range. Each next count is aimed just above where the
    /// error is predicted to cross the threshold (`predictedCrossing`), but never where it could
    /// not tighten the bracket: with a passing count b known, at most b − 1 − tolerance·b, the
    /// highest count whose failing would close the bracket. After `predictedRounds` guesses it
    /// bisects. The result exceeds the exact answer (for a monotone error curve) by at most
    /// `tolerance` of it.
    mutating func predict(from hint: Int?, tolerance: Double, _ evaluate: Evaluate, _ adopt: Adopt) rethrows {
        let start = hint ?? Int((Double(minTokens) + Self.startWithoutHint * Double(maxTokens - minTokens)).rounded())
        try run([min(max(start, minTokens), maxTokens)], evaluate, adopt)
        var rounds = 0
        while !exhausted {
            if let best = bestPassing, Double(best - largestFailing - 1) <= tolerance * Double(best) { break }
            rounds += 1
            let lo = largestFailing, hi = upper
            var next = (lo + hi) / 2
            if rounds <= Self.predictedRounds, let crossing = predictedCrossing() {
                let c = min(max(crossing, Double(minTokens)), Double(maxTokens))
                let aim: Int
                if let best = bestPassing {
                    let d = tolerance * Double(best)
                    aim = min(best - 1 - Int(d.rounded(.down)), Int((c + Self.aimAbove * d).rounded()))
                } else {
                    let d = tolerance * Double(lo + 1)
                    aim = max(lo + 1 + Int(d.rounded(.up)), Int((c + Self.aimAbove * d).rounded()))
                }
                next = min(max(aim, lo + 1), hi - 1)
            }
            let before = measured.count
            if next > lo && next < hi { try run([next], evaluate, adopt) }
            if measured.count == before { try run([(lo + hi) / 2], evaluate, adopt) }
        }
    }

    /// Where the search starts without a hint, as a fraction of the token range.
    static let startWithoutHint = 0.35
    /// Predicted guesses before the search falls back to bisection.
    static let predictedRounds = 6
    /// How far above the predicted crossing a guess aims, in units of the tolerance: a guess
    /// that passes there is followed by one that fails just below it, which closes the bracket.
    static let aimAbove = 0.5
    /// The slope of log(MSE) against log(kept count) assumed until two measured points on the
    /// same side of the threshold, far enough apart, give their own. On the default model it is
    /// −0.7 to −0.9 (median over bikes.mp4's frames at 64–240 tokens; −0.4 at 32).
    static let priorSlope = -0.75
    /// Two points give a slope of their own when their kept counts differ by this much in log
    /// (about 10%): closer ones mostly measure the error's token-to-token noise.
    static let slopeBaseline = 0.1

    /// Where log(MSE) is predicted to cross log(threshold), in log(kept count): interpolated
    /// between the bracket's ends once both are known, else extrapolated from the measured point
    /// nearest the threshold with the slope of a second point on its side (or `priorSlope`);
    /// nil when there is nothing to go on.
    func predictedCrossing() -> Double? {
        let target = Foundation.log(Double(threshold))
        func point(_ n: Int) -> (x: Double, y: Double)? {
            guard n > 0, let e = measured[n], e > 0 else { return nil }
            return (Foundation.log(Double(n)), Foundation.log(Double(e)))
        }
        var slope = Self.priorSlope
        let anchor: (x: Double, y: Double)
        if let best = bestPassing, largestFailing >= minTokens {
            guard let a = point(largestFailing), let b = point(best) else { return nil }
            if b.y < a.y { slope = (b.y - a.y) / (b.x - a.x) }                  // interpolate
            anchor = b
        } else {
            // One side only: passing points (look up from the smallest for a slope) or failing
            // ones (look down from the largest).
            let side = measured.keys.filter { bestPassing == nil || measured[$0]! <= threshold }.sorted()
            guard let nearest = bestPassing ?? side.last, let p = point(nearest) else { return nil }
            let others = bestPassing == nil ? Array(side.reversed()) : side
            if let far = others.first(where: { n in point(n).map { abs($0.x - p.x) >= Self.slopeBaseline } ?? false }),
               let q = point(far), q.y != p.y {
                let measuredSlope = (q.y - p.y) / (q.x - p.x)
                if measuredSlope < 0 { slope = measuredSlope }
            }
            anchor = p
        }
        let x = anchor.x + (target - anchor.y) / slope
        guard x.isFinite else { return nil }
        return Foundation.exp(x)
    }

    /// The answer: the best passing count, else maxTokens (evaluated now if it was not).
    mutating func finish(_ evaluate: Evaluate, _ adopt: Adopt) rethrows -> TokenBudgetChoice {
        if answer == nil { try run([maxTokens], evaluate, adopt) }
        let n = answer!
        let mse = measured[n]!
        return TokenBudgetChoice(keptTokens: n, mse: mse, meetsThreshold: mse <= threshold,
                                 passes: passes, evaluations: measured.count)
    }
}
