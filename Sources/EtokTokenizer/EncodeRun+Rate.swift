import EtokFormat
import EtokMedia
import EtokPipeline
import Foundation

/// What a rate-controlled encode aimed at and what it achieved (`--stats` `rate_control`).
public struct RateControlSummary: Sendable, Codable, Equatable {
    /// `tokens_per_second`, `budget` or `max_tokens_per_chunk` (§4 `encoding.rate_control.mode`).
    public var mode: String
    /// The target: tokens per second of media, tokens for the file, or the cap per chunk.
    public var target: Double
    /// The same figure achieved: mean tokens per second over the media time, total tokens, or the
    /// largest chunk's tokens.
    public var achieved: Double
    /// The cap per chunk, when one was given, and the most tokens any chunk kept.
    public var maxTokensPerChunk: Int?
    public var largestChunk: Int
    /// Media time the rate is measured over (first frame to last, plus one mean frame interval).
    public var mediaSeconds: Double
    /// What the allocation minimised: `mse` or `psnr` (`RateObjective`).
    public var objective: String = RateObjective.mse.rawValue

    enum CodingKeys: String, CodingKey {
        case mode, target, achieved, largestChunk = "largest_chunk", mediaSeconds = "media_seconds"
        case maxTokensPerChunk = "max_tokens_per_chunk", objective
    }
}

extension EncoderSettings {
    /// §4 `encoding.rate_control` for these settings; nil (the key absent) without rate control.
    var headerRateControl: EtokHeader.RateControl? {
        // The objective is written only when it is not the default (summed MSE).
        let objective = rateObjective == .mse ? nil : rateObjective.rawValue
        switch rateTarget {
        case .tokensPerSecond(let r)?:
            return EtokHeader.RateControl(mode: .tokensPerSecond, target: r, maxTokensPerChunk: maxTokensPerChunk, objective: objective)
        case .budget(let n)?:
            return EtokHeader.RateControl(mode: .budget, target: Double(n), maxTokensPerChunk: maxTokensPerChunk, objective: objective)
        case nil:
            return maxTokensPerChunk.map {
                EtokHeader.RateControl(mode: .maxTokensPerChunk, target: Double($0), maxTokensPerChunk: $0, objective: objective)
            }
        }
    }

    /// The summary's rate-control figures; nil without rate control.
    func rateSummary(stats: [BlockStats], chunkBlocks: Int, fallbackInterval: Double) -> RateControlSummary? {
        headerRateControl.map {
            RateControlSummary(control: $0, blocks: stats.map { ($0.block, $0.seconds, $0.kept) },
                               chunkBlocks: chunkBlocks, fallbackInterval: fallbackInterval)
        }
    }
}

extension RateControlSummary {
    /// The figures for `control` from the blocks kept (stream index, time in seconds, kept count),
    /// chunks being `chunkBlocks` blocks from block 0; `fallbackInterval` is a block's duration when
    /// there is one block. The one computation behind `--stats` and `etok info`.
    public init(control: EtokHeader.RateControl, blocks: [(index: Int, seconds: Double, kept: Int)],
                chunkBlocks: Int, fallbackInterval: Double) {
        let tokens = blocks.map(\.kept).reduce(0, +)
        var perChunk: [Int: Int] = [:]
        for b in blocks { perChunk[b.index / max(1, chunkBlocks), default: 0] += b.kept }
        let largest = perChunk.values.max() ?? 0
        let seconds = coveredSeconds(first: blocks.first?.seconds ?? 0, last: blocks.last?.seconds ?? 0,
                                   frames: blocks.count, fallbackInterval: fallbackInterval)
        let achieved: Double
        switch control.mode {
        case .tokensPerSecond: achieved = seconds > 0 ? Double(tokens) / seconds : 0
        case .budget: achieved = Double(tokens)
        default: achieved = Double(largest)
        }
        self.init(mode: control.mode.rawValue, target: control.target, achieved: achieved,
                  maxTokensPerChunk: control.maxTokensPerChunk, largestChunk: largest, mediaSeconds: seconds,
                  objective: control.objective ?? RateObjective.mse.rawValue)
    }
}

/// The first pass's measurements, gathered in block order by the sink stage.
private final class CurveCollector: @unchecked Sendable {
    var curves: [[RatePoint]] = []
    /// Per chunk: its first block and its repeat curves (`ConditionalEncoder.measureChunk`).
    var repeats: [(first: Int, curves: [[[RatePoint]]])] = []
    var passes: [(Int, Int)] = []
}

extension EncodeRun {
    /// `--budget`'s first pass: reads the input once more, measures every block's curve
    /// (`ConditionalEncoder.measureChunk`, the context at the grid count nearest the budget's mean
    /// share per block), then hands out `total` over the whole file by the objective (`balanced`:
    /// `RateAllocator.allocateBudget`, per-block floors, then mean PSNR), within
    /// `--max-tokens-per-chunk` per chunk. Returns one count per block, the curves, the floor MSE
    /// and least count the second pass's closed loop keeps (`balanced` only; nil otherwise), and
    /// the first pass's (passes, counts evaluated) per block. Memory: one curve per block.
    func allocateBudget(_ total: Int, encoders: [ConditionalEncoder]) throws
        -> (counts: [Int], curves: [[RatePoint]], floorMSE: Double?, least: Int, passes: [(Int, Int)]) {
        let config = model.model.config
        let source = try VideoSource(path: job.input, options: job.inputOptions)
        let (height, width) = config.imageSize
        let preprocessor = try Preprocessor(options: PreprocessOptions(width: width, height: height, fit: job.fit))
        let framesPerBlock = config.framesPerBlock, chunkBlocks = self.chunkBlocks
        // The blocks the file will have, as its container says, for the provisional context.
        let fps = job.inputOptions.frameRate ?? info.frameRate
        let estimate = info.duration.flatMap { d in fps.map { d * $0 } }.map { $0 / Double(framesPerBlock) }
            ?? info.containerFrameCount.map { Double($0) / Double(framesPerBlock) }
        let share = estimate.map { Double(total) / max($0, 1) }
            ?? (Double(tokenRange.lowerBound) * Double(tokenRange.upperBound)).squareRoot()
        let provisional = encoders[0].provisionalCount(share: share)
        let collected = CurveCollector()
        let pipeline = Pipeline.source("decode") { try source.nextFrame() }
            .map("preprocess") { frame in try preprocessor.process(frame) }
            .then("chunk", ChunkGatherer(framesPerBlock: framesPerBlock, chunkBlocks: chunkBlocks))
            .parallelMap("measure", capacity: 1, workers: encoders) { encoder, chunk in
                let blocks = try ChunkGatherer.blocks(of: chunk.frames, framesPerBlock: framesPerBlock,
                                                      height: height, width: width, config: encoder.model.config)
                let measured = try encoder.measureChunk(blocks, provisional: provisional)
                return (measured.curves, measured.repeats, measured.passes.map { [$0.0, $0.1] })
            }
            .sink("collect", consume: { (item: ([[RatePoint]], [[[RatePoint]]], [[Int]])) in
                if !item.1.isEmpty { collected.repeats.append((collected.curves.count, item.1)) }
                collected.curves += item.0
                collected.passes += item.2.map { ($0[0], $0[1]) }
            }, finish: {
                guard !collected.curves.isEmpty else { throw MediaError.noFrames(file: source.info.input) }
            })
        try runPass(pipeline)
        let curves = collected.curves
        let objective = job.settings.rateObjective, chunkCap = job.settings.maxTokensPerChunk
        let lowest = tokenRange.lowerBound
        let chunks = stride(from: 0, to: curves.count, by: chunkBlocks).map { $0..<min($0 + chunkBlocks, curves.count) }
        // With repeats, a chunk's blocks after its first may keep 0 tokens.
        let floor = (job.settings.rateRepeats ? chunks.count : curves.count) * lowest
        guard total >= floor else {
            throw TokenizerError.badSetting("--budget \(total) is below the least \(job.input) can take: "
                + (job.settings.rateRepeats ? "\(chunks.count) chunks × \(lowest) tokens = \(floor) (every block after a chunk's first a repeat)"
                                            : "\(curves.count) blocks × \(lowest) tokens = \(floor)"))
        }
        if total < curves.count * lowest {
            // Below every block's smallest count: only repeats can keep it. Each chunk gets its first
            // block's smallest count and a share of the rest by its blocks (within the cap), and spends
            // it on the best pattern of repeats that fits (`RateAllocator.allocate(curves:repeats:…)`).
            let rest = total - chunks.count * lowest
            var counts: [Int] = [], given = 0
            for (c, chunk) in chunks.enumerated() {
                let upTo = rest * chunk.upperBound / curves.count
                let cap = min(lowest + upTo - given, chunkCap ?? .max)
                given = upTo
                counts += RateAllocator.allocate(curves: Array(curves[chunk]), repeats: collected.repeats[c].curves, cap: cap,
                                                 objective: objective).counts
            }
            return (counts, curves, nil, 0, collected.passes)
        }
        var counts: [Int], fileFloor: (mse: Double?, least: Int) = (nil, 0)
        if objective == .balanced {
            let split = RateAllocator.allocateBudget(curves: curves, total: total, chunkBlocks: chunkBlocks, chunkCap: chunkCap)
            (counts, fileFloor) = (split.counts, (split.floor.mse, split.floor.least))
        } else {
            counts = RateAllocator.allocate(curves: curves, cap: total, chunkBlocks: chunkBlocks, chunkCap: chunkCap,
                                            objective: objective)
        }
        // Repeats: each chunk keeps its total; blocks repeat where that is predicted to help the
        // objective over the chunk (`RateAllocator.bestRepeats`), no block below the file's floor.
        for (first, repeats) in collected.repeats {
            let chunk = first..<(first + repeats.count)
            if let best = RateAllocator.bestRepeats(curves: Array(curves[chunk]), repeats: repeats,
                                                    cap: counts[chunk].reduce(0, +), objective: objective,
                                                    floorMSE: fileFloor.mse, plain: Array(counts[chunk])) {
                counts.replaceSubrange(chunk, with: best.counts)
            }
        }
        return (counts, curves, fileFloor.mse, fileFloor.least, collected.passes)
    }
}
