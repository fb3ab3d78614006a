import Foundation

/// How the encoder looks for each block's token budget: the smallest kept count whose reconstruction
/// error is at most the threshold.
public enum SearchStrategy: String, Sendable, CaseIterable, Codable {
    /// Bisection over [minTokens, maxTokens], one candidate per pass, as the official code does
    /// (about log2(max − min) passes per block).
    case binary
    /// The official log-spaced grid, scanned from the smallest budget up; several grid points per pass.
    case linear
    /// Ours: start from the previous block's budget, predict where the error crosses the
    /// threshold from log(MSE) (two budgets per batched pass), and stop once the answer is
    /// bracketed within `tolerance` of it. Fewer passes and fewer evaluations than `binary`.
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
/// forward pass) and receives their MSEs. Whatever the strategy, the chosen count was evaluated and
/// met the threshold, or it is `maxTokens` (the threshold guarantee), so the caller can commit the
/// reconstruction it measured. Value type; not thread-safe to share while searching.
public struct TokenBudgetSearch: Sendable {
    public var strategy: SearchStrategy
    /// Reconstruction MSE bound on the [−1, 1] pixel scale (the paper's 0.003 ≈ 31.2 dB PSNR).
    public var threshold: Float
    public var minTokens: Int
    public var maxTokens: Int
    /// Kept counts evaluated together in one pass by `linear` (`fast` uses two).
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
    public func choose(hint: Int? = nil, evaluate: ([Int]) throws -> [Float]) rethrows -> TokenBudgetChoice {
        var probe = Probe(threshold: threshold, minTokens: minTokens, maxTokens: maxTokens)
        switch strategy {
        case .binary: try probe.bisect(evaluate)
        case .linear: try probe.scanGrid(Self.officialGrid(minTokens, maxTokens), batchSize: batchSize, evaluate)
        case .fast: try probe.predict(from: hint ?? (minTokens + maxTokens) / 2, tolerance: tolerance, evaluate)
        }
        return try probe.finish(evaluate)
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
/// below the smallest passing one, and pass counts.
private struct Probe {
    typealias Evaluate = ([Int]) throws -> [Float]
    let threshold: Float
    let minTokens: Int
    let maxTokens: Int
    var measured: [Int: Float] = [:]
    var passes = 0
    /// Smallest count known to meet the threshold (nil: none yet).
    var bestPassing: Int?
    /// Largest count known to miss the threshold that is below `bestPassing` (minTokens − 1: none).
    var largestFailing: Int

    init(threshold: Float, minTokens: Int, maxTokens: Int) {
        self.threshold = threshold
        self.minTokens = minTokens
        self.maxTokens = maxTokens
        self.largestFailing = minTokens - 1
    }

    /// Upper end of the open interval still to search: the best passing count, or max + 1.
    var upper: Int { bestPassing ?? maxTokens + 1 }

    mutating func run(_ counts: [Int], _ evaluate: Evaluate) rethrows {
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
    }

    /// True when the search can stop: the bracket is closed, or even maxTokens missed the threshold.
    var exhausted: Bool {
        if bestPassing == nil && measured[maxTokens] != nil { return true }
        return upper - largestFailing <= 1
    }

    /// Bisection: the exact smallest passing count when the MSE falls monotonically with n.
    mutating func bisect(_ evaluate: Evaluate) rethrows {
        while !exhausted {
            try run([(largestFailing + upper) / 2], evaluate)
        }
    }

    /// Scans `grid` ascending, `batchSize` points per pass, stopping after the first pass with a hit.
    mutating func scanGrid(_ grid: [Int], batchSize: Int, _ evaluate: Evaluate) rethrows {
        var i = 0
        while i < grid.count && bestPassing == nil {
            try run(Array(grid[i..<min(i + batchSize, grid.count)]), evaluate)
            i += batchSize
        }
    }

    /// Predictive search. Pass 1 evaluates the hint and a budget a few percent below it (most
    /// blocks need about what the previous one needed). Each later pass predicts where the error
    /// crosses the threshold — log(MSE) interpolated between the bracket's ends, or extrapolated
    /// from the two nearest points while one end is still open — and evaluates two budgets just
    /// around the prediction, so a good prediction closes the bracket to within `tolerance` in one
    /// pass. Falls back to bisection if predictions stop helping. The result exceeds the exact
    /// answer (for a monotone error curve) by at most `tolerance` of it.
    mutating func predict(from hint: Int, tolerance: Double, _ evaluate: Evaluate) rethrows {
        let center = min(max(hint, minTokens), maxTokens)
        let step = max(2, Int((Double(center) * 0.04).rounded()))
        try run([center - step, center], evaluate)
        var rounds = 0
        while !exhausted {
            if let best = bestPassing, Double(best - largestFailing - 1) <= tolerance * Double(best) { break }
            rounds += 1
            let lo = largestFailing, hi = upper
            var next: [Int] = []
            if rounds <= 4, let crossing = predictedCrossing() {
                let half = max(1, Int(tolerance * Double(bestPassing ?? center) / 2))
                next = [Int(crossing.rounded(.down)) - half + 1, Int(crossing.rounded(.up)) + half]
                    .map { min(max($0, lo + 1), hi - 1) }
                    .filter { $0 > lo && $0 < hi && $0 >= minTokens && $0 <= maxTokens }
            }
            if next.isEmpty { next = [(lo + hi) / 2] }
            let before = measured.count
            try run(next, evaluate)
            if measured.count == before { try run([(lo + hi) / 2], evaluate) }
        }
    }

    /// Where log(MSE) is predicted to cross log(threshold), from the measured points nearest the
    /// bracket; nil when there is not enough to go on.
    func predictedCrossing() -> Double? {
        let target = Foundation.log(Double(threshold))
        func point(_ n: Int) -> (Double, Double)? {
            guard let e = measured[n], e > 0 else { return nil }
            return (Double(n), Foundation.log(Double(e)))
        }
        var a: (Double, Double)?, b: (Double, Double)?
        if let best = bestPassing, largestFailing >= minTokens {
            a = point(largestFailing); b = point(best)                         // interpolate
        } else if let best = bestPassing {
            let passing = measured.keys.filter { $0 >= best && measured[$0]! <= threshold }.sorted()
            guard passing.count >= 2 else { return nil }
            a = point(passing[0]); b = point(passing[1])                      // extrapolate down
        } else {
            let failing = measured.keys.sorted().suffix(2)
            guard failing.count == 2 else { return nil }
            a = point(failing.first!); b = point(failing.last!)               // extrapolate up
        }
        guard let (n0, y0) = a, let (n1, y1) = b, n1 != n0 else { return nil }
        let slope = (y1 - y0) / (n1 - n0)
        guard slope < 0, slope.isFinite else { return nil }
        return n0 + (target - y0) / slope
    }

    /// The answer: the best passing count, else maxTokens (evaluated now if it was not).
    mutating func finish(_ evaluate: Evaluate) rethrows -> TokenBudgetChoice {
        if bestPassing == nil && measured[maxTokens] == nil { try run([maxTokens], evaluate) }
        let n = bestPassing ?? maxTokens
        let mse = measured[n]!
        return TokenBudgetChoice(keptTokens: n, mse: mse, meetsThreshold: mse <= threshold,
                                 passes: passes, evaluations: measured.count)
    }
}
