import Foundation

// Rate control: how many tokens each block gets when the user asks for a rate, a total or a cap
// instead of (or on top of) a per-block threshold. The rules live here as plain values with their
// own tests (RateControlTests); ConditionalEncoder+Rate applies them to a chunk and EncodeRun's
// chunk stage hands each chunk its cap.

/// What the user asked for instead of, or on top of, the per-block threshold.
public enum RateTarget: Sendable, Equatable {
    /// A mean token rate over the file, one pass, streaming (`--tokens-per-second`).
    case tokensPerSecond(Double)
    /// A total for the whole file, two passes over a seekable input (`--budget`).
    case budget(Int)
}

/// What the allocator minimises over a chunk (or a file under `--budget`).
public enum RateObjective: String, Sendable, Equatable, CaseIterable {
    /// The summed MSE: tokens go where they remove the most squared error, which favours the
    /// hardest frames (the worst frame gains; the mean PSNR less).
    case mse
    /// The summed log MSE, that is the mean PSNR: tokens go where they gain the most dB.
    case psnr
    /// The worst block first, then the mean PSNR (the default): every block first gets the tokens
    /// its curve needs to reach a PSNR floor (`RateAllocator.balancedFloor`: 0.5 dB above the
    /// even split's worst block, or the highest floor the cap lets every block reach if lower),
    /// then the rest of the cap goes by equal slope of the summed log MSE on top of those floors.
    case balanced

    /// The default objective of rate control.
    public static let `default` = RateObjective.balanced
}

/// One measured point of a block's error-against-tokens curve.
public struct RatePoint: Sendable, Equatable {
    public var tokens: Int
    public var mse: Double

    public init(tokens: Int, mse: Double) {
        self.tokens = tokens
        self.mse = mse
    }
}

/// What the allocator decided for a set of blocks.
public struct RateAllocation: Sendable, Equatable {
    /// Kept count per block, in the order of the curves given.
    public var counts: [Int]
    /// The MSE each block is predicted to reach at its count (linear between hull points).
    public var predictedMSE: [Double]
    /// λ: the MSE drop per token of the last token handed out (the common slope), 0 when every
    /// block reached its largest count.
    public var lambda: Double
}

/// Equal-slope (Lagrangian) allocation of a token total across blocks.
///
/// Each block's measured (tokens, MSE) points are first filled in at every count between them,
/// straight in log(MSE) against log(tokens) (the shape the search's `priorSlope` describes; linear
/// where a value is not positive), then reduced to their lower convex hull. Along a hull the MSE
/// drop per token only shrinks, so giving every block the hull segments steeper than a slope λ
/// and choosing λ so the total meets the cap minimises the summed (modelled) MSE: every block ends
/// at the same slope, except blocks at either end of their curve. Segments at exactly λ may be
/// taken in part, so the total is met to the token whenever it lies between the sum of the curves'
/// smallest counts and the sum of their largest.
///
/// Cost: no model passes. λ is found by bisection (at most 200 rounds over every hull point);
/// memory is one filled-in hull per block (at most max − min + 1 points, 4 KB for the default
/// model), so `--budget` holds about 4 KB per block of the file while it allocates.
public enum RateAllocator {
    /// The lower convex hull of `points`, by tokens ascending, cut after its lowest MSE (a point
    /// with more tokens and no less error is never worth taking). Always keeps the point with the
    /// fewest tokens (the allocation's floor); for equal token counts the lower MSE counts.
    public static func hull(_ points: [RatePoint]) -> [RatePoint] {
        var byTokens: [RatePoint] = []
        for p in points.sorted(by: { ($0.tokens, $0.mse) < ($1.tokens, $1.mse) }) where byTokens.last?.tokens != p.tokens {
            byTokens.append(p)
        }
        var hull: [RatePoint] = []
        for p in byTokens {
            // Drop the last hull point while it lies on or above the chord from the one before it to p.
            while hull.count >= 2 {
                let a = hull[hull.count - 2], b = hull[hull.count - 1]
                let cross = Double(b.tokens - a.tokens) * (p.mse - a.mse) - (b.mse - a.mse) * Double(p.tokens - a.tokens)
                if cross <= 0 { hull.removeLast() } else { break }
            }
            hull.append(p)
        }
        // Keep up to the lowest error: beyond it, tokens buy nothing.
        if let lowest = hull.indices.min(by: { (hull[$0].mse, hull[$0].tokens) < (hull[$1].mse, hull[$1].tokens) }) {
            hull.removeSubrange((lowest + 1)...)
        }
        return hull
    }

    /// `points` with every count between two measured ones filled in, straight in log-log (linear
    /// where a count or an MSE is not positive).
    public static func filledIn(_ points: [RatePoint]) -> [RatePoint] {
        var measured: [RatePoint] = []
        for p in points.sorted(by: { ($0.tokens, $0.mse) < ($1.tokens, $1.mse) }) where measured.last?.tokens != p.tokens {
            measured.append(p)
        }
        guard measured.count >= 2 else { return measured }
        var out: [RatePoint] = [measured[0]]
        for (a, b) in zip(measured, measured.dropFirst()) {
            let logLog = a.tokens > 0 && a.mse > 0 && b.mse > 0
            for n in (a.tokens + 1)..<b.tokens {
                let mse: Double
                if logLog {
                    let t = Foundation.log(Double(n) / Double(a.tokens)) / Foundation.log(Double(b.tokens) / Double(a.tokens))
                    mse = Foundation.exp(Foundation.log(a.mse) + t * (Foundation.log(b.mse) - Foundation.log(a.mse)))
                } else {
                    mse = a.mse + Double(n - a.tokens) / Double(b.tokens - a.tokens) * (b.mse - a.mse)
                }
                out.append(RatePoint(tokens: n, mse: mse))
            }
            out.append(b)
        }
        return out
    }

    /// Hands out `cap` tokens across blocks whose curves are `curves` (each non-empty).
    ///
    /// Every block gets at least its curve's smallest count and at most its largest; the sum never
    /// exceeds `cap` when `cap` is at least the sum of the smallest counts (the caller's duty:
    /// `precondition`), and equals it unless every block is at its largest. Tokens past the end of
    /// every hull (where the measured error stopped falling) are spread evenly over the blocks
    /// with room: a rate or a budget is a promise of tokens, and a trained model's error falls
    /// with every token.
    /// `margin`: the `balanced` floor's margin in dB (`balancedFloor`).
    public static func allocate(curves: [[RatePoint]], cap: Int, objective: RateObjective = .mse,
                                margin: Double = floorMargin) -> RateAllocation {
        precondition(curves.allSatisfy { !$0.isEmpty }, "every block needs a measured point")
        if objective == .balanced {
            // The floors are lower bounds: each block's curve starts at its floor count, and the
            // mean-PSNR allocation runs on what is left of the curves.
            let floors = balancedFloor(curves: curves, cap: cap, margin: margin).counts
            let raised = zip(curves, floors).map { curve, n in filledIn(curve).filter { $0.tokens >= n } }
            return allocate(curves: raised, cap: cap, objective: .psnr)
        }
        // The hulls are taken of what is minimised: the MSE, or its log (mean PSNR).
        let hulls = curves.map { curve in
            hull(filledIn(curve).map { objective == .mse ? $0 : RatePoint(tokens: $0.tokens, mse: Foundation.log(max($0.mse, 1e-30))) })
        }
        /// The hull vertex each block reaches taking every segment steeper than λ.
        func counts(at lambda: Double) -> [Int] {
            hulls.map { h in
                var i = 0
                while i + 1 < h.count, (h[i].mse - h[i + 1].mse) / Double(h[i + 1].tokens - h[i].tokens) > lambda { i += 1 }
                return h[i].tokens
            }
        }
        let floor = hulls.map { $0[0].tokens }
        precondition(cap >= floor.reduce(0, +), "cap \(cap) is below the blocks' smallest counts (\(floor.reduce(0, +)))")
        var taken = counts(at: 0)
        var lambda = 0.0
        if taken.reduce(0, +) > cap {
            // Bisection on λ: total(lo) > cap ≥ total(hi).
            let steepest = hulls.map { h in h.count > 1 ? (h[0].mse - h[1].mse) / Double(h[1].tokens - h[0].tokens) : 0 }.max() ?? 0
            var lo = 0.0, hi = steepest * 2 + 1
            taken = floor
            for _ in 0..<200 {
                let mid = (lo + hi) / 2
                guard mid > lo && mid < hi else { break }
                let c = counts(at: mid)
                if c.reduce(0, +) > cap { lo = mid } else { hi = mid; taken = c }
            }
            lambda = hi
            // What is left goes to the segments between the two slopes (ties at λ), steepest
            // first, the last one in part.
            var left = cap - taken.reduce(0, +)
            var ties: [(slope: Double, block: Int, from: Int, to: Int)] = []
            for (b, h) in hulls.enumerated() where left > 0 {
                for i in 0..<(h.count - 1) where h[i].tokens >= taken[b] {
                    let slope = (h[i].mse - h[i + 1].mse) / Double(h[i + 1].tokens - h[i].tokens)
                    if slope <= lo { break }
                    ties.append((slope, b, h[i].tokens, h[i + 1].tokens))
                }
            }
            ties.sort { ($0.slope, -$0.block, -$0.from) > ($1.slope, -$1.block, -$1.from) }
            for t in ties where left > 0 && taken[t.block] == t.from {
                let take = min(t.to - t.from, left)
                taken[t.block] += take
                left -= take
            }
        } else {
            // Past every hull's end: spread evenly up to each curve's largest count.
            let largest = curves.map { $0.map(\.tokens).max()! }
            var left = cap - taken.reduce(0, +)
            while left > 0 {
                let open = taken.indices.filter { taken[$0] < largest[$0] }
                guard !open.isEmpty else { break }
                let share = max(1, left / open.count)
                for b in open where left > 0 {
                    let give = min(share, largest[b] - taken[b], left)
                    taken[b] += give
                    left -= give
                }
            }
        }
        return RateAllocation(counts: taken, predictedMSE: taken.indices.map { b in
                                  let v = interpolate(hulls[b], taken[b])
                                  return objective == .mse ? v : Foundation.exp(v)
                              },
                              lambda: lambda)
    }

    /// Hands out `total` across the blocks of a file (`--budget`) with no chunk of `chunkBlocks`
    /// blocks (from block 0) over `chunkCap`: equal slope over the whole file; a chunk that comes
    /// out over the cap is held at its own equal-slope split of the cap and the rest of the total
    /// is handed out again over the other chunks, until none is over (each round holds at least one
    /// more chunk, so at most one round per chunk; a round is one `allocate`).
    public static func allocate(curves: [[RatePoint]], cap total: Int, chunkBlocks: Int, chunkCap: Int?,
                                objective: RateObjective = .mse, margin: Double = floorMargin) -> [Int] {
        guard let chunkCap else { return allocate(curves: curves, cap: total, objective: objective, margin: margin).counts }
        let chunks = stride(from: 0, to: curves.count, by: chunkBlocks).map { $0..<min($0 + chunkBlocks, curves.count) }
        var held: [Int: [Int]] = [:]
        while true {
            let free = chunks.indices.filter { held[$0] == nil }
            let spent = held.values.map { $0.reduce(0, +) }.reduce(0, +)
            let freeBlocks = free.flatMap { Array(chunks[$0]) }
            var counts = [Int](repeating: 0, count: curves.count)
            for (c, n) in held { counts.replaceSubrange(chunks[c], with: n) }
            guard !freeBlocks.isEmpty else { return counts }
            let floor = freeBlocks.map { b in curves[b].map(\.tokens).min()! }.reduce(0, +)
            let rest = allocate(curves: freeBlocks.map { curves[$0] }, cap: max(total - spent, floor), objective: objective,
                                margin: margin).counts
            for (b, n) in zip(freeBlocks, rest) { counts[b] = n }
            let over = free.filter { counts[chunks[$0]].reduce(0, +) > chunkCap }
            if over.isEmpty { return counts }
            for c in over { held[c] = allocate(curves: Array(curves[chunks[c]]), cap: chunkCap, objective: objective, margin: margin).counts }
        }
    }

    /// How far the `balanced` objective lifts the worst block above the even split, in dB (at most
    /// to the maximin). It is a margin for the prediction: a block's committed error differs from
    /// the one its curve predicts by up to about half a dB (the earlier blocks of its chunk end at
    /// other counts than the ones it was measured against); chosen on one clip among 0.1, 0.2 and
    /// 0.5 dB, then checked on the others (BENCHMARKS.md, *Rate control*).
    public static let floorMargin = 0.5

    /// `--budget`'s whole-file floor: `budgetFloorMargin` dB above the lowest block of the even
    /// split (the `--fixed` file's worst block, the curves being measured at the share), and
    /// `positionMargin` dB more per position in the chunk; no block under `leastShare` of the
    /// share. Why: a block's curve is measured with the earlier blocks of its chunk at the share;
    /// a whole-file allocation moves them far from it, and a block after starved predecessors does
    /// worse than its curve by about 0.5 dB at position 1 to 2–4 dB at position 3 when it is
    /// starved too (bikes; BENCHMARKS.md, *Rate control*). Chosen on bikes among 0.1/0.2/0.3 dB,
    /// 0/0.5/0.7/1.0 dB per position and 0/0.4/0.5 of the share, then checked on the other clips.
    public static let budgetFloorMargin = 0.3
    public static let positionMargin = 0.7
    public static let leastShare = 0.5

    /// `--budget`'s lower bounds per block for the `balanced` objective (see `budgetFloorMargin`):
    /// the floor as an MSE (nil: none, the curves' minimums; or the plain `balancedFloor` when
    /// the per-position floors do not fit `total`), the least count (`leastShare` of the share, 0
    /// when it does not fit), and each block's lowest count: reaching the floor at its position
    /// (block b sits at b % chunkBlocks) and at least the least count, or its curve's largest.
    public static func budgetFloors(curves: [[RatePoint]], total: Int, chunkBlocks: Int)
        -> (mse: Double?, least: Int, counts: [Int]) {
        let filled = curves.map(filledIn)
        let smallest = filled.map { $0[0].tokens }
        let plain = balancedFloor(curves: curves, cap: total, margin: budgetFloorMargin)
        guard plain.mse.isFinite else { return (nil, 0, smallest) }
        let least = Int(leastShare * Double(total) / Double(max(1, curves.count)))
        func counts(margin perPosition: Double, least: Int) -> [Int] {
            filled.enumerated().map { b, f in
                let target = plain.mse / Foundation.pow(10, perPosition * Double(b % max(1, chunkBlocks)) / 10)
                return smallestCount(reaching: target, on: f, least: least)
            }
        }
        for (perPosition, n) in [(positionMargin, least), (0, least), (0, 0)] {
            let c = counts(margin: perPosition, least: n)
            if c.reduce(0, +) <= total { return (plain.mse, n, c) }
        }
        return (plain.mse, 0, plain.counts)
    }

    /// `--budget`'s whole-file split for the `balanced` objective: every block at least its
    /// `budgetFloors` count, the rest by mean PSNR, within `chunkCap` per chunk (a chunk whose
    /// lower bounds exceed the cap goes by its plain curves). Returns the counts and the floors.
    public static func allocateBudget(curves: [[RatePoint]], total: Int, chunkBlocks: Int, chunkCap: Int?)
        -> (counts: [Int], floor: (mse: Double?, least: Int, counts: [Int])) {
        let floor = budgetFloors(curves: curves, total: total, chunkBlocks: chunkBlocks)
        var raised = zip(curves, floor.counts).map { c, n in filledIn(c).filter { $0.tokens >= n } }
        if let chunkCap {
            for start in stride(from: 0, to: curves.count, by: chunkBlocks) {
                let chunk = start..<min(start + chunkBlocks, curves.count)
                if floor.counts[chunk].reduce(0, +) > chunkCap { for b in chunk { raised[b] = curves[b] } }
            }
        }
        return (allocate(curves: raised, cap: total, chunkBlocks: chunkBlocks, chunkCap: chunkCap, objective: .psnr), floor)
    }

    /// The smallest count of a filled-in curve whose MSE is at most `m` (its largest when none is),
    /// and at least `least` where the curve reaches that far: a block's lower bound under a floor.
    static func smallestCount(reaching m: Double, on filled: [RatePoint], least: Int = 0) -> Int {
        max(filled.first { $0.mse <= m }?.tokens ?? filled.last!.tokens, min(least, filled.last!.tokens))
    }

    /// The `balanced` objective's PSNR floor, as an MSE, and each block's smallest count reaching
    /// it on its filled-in curve (its largest count if none does).
    ///
    /// With the cap split evenly (the first `cap % blocks` blocks one token more), the worst block
    /// is predicted at MSE `even` (with the curves measured at the even share, what `--fixed` at
    /// the share gives it). The maximin MSE `best` is the lowest MSE that every block can reach
    /// within the cap (the smallest counts reaching it sum to at most `cap`; found by binary search
    /// over the curves' own values, so exactly). The floor is `floorMargin` dB above `even`, or
    /// `best` when that is higher than the cap allows. `best ≤ even` always (the even split is one
    /// way to reach `even`), so the floors sum to at most `cap`. Cost: a sort of every filled-in
    /// point and about 20 scans of them.
    public static func balancedFloor(curves: [[RatePoint]], cap: Int, margin: Double = floorMargin) -> (mse: Double, counts: [Int]) {
        let filled = curves.map(filledIn)
        /// The smallest count of each block whose MSE is at most `m` (its largest when none is).
        func counts(reaching m: Double) -> [Int] {
            filled.map { smallestCount(reaching: m, on: $0) }
        }
        func feasible(_ m: Double) -> Bool {
            zip(filled, counts(reaching: m)).allSatisfy { f, n in f.first { $0.tokens == n }!.mse <= m }
                && counts(reaching: m).reduce(0, +) <= cap
        }
        // The even split's worst block, on the same filled-in curves.
        let share = cap / max(1, curves.count), extra = cap % max(1, curves.count)
        let even = filled.enumerated().map { b, f -> Double in
            let n = share + (b < extra ? 1 : 0)
            return (f.last { $0.tokens <= n } ?? f[0]).mse
        }.max() ?? 0
        // The maximin: the lowest feasible MSE among the curves' values (feasibility only grows
        // with m), at most `even`.
        let values = Array(Set(filled.flatMap { $0.map(\.mse) }.filter { $0 <= even })).sorted()
        var lo = 0, hi = values.count  // values[hi...] feasible (hi == count: only `even`)
        while lo < hi {
            let mid = (lo + hi) / 2
            if feasible(values[mid]) { hi = mid } else { lo = mid + 1 }
        }
        let best = hi < values.count ? values[hi] : even
        guard even > 0, best > 0 else { return (best, counts(reaching: best)) }
        let floor = max(best, even / Foundation.pow(10, margin / 10))
        let floors = counts(reaching: floor)
        // Only curves with different smallest counts (never the encoder's) can make the even
        // split itself infeasible; then there is no floor.
        guard floors.reduce(0, +) <= cap else { return (.infinity, filled.map { $0[0].tokens }) }
        return (floor, floors)
    }

    /// The hull's MSE at `n` tokens, linear between its points (clamped at its ends).
    static func interpolate(_ hull: [RatePoint], _ n: Int) -> Double {
        guard let upper = hull.firstIndex(where: { $0.tokens >= n }) else { return hull.last!.mse }
        if upper == 0 || hull[upper].tokens == n { return hull[upper].mse }
        let a = hull[upper - 1], b = hull[upper]
        let t = Double(n - a.tokens) / Double(b.tokens - a.tokens)
        return a.mse + t * (b.mse - a.mse)
    }
}

/// The one-pass rate controller of `--tokens-per-second`: a token bucket in the chunk stage.
///
/// Each chunk's cap is the tokens the target rate allows up to the chunk's end in media time,
/// minus what earlier chunks were given: cap = round(R · t_end − given), clamped to what the
/// chunk's blocks can hold (blocks × min … blocks × max, and `--max-tokens-per-chunk`). The
/// allocator spends a cap to the token, so the caps are what the encoder keeps, and the bucket
/// needs no result from the encoder: it runs in the (sequential) chunk stage and the output is the
/// same for any number of workers. The gap between target and given stays within half a token
/// unless a clamp bound; then it is carried into the next chunks (the buffer) until repaid.
public struct TokenRateBucket: Sendable, Equatable {
    /// Tokens per second of media time.
    public let rate: Double
    /// Tokens the rate allowed up to the end of the last chunk, and tokens given out.
    public private(set) var target: Double = 0
    public private(set) var given = 0

    public init(rate: Double) {
        precondition(rate.isFinite && rate > 0)
        self.rate = rate
    }

    /// The cap of the next chunk, which lasts `seconds` of media time and can hold `range` tokens.
    public mutating func cap(seconds: Double, range: ClosedRange<Int>) -> Int {
        target += rate * max(0, seconds)
        let want = Int((target - Double(given)).rounded())
        let cap = min(max(want, range.lowerBound), range.upperBound)
        given += cap
        return cap
    }
}

/// Media time a run of frames covers: from the first frame's time to the last one's, plus one
/// mean frame interval for the last frame's own duration (so 250 frames at 25 fps are 10 s).
/// A single frame counts `fallbackInterval`. The same rule sets the chunk stage's bucket and the
/// achieved rate that `info` and `--stats` report.
public func coveredSeconds(first: Double, last: Double, frames: Int, fallbackInterval: Double) -> Double {
    guard frames > 1, last > first else { return fallbackInterval * Double(max(frames, 1)) }
    return (last - first) * Double(frames) / Double(frames - 1)
}

/// The closed-loop commit of a `--budget` chunk: block by block, with the real context, the
/// allocated count is checked against the whole-file floor and raised when it misses, and what
/// is left of the chunk's total is handed out again over the later blocks.
///
/// The rule, as a plain value (the encoder runs the passes, `RateControlTests` the rule on fake
/// curves): for block k, `candidates(k)` are its planned count a_k and up to three larger counts
/// the chunk can still afford (a_k × 1.2, 1.45, 1.75, leaving every later block its smallest
/// count); the encoder evaluates them in one batched pass and `choose(k, mse:)` commits the
/// smallest that meets the floor, itself and the later blocks as then predicted (a_k when it
/// does), else the one that leaves the chunk's worst block best off. The later blocks are
/// then allocated again (`RateAllocator`, mean PSNR above per-block floor counts) within what is
/// left, with a stricter floor when the blocks so far did worse than their curves predicted at
/// their planned counts (the mean log ratio of the misses: a late block has nobody to borrow from).
/// The chunk's total is spent to the token unless every later block reaches its largest count.
/// Cost: no model pass; up to five `allocate`s per block.
public struct ClosedLoopCommit: Sendable {
    /// Each block's measured curve (filled in), and the floor as an MSE.
    let curves: [[RatePoint]]
    public let floorMSE: Double
    let minTokens: Int
    let maxTokens: Int
    /// The counts planned for every block (rewritten for the later blocks after each choice).
    public private(set) var plan: [Int]
    /// Tokens of the chunk's total not yet committed.
    public private(set) var remaining: Int
    /// Sum of log(measured / predicted MSE at the planned count) over the blocks so far, and how many.
    private var missLog = 0.0
    private var decided = 0

    /// Factors above a block's planned count that `candidates` tries.
    public static let steps = [1.2, 1.45, 1.75]

    /// The least count a re-plan gives a later block while that fits (the allocation's own lower bound).
    let leastPlanned: Int

    public init(counts: [Int], curves: [[RatePoint]], floorMSE: Double, minTokens: Int, maxTokens: Int, leastPlanned: Int = 0) {
        precondition(counts.count == curves.count && !counts.isEmpty)
        self.leastPlanned = leastPlanned
        self.curves = curves.map(RateAllocator.filledIn)
        self.floorMSE = floorMSE
        self.minTokens = minTokens
        self.maxTokens = maxTokens
        plan = counts
        remaining = counts.reduce(0, +)
    }

    /// The most block `k` may keep: what is left, less the later blocks' smallest counts.
    func affordable(_ k: Int) -> Int {
        min(maxTokens, remaining - (plan.count - k - 1) * minTokens)
    }

    /// The counts to evaluate for block `k` (ascending; the planned count first).
    public func candidates(_ k: Int) -> [Int] {
        let a = min(plan[k], affordable(k)), top = affordable(k)
        var out = [a]
        for f in Self.steps {
            let n = min(Int((Double(a) * f).rounded()), top)
            if n > out.last! { out.append(n) }
        }
        return out
    }

    /// Commits block `k` given the MSEs measured at `candidates(k)`, re-plans the later blocks,
    /// and returns the count committed: each candidate is judged by the worse of its own MSE
    /// and the later blocks' worst predicted MSE after re-planning the rest (times the mean miss
    /// so far); the smallest candidate whose worse meets the floor, else the one whose worse is
    /// lowest. Raising a block only pays while it does not make a later block the chunk's worst.
    /// `mse` nil: there was one candidate, not evaluated (it is committed; no miss is counted).
    public mutating func choose(_ k: Int, mse: [Double]?) -> Int {
        let counts = candidates(k)
        var n = counts[0]
        if let mse {
            precondition(mse.count == counts.count, "one MSE per candidate")
            let predicted = predictedMSE(k, counts[0])
            if predicted > 0, mse[0] > 0 { missLog += log(mse[0] / predicted) }
            decided += 1
            let scale = exp(max(0, missLog / Double(decided)))
            let worst = counts.indices.map { i in max(mse[i], laterPlan(after: k, remaining: remaining - counts[i]).worst * scale) }
            n = counts[worst.indices.first { worst[$0] <= floorMSE } ?? worst.indices.min { (worst[$0], $0) < (worst[$1], $1) }!]
        }
        plan[k] = n
        remaining -= n
        for (b, c) in zip((k + 1)..<plan.count, laterPlan(after: k, remaining: remaining).counts) { plan[b] = c }
        return n
    }

    /// Block `k`'s curve at `n` tokens (its nearest measured count at or below, or its first).
    func predictedMSE(_ k: Int, _ n: Int) -> Double {
        (curves[k].last { $0.tokens <= n } ?? curves[k][0]).mse
    }

    /// `left` tokens handed out over the blocks after `k`: each first up to the floor (made
    /// stricter by the mean miss so far, when positive; the plain floor, or none, when that does
    /// not fit), then by mean PSNR. Returns their counts and the worst predicted MSE (0: none).
    func laterPlan(after k: Int, remaining left: Int) -> (counts: [Int], worst: Double) {
        let later = Array((k + 1)..<plan.count)
        guard !later.isEmpty else { return ([], 0) }
        let miss = max(0, missLog / Double(max(1, decided)))
        func floorCounts(_ m: Double) -> [Int] {
            later.map { RateAllocator.smallestCount(reaching: m, on: curves[$0], least: leastPlanned) }
        }
        var floors = floorCounts(floorMSE / exp(miss))
        if floors.reduce(0, +) > left { floors = floorCounts(floorMSE) }
        if floors.reduce(0, +) > left { floors = later.map { curves[$0][0].tokens } }
        let raised = zip(later, floors).map { b, f in curves[b].filter { $0.tokens >= f } }
        let counts = RateAllocator.allocate(curves: raised, cap: max(left, floors.reduce(0, +)), objective: .psnr).counts
        return (counts, zip(later, counts).map { predictedMSE($0, $1) }.max()!)
    }
}

/// Rate control with repeat blocks (`RepeatBlock`): a block may also keep 0 tokens and show the
/// last frame the chunk showed before it, when that is where the tokens do the most good.
///
/// A block's repeat error depends on the block it repeats: block k repeating the reconstruction
/// of block j (every block between them repeating too) has MSE `repeats[k][j]` at each count
/// block j's curve was measured at (the points' tokens are block j's). So a choice of which
/// blocks repeat (a *pattern*) makes groups: a coded block and the repeats after it, whose errors
/// all move with the coded block's count. Each group is one curve over that count (its members'
/// errors summed, or multiplied for the log objectives, so the allocator's objective is the sum
/// over the members), and the allocator hands out the cap over the groups.
///
/// The rule: every pattern (the chunk's first block always coded; all 2^(n−1) of them up to
/// `exhaustiveBlocks` blocks, else greedily one repeat at a time) whose groups can spend the cap
/// as the plain allocation does, and, for `balanced`, whose every member reaches the plain
/// allocation's floor, is allocated; the one with the lowest objective over the blocks' predicted
/// errors wins, the plain allocation (no repeat) on ties. So a repeat is written where it is
/// predicted to help the objective without taking any block below the floor.
/// Cost: no model pass; one `allocate` per pattern (8 for chunks of 4 blocks).
extension RateAllocator {
    /// Chunks of up to this many blocks try every pattern; longer ones add repeats greedily.
    static let exhaustiveBlocks = 7

    /// `allocate(curves:cap:objective:margin:)`, where a block after the chunk's first may also
    /// repeat (count 0; `repeats` as in the extension's comment: `repeats[k]` has one curve per
    /// earlier block). `repeats` empty: the plain allocation.
    /// A cap below the blocks' smallest counts (at least the first block's: `TokenRateBucket`'s
    /// range under repeats) can only be kept with repeats: then the best pattern that fits is
    /// taken, with no floor (the even split it would be measured against does not exist).
    public static func allocate(curves: [[RatePoint]], repeats: [[[RatePoint]]], cap: Int,
                                objective: RateObjective = .mse, margin: Double = floorMargin) -> RateAllocation {
        if !repeats.isEmpty, cap < curves.map({ $0.map(\.tokens).min()! }).reduce(0, +) {
            guard let best = bestRepeats(curves: curves, repeats: repeats, cap: cap, objective: objective,
                                         floorMSE: nil, plain: nil) else {
                preconditionFailure("cap \(cap) is below the chunk's first block's smallest count")
            }
            return RateAllocation(counts: best.counts, predictedMSE: best.predictedMSE, lambda: 0)
        }
        let plain = allocate(curves: curves, cap: cap, objective: objective, margin: margin)
        guard !repeats.isEmpty else { return plain }
        let floor = objective == .balanced ? balancedFloor(curves: curves, cap: cap, margin: margin).mse : nil
        let best = bestRepeats(curves: curves, repeats: repeats, cap: cap, objective: objective,
                               floorMSE: floor.flatMap { $0.isFinite ? $0 : nil }, plain: plain.counts)
        return best.map { RateAllocation(counts: $0.counts, predictedMSE: $0.predictedMSE, lambda: plain.lambda) } ?? plain
    }

    /// The best pattern of repeats for a chunk whose plain (no repeat) counts are `plain`, within
    /// `cap` and at or under `floorMSE` for every block; nil when none beats `plain` on the
    /// objective (see the extension's comment). Counts are 0 for repeats. `plain` nil: the cap is
    /// below the blocks' smallest counts, and the best pattern that fits is returned (nil: none).
    public static func bestRepeats(curves: [[RatePoint]], repeats: [[[RatePoint]]], cap: Int, objective: RateObjective,
                                   floorMSE: Double?, plain: [Int]?) -> (counts: [Int], predictedMSE: [Double])? {
        let n = curves.count
        precondition(repeats.count == n && (plain?.count ?? n) == n, "one repeat list and plain count per block")
        guard n > 1 else { return nil }
        let filled = curves.map(filledIn), filledRepeats = repeats.map { $0.map(filledIn) }
        /// The value the objective sums over blocks.
        func value(_ mse: Double) -> Double { objective == .mse ? mse : Foundation.log(max(mse, 1e-30)) }
        /// A filled curve's MSE at `count` (clamped to its ends).
        func at(_ f: [RatePoint], _ count: Int) -> Double { f[min(max(count - f[0].tokens, 0), f.count - 1)].mse }
        let plainScore = plain.map { zip(filled, $0).map { value(at($0, $1)) }.reduce(0, +) } ?? .infinity
        // The cap the plain allocation spends (all of it unless every block is at its largest).
        var spend = min(cap, filled.map { $0.last!.tokens }.reduce(0, +))

        /// Allocates pattern `repeating` (a set of blocks ≥ 1); nil when it cannot spend `spend`
        /// within `cap` or a member cannot reach the floor.
        func evaluate(_ repeating: Set<Int>) -> (score: Double, counts: [Int], predicted: [Double])? {
            var groups: [(source: Int, members: [[RatePoint]], blocks: [Int])] = []
            for k in 0..<n {
                if repeating.contains(k), let g = groups.last {
                    let r = filledRepeats[k][g.source]
                    // The repeat's points are at the source's measured counts: the same grid.
                    guard r.map(\.tokens) == filled[g.source].map(\.tokens) else { return nil }
                    groups[groups.count - 1].members.append(r)
                    groups[groups.count - 1].blocks.append(k)
                } else {
                    groups.append((k, [filled[k]], [k]))
                }
            }
            var groupCurves: [[RatePoint]] = []
            for g in groups {
                let grid = filled[g.source]
                let worst = grid.indices.map { i in g.members.map { $0[i].mse }.max()! }
                let start = floorMSE.map { f in worst.firstIndex { $0 <= f } } ?? 0
                guard let start else { return nil }
                // Summed MSE, or the product of each member's MSE relative to its first point
                // (the log objectives: a constant per group changes no slope, and keeps it in range).
                groupCurves.append((start..<grid.count).map { i in
                    let mse = objective == .mse
                        ? g.members.map { $0[i].mse }.reduce(0, +)
                        : g.members.map { max($0[i].mse, 1e-30) / max($0[0].mse, 1e-30) }.reduce(1, *)
                    return RatePoint(tokens: grid[i].tokens, mse: mse)
                })
            }
            guard groupCurves.map({ $0[0].tokens }).reduce(0, +) <= cap,
                  groupCurves.map({ $0.last!.tokens }).reduce(0, +) >= spend else { return nil }
            let groupCounts = allocate(curves: groupCurves, cap: cap, objective: objective == .mse ? .mse : .psnr).counts
            var counts = [Int](repeating: 0, count: n), predicted = [Double](repeating: 0, count: n)
            for (g, count) in zip(groups, groupCounts) {
                counts[g.source] = count
                for (b, member) in zip(g.blocks, g.members) { predicted[b] = at(member, count) }
            }
            return (predicted.map(value).reduce(0, +), counts, predicted)
        }

        var best: (score: Double, counts: [Int], predicted: [Double])? = nil
        func consider(_ r: Set<Int>) -> Bool {
            guard let e = evaluate(r), e.score < (best?.score ?? plainScore) else { return false }
            best = e
            return true
        }
        func search() {
            if n <= exhaustiveBlocks {
                for mask in 1..<(1 << (n - 1)) {
                    _ = consider(Set((1..<n).filter { mask & (1 << ($0 - 1)) != 0 }))
                }
            } else {
                // Greedy: add the repeat that helps most while one does.
                var chosen = Set<Int>()
                while true {
                    var step: Set<Int>? = nil
                    for k in 1..<n where !chosen.contains(k) {
                        if consider(chosen.union([k])) { step = chosen.union([k]) }
                    }
                    guard let step else { break }
                    chosen = step
                }
            }
        }
        search()
        if best == nil && plain == nil {
            // No pattern can spend the cap (curves that end below it): the best one within it.
            spend = 0
            search()
        }
        return best.map { ($0.counts, $0.predicted) }
    }
}
