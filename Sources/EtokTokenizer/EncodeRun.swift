import EtokFormat
import EtokIO
import EtokMedia
import EtokModel
import EtokPipeline
import Foundation

/// What `etok encode` does: a video in, an `.etok` token stream out.
public struct EncodeJob: Sendable {
    /// Input path, or `-` for stdin.
    public var input: String
    public var inputOptions: InputOptions
    /// How frames are fitted to the model's input (its size comes from the model).
    public var fit: FitMode
    /// Output path, or `-` for stdout.
    public var output: String
    /// Replace an existing output.
    public var overwrite: Bool
    public var settings: EncoderSettings
    /// Chunks encoded at once, one worker thread each (the output is the same for any count).
    /// Default: one per core (`ThreadPolicy`).
    public var workers: Int

    public init(input: String, inputOptions: InputOptions = InputOptions(), fit: FitMode = .crop,
                output: String, overwrite: Bool = false, settings: EncoderSettings = EncoderSettings(),
                workers: Int = ThreadPolicy.defaultWorkers) {
        self.workers = workers
        self.input = input
        self.inputOptions = inputOptions
        self.fit = fit
        self.output = output
        self.overwrite = overwrite
        self.settings = settings
    }
}

/// Progress of a running encode, reported after each block.
public struct EncodeProgress: Sendable {
    public var blocks: Int
    public var frames: Int
    /// Kept tokens so far, and the largest budget of a block (for savings).
    public var tokens: Int
    public var maxTokensPerBlock: Int
    /// Media time of the last block, seconds from the first.
    public var mediaSeconds: Double
    /// Mean tokens per block so far.
    public var meanTokens: Double { blocks == 0 ? 0 : Double(tokens) / Double(blocks) }
    /// Mean tokens per frame so far (a block's tokens stand for all its frames).
    public var meanTokensPerFrame: Double { frames == 0 ? 0 : Double(tokens) / Double(frames) }
    /// Fraction of tokens saved against always keeping the largest budget.
    public var savings: Double { blocks == 0 ? 0 : 1 - meanTokens / Double(maxTokensPerBlock) }
}

/// Per-block statistics of an encode (what `--stats` writes).
public struct BlockStats: Sendable, Codable {
    public var block: Int
    public var pts: Int64
    public var seconds: Double
    public var kept: Int
    public var mse: Double
    public var psnr: Double
    public var meetsThreshold: Bool
    public var passes: Int
    public var evaluations: Int
    /// Under rate control, the MSE the allocator predicted from the block's measured curve.
    public var predictedMSE: Double? = nil
    /// A repeat block (0 tokens, the previous frame shown again; `RepeatBlock`).
    public var isRepeat = false

    enum CodingKeys: String, CodingKey {
        case block, pts, seconds, kept, mse, psnr, passes, evaluations
        case isRepeat = "repeat"
        case predictedMSE = "predicted_mse"
        case meetsThreshold = "meets_threshold"
    }
}

/// What a finished encode did. Figures are per block unless their name says per frame; with the
/// default model (one frame per block) the two are the same.
public struct EncodeSummary: Sendable, Codable {
    public var input: String
    public var output: String
    public var model: String
    public var threshold: Double
    public var search: String
    public var blocks: Int
    public var frames: Int
    public var chunks: Int
    public var tokens: Int
    public var maxTokensPerBlock: Int
    /// Mean kept tokens per block.
    public var meanTokens: Double
    public var savings: Double
    /// Mean PSNR over blocks.
    public var meanPSNR: Double
    /// Share of blocks whose MSE met the threshold.
    public var shareMeetingThreshold: Double
    public var passesPerBlock: Double
    public var bytes: Int
    public var bitsPerToken: Double
    public var decodeErrors: Int
    /// Why the input ended before its end, when `--skip-damaged` tokenized what came before.
    public var inputEndedEarly: String? = nil
    public var seconds: Double
    public var perBlock: [BlockStats]
    /// The model's frames per block: a block's tokens stand for this many frames.
    public var framesPerBlock: Int = 1
    /// The rate-control target and what was achieved; nil when the threshold alone set the budgets.
    public var rateControl: RateControlSummary? = nil
    /// Repeat blocks written (0 tokens each, counted in every mean as 0; `RepeatBlock`).
    public var repeatBlocks: Int = 0

    /// Share of the blocks that are repeat blocks.
    public var repeatShare: Double { blocks == 0 ? 0 : Double(repeatBlocks) / Double(blocks) }

    /// Mean kept tokens per frame.
    public var meanTokensPerFrame: Double { frames == 0 ? 0 : Double(tokens) / Double(frames) }
    /// The largest budget per frame: a block's largest budget spread over its frames.
    public var maxTokensPerFrame: Double { Double(maxTokensPerBlock) / Double(max(1, framesPerBlock)) }

    enum CodingKeys: String, CodingKey {
        case input, output, model, threshold, search, blocks, frames, chunks, tokens, seconds
        case framesPerBlock = "frames_per_block"
        case maxTokensPerBlock = "max_tokens_per_block", meanTokens = "mean_tokens", savings
        case meanPSNR = "mean_psnr", shareMeetingThreshold = "share_meeting_threshold"
        case passesPerBlock = "passes_per_block", bytes, bitsPerToken = "bits_per_token"
        case decodeErrors = "decode_errors", inputEndedEarly = "input_ended_early", perBlock = "per_block"
        case rateControl = "rate_control", repeatBlocks = "repeat_blocks"
    }
}

/// PSNR in dB of an MSE measured on the [−1, 1] scale (peak-to-peak 2).
public func psnr(mse: Double) -> Double { mse <= 0 ? 99 : 10 * log10(4 / mse) }

/// One encode: source → preprocess → conditional encoder → .etok writer, four stages of an
/// EtokPipeline (decoding, scaling and the model overlap; memory stays bounded for any length).
///
/// `init` loads nothing heavy but opens the input and checks the output, so bad input or an
/// existing output is reported before any work. `run` blocks until the end; `cancel` (any thread,
/// e.g. on SIGINT) stops it. A file output is written under a temporary name and renamed into
/// place at the end, so on an error or cancellation nothing is left and an older file of that name
/// stays as it was; a stream to stdout simply ends without its index, which readers report as
/// truncated. Runs once.
public final class EncodeRun: @unchecked Sendable {
    public let info: VideoInfo
    public let job: EncodeJob
    public let model: LoadedModel
    private let source: VideoSource
    private let preprocessor: Preprocessor
    private let placement: OutputPlacement
    /// Blocks per chunk (the settings resolved against the model).
    let chunkBlocks: Int
    /// Kept counts a block may have (the settings resolved against the model).
    let tokenRange: ClosedRange<Int>
    private let control = CancellableRun()

    /// Opens the input with `model` loaded; checks the settings and the output path.
    public init(job: EncodeJob, model: LoadedModel) throws {
        self.job = job
        self.model = model
        let resolved = try job.settings.resolved(for: model.model.config)
        chunkBlocks = resolved.chunkBlocks
        tokenRange = resolved.search.minTokens...resolved.search.maxTokens
        if case .budget = job.settings.rateTarget, job.input == "-" {
            throw TokenizerError.badSetting("--budget reads the input twice (measure, then allocate) and needs a file, "
                                            + "not stdin; for a stream use --tokens-per-second")
        }
        placement = try OutputPlacement(path: job.output, overwrite: job.overwrite,
                                        reads: [(job.input, "input"), (model.path, "model")])
        source = try VideoSource(path: job.input, options: job.inputOptions)
        info = source.info
        let size = model.model.config.imageSize
        preprocessor = try Preprocessor(options: PreprocessOptions(width: size.width, height: size.height, fit: job.fit))
    }

    /// The header this run writes.
    public var header: EtokHeader {
        let s = job.settings
        let fps = info.frameRate.map { Rational(approximating: $0) }
        return EtokHeader(
            etokVersion: etokVersion,
            model: model.headerModel,
            encoding: EtokHeader.Encoding(
                threshold: Double(s.threshold),
                search: s.fixedTokens != nil ? .fixed : s.rateTarget != nil ? .rate : EtokHeader.Search(rawValue: s.search.rawValue),
                fixedTokens: s.fixedTokens, fit: EtokHeader.Fit(rawValue: job.fit.rawValue),
                fps: job.inputOptions.frameRate,
                chunkBlocks: chunkBlocks,
                tokenCoding: .preferred(for: model.headerModel),
                rateControl: s.headerRateControl,
                precision: model.model.precision == .fp32 ? nil : model.model.precision.rawValue,
                repeatBlocks: s.writesRepeats ? true : nil),
            source: EtokHeader.Source(
                name: job.input == "-" ? "-" : URL(fileURLWithPath: job.input).lastPathComponent,
                width: info.width, height: info.height,
                timeBase: EtokHeader.Rational(Int(source.frameTimeBase.num), Int(source.frameTimeBase.den)),
                fps: fps.map { EtokHeader.Rational(Int($0.num), Int($0.den)) },
                duration: info.duration))
    }

    /// Runs to the end and returns the summary. Throws the first stage's error unchanged, or
    /// `PipelineError.cancelled` after `cancel()`.
    public func run(progress: @escaping @Sendable (EncodeProgress) -> Void = { _ in }) throws -> EncodeSummary {
        let started = Date()
        let config = model.model.config
        let chunkBlocks = self.chunkBlocks
        ThreadPolicy.applyToBLAS()
        // The clip's chunks from its duration, when known: fewer than the workers leaves cores
        // to each chunk's passes.
        let frames = info.duration.flatMap { d in (job.inputOptions.frameRate ?? info.frameRate).map { d * $0 } }
        let chunks = frames.map { max(1, Int(($0 / Double(config.framesPerBlock * chunkBlocks)).rounded(.up))) }
        let passThreads = ThreadPolicy.passThreads(running: ThreadPolicy.running(workers: max(1, job.workers), chunks: chunks))
        let encoders = try (0..<max(1, job.workers)).map { _ in
            let encoder = try ConditionalEncoder(model: model.model, settings: job.settings)
            encoder.passThreads = passThreads
            return encoder
        }
        // Rate control: the chunk stage gives each chunk its cap (one pass), or, for a budget,
        // the counts a first pass over the file allocated.
        let planner: ChunkPlanner?
        var firstPass: [(Int, Int)] = []
        switch job.settings.rateTarget {
        case .tokensPerSecond(let rate)?:
            planner = .bucket(TokenRateBucket(rate: rate), tokens: tokenRange, cap: job.settings.maxTokensPerChunk,
                              repeats: job.settings.rateRepeats,
                              fallbackInterval: 1 / (job.inputOptions.frameRate ?? info.frameRate ?? 1))
        case .budget(let total)?:
            let budget = try allocateBudget(total, encoders: encoders)
            firstPass = budget.passes
            planner = .counts(budget.counts, beyond: tokenRange.lowerBound,
                              closedLoop: budget.floorMSE.map { (budget.curves, $0, budget.least) })
        case nil:
            planner = nil
        }
        let sink = try FileSink(placement)
        let writer = try EtokWriter(sink: sink, header: header)
        let source = self.source, preprocessor = self.preprocessor
        let framesPerBlock = config.framesPerBlock
        let (height, width) = config.imageSize
        let tally = EncodeTally(writer: writer, maxTokens: config.maxToks, timeBase: source.frameTimeBase,
                                progress: progress)
        let placement = self.placement
        let searchRepeats = job.settings.searchRepeats
        let starts = ChunkStartRepeats(model: model.model, settings: job.settings)
        // Chunks encode on their own (empty context, no hint from outside), and the one thing a
        // chunk takes from the one before (repeats at its start, `ChunkStartRepeats`) is decided
        // in the write stage, in stream order: the output is the same for any number of workers.
        let pipeline = Pipeline.source("decode") { try source.nextFrame() }
            .map("preprocess") { frame in try preprocessor.process(frame) }
            .then("chunk", ChunkGatherer(framesPerBlock: framesPerBlock, chunkBlocks: chunkBlocks, planner: planner))
            .parallelMap("encode", capacity: 1, workers: encoders) { encoder, chunk in
                let blocks = try ChunkGatherer.blocks(of: chunk.frames, framesPerBlock: framesPerBlock,
                                                      height: height, width: width, config: encoder.model.config)
                if let plan = chunk.plan { return try encoder.encodeChunk(blocks, firstBlock: chunk.firstBlock, plan: plan) }
                guard searchRepeats else { return try encoder.encodeChunk(blocks, firstBlock: chunk.firstBlock) }
                // The chunk-start stage may encode it again after the previous chunk's last frame.
                var last: [Float] = []
                var encoded = try encoder.encodeChunk(blocks, firstBlock: chunk.firstBlock, after: nil) { _, recon in last = recon }
                encoded = try encoder.capped(encoded, blocks) { _, recon in last = recon }
                encoded.carry = RepeatCarry(blocks: blocks, lastReconstruction: last)
                return encoded
            }
            .sink("write", consume: { (item: EncodedChunk) in
                try tally.consume(try starts.process(item))
            }, finish: {
                try tally.finish(input: source.info.input)
            }, abort: {
                placement.discard()
            })
        try control.run(pipeline) { placement.discard() }
        try placement.commit()
        // --budget: the first pass's model work counts too.
        for (i, (passes, evaluations)) in firstPass.enumerated() where i < tally.stats.count {
            tally.stats[i].passes += passes
            tally.stats[i].evaluations += evaluations
        }
        let stats = tally.stats, tokens = tally.tokens
        let blocks = Double(max(1, stats.count))
        let maxTokens = config.maxToks
        let mean = Double(tokens) / blocks
        let meanPSNR: Double = stats.map(\.psnr).reduce(0, +) / blocks
        let share = Double(stats.filter(\.meetsThreshold).count) / blocks
        let passes = Double(stats.map(\.passes).reduce(0, +)) / blocks
        let bytes = writer.bytesWritten
        let bitsPerToken = tokens == 0 ? 0 : Double(bytes * 8) / Double(tokens)
        return EncodeSummary(
            input: job.input, output: job.output, model: model.name, threshold: Double(job.settings.threshold),
            search: header.encoding.search.rawValue, blocks: stats.count, frames: tally.frames,
            chunks: writer.chunkCount, tokens: tokens, maxTokensPerBlock: maxTokens, meanTokens: mean,
            savings: 1 - mean / Double(maxTokens), meanPSNR: meanPSNR, shareMeetingThreshold: share,
            passesPerBlock: passes, bytes: bytes, bitsPerToken: bitsPerToken, decodeErrors: source.decodeErrors,
            inputEndedEarly: source.endedEarly?.cutShort,
            seconds: Date().timeIntervalSince(started), perBlock: stats, framesPerBlock: framesPerBlock,
            rateControl: job.settings.rateSummary(stats: stats, chunkBlocks: chunkBlocks,
                                                  fallbackInterval: Double(framesPerBlock) / (job.inputOptions.frameRate ?? info.frameRate ?? 1)),
            repeatBlocks: stats.filter(\.isRepeat).count)
    }

    /// Stops the run (thread-safe, idempotent).
    public func cancel() { control.cancel() }

    /// Runs one pipeline of this run (a first pass) under its cancellation.
    func runPass(_ pipeline: Pipeline) throws { try control.run(pipeline) {} }
}

/// The version string written into headers.
public let etokVersion = "0.1.0"

/// The writer stage's running totals. Touched only by the sink stage's thread while the pipeline
/// runs, and read by `run` after it has finished.
final class EncodeTally: @unchecked Sendable {
    let writer: EtokWriter
    let maxTokens: Int
    let timeBase: Rational
    let progress: @Sendable (EncodeProgress) -> Void
    var stats: [BlockStats] = []
    var frames = 0
    var tokens = 0
    var origin: Double?

    init(writer: EtokWriter, maxTokens: Int, timeBase: Rational, progress: @escaping @Sendable (EncodeProgress) -> Void) {
        self.writer = writer
        self.maxTokens = maxTokens
        self.timeBase = timeBase
        self.progress = progress
    }

    func consume(_ item: EncodedChunk) throws {
        for block in item.results {
            frames += block.frames
            tokens += block.keptTokens
            let seconds = timeBase.seconds(block.pts)
            let start = origin ?? seconds
            origin = start
            stats.append(BlockStats(block: block.index, pts: block.pts, seconds: seconds, kept: block.keptTokens,
                                    mse: Double(block.mse), psnr: psnr(mse: Double(block.mse)),
                                    meetsThreshold: block.meetsThreshold, passes: block.passes,
                                    evaluations: block.evaluations, predictedMSE: block.predictedMSE.map(Double.init),
                                    isRepeat: block.isRepeat))
            progress(EncodeProgress(blocks: stats.count, frames: frames, tokens: tokens,
                                    maxTokensPerBlock: maxTokens, mediaSeconds: seconds - start))
        }
        try writer.append(item.chunk)
    }

    /// Writes the index: the stream is complete. A stream without a single frame is an error.
    func finish(input: String) throws {
        guard !stats.isEmpty else { throw MediaError.noFrames(file: input) }
        try writer.finish()
    }
}

/// A chunk's frames and the stream index of its first block: what an encode worker takes.
struct ChunkFrames: Sendable {
    var firstBlock: Int
    var frames: [VideoFrame]
    /// Under rate control, how its kept counts are set; nil: the threshold search.
    var plan: ChunkPlan? = nil
}

/// How the chunk stage plans each chunk's kept counts under rate control.
enum ChunkPlanner: Sendable {
    /// `--tokens-per-second`: each chunk's cap from the token bucket, by the chunk's media time
    /// (from its first frame to the next chunk's first frame; the last one adds a mean frame
    /// interval, `fallbackInterval` for a single frame), within blocks × `tokens` and `cap`.
    /// `repeats`: the chunk's blocks after its first may repeat (`rateRepeats`), so the least a
    /// chunk can keep is one block's smallest count, not every block's.
    case bucket(TokenRateBucket, tokens: ClosedRange<Int>, cap: Int?, repeats: Bool, fallbackInterval: Double)
    /// `--budget`: the counts of every block of the file, allocated after a first pass; a block the
    /// first pass did not see (an input that gives more frames the second time) keeps `beyond`.
    /// `closedLoop`: every block's curve and the floor MSE, for a closed-loop commit
    /// (`ChunkPlan.closedLoop`) of each chunk the first pass saw whole and planned no repeat in.
    case counts([Int], beyond: Int, closedLoop: (curves: [[RatePoint]], floorMSE: Double, least: Int)?)
}

/// The chunk stage of an encode: gathers frames into chunks of `chunkBlocks` blocks (the last one
/// may be shorter) and numbers their blocks. Holds at most one chunk's frames, and under a rate
/// bucket one chunk more until the next frame's time ends it.
struct ChunkGatherer: PipelineTransform {
    let framesPerChunk: Int
    let framesPerBlock: Int
    private var frames: [VideoFrame] = []
    private var nextBlock = 0
    private var planner: ChunkPlanner?
    /// A full chunk waiting for the next frame's time (bucket only).
    private var held: ChunkFrames?
    /// First and last frame times seen, and frames seen (for the mean frame interval).
    private var firstSeconds: Double?
    private var lastSeconds = 0.0
    private var framesSeen = 0

    init(framesPerBlock: Int, chunkBlocks: Int, planner: ChunkPlanner? = nil) {
        self.framesPerBlock = framesPerBlock
        framesPerChunk = framesPerBlock * chunkBlocks
        self.planner = planner
    }

    mutating func process(_ frame: VideoFrame, emit: (ChunkFrames) throws -> Void) throws {
        if let chunk = held {
            held = nil
            try emit(planned(chunk, until: frame.seconds))
        }
        firstSeconds = firstSeconds ?? frame.seconds
        lastSeconds = frame.seconds
        framesSeen += 1
        frames.append(frame)
        if frames.count == framesPerChunk { try emitChunk(emit) }
    }

    mutating func finish(emit: (ChunkFrames) throws -> Void) throws {
        if !frames.isEmpty { try emitChunk(emit) }
        if let chunk = held {
            held = nil
            try emit(planned(chunk, until: nil))
        }
    }

    private mutating func emitChunk(_ emit: (ChunkFrames) throws -> Void) throws {
        let chunk = ChunkFrames(firstBlock: nextBlock, frames: frames)
        nextBlock += (frames.count + framesPerBlock - 1) / framesPerBlock
        frames.removeAll(keepingCapacity: true)
        if case .bucket = planner { held = chunk } else { try emit(planned(chunk, until: nil)) }
    }

    /// The chunk with its plan: a cap from the bucket for the media time up to `end` (nil: the
    /// stream's end), or its share of the budget's counts.
    private mutating func planned(_ chunk: ChunkFrames, until end: Double?) -> ChunkFrames {
        var chunk = chunk
        let blocks = (chunk.frames.count + framesPerBlock - 1) / framesPerBlock
        switch planner {
        case .bucket(var bucket, let tokens, let cap, let repeats, let fallback)?:
            let start = chunk.frames[0].seconds
            let interval = coveredSeconds(first: firstSeconds ?? start, last: lastSeconds, frames: framesSeen,
                                        fallbackInterval: fallback) / Double(max(framesSeen, 1))
            let seconds = (end ?? (lastSeconds + interval)) - start
            let upper = min(blocks * tokens.upperBound, cap ?? Int.max)
            let least = (repeats ? 1 : blocks) * tokens.lowerBound
            chunk.plan = .cap(bucket.cap(seconds: seconds, range: least...upper))
            planner = .bucket(bucket, tokens: tokens, cap: cap, repeats: repeats, fallbackInterval: fallback)
        case .counts(let counts, let beyond, let loop)?:
            let range = chunk.firstBlock..<(chunk.firstBlock + blocks)
            let planned = range.map { $0 < counts.count ? counts[$0] : beyond }
            // A chunk whose plan holds a repeat (count 0) is committed as planned.
            if let loop, range.upperBound <= min(counts.count, loop.curves.count), !planned.contains(0) {
                chunk.plan = .closedLoop(counts: planned, curves: Array(loop.curves[range]), floorMSE: loop.floorMSE,
                                         leastPlanned: loop.least)
            } else {
                chunk.plan = .counts(planned)
            }
        case nil:
            break
        }
        return chunk
    }

    /// Groups a chunk's frames into blocks and patchifies them; a short last block repeats its
    /// last frame.
    static func blocks(of frames: [VideoFrame], framesPerBlock: Int, height: Int, width: Int,
                       config: ModelConfig) throws -> [ConditionalEncoder.BlockInput] {
        try stride(from: 0, to: frames.count, by: framesPerBlock).map { start in
            let count = min(framesPerBlock, frames.count - start)
            var bytes: [UInt8] = []
            bytes.reserveCapacity(framesPerBlock * height * width * 3)
            for i in 0..<framesPerBlock { bytes += frames[start + min(i, count - 1)].rgb }
            return (bytes, frames[start].pts, count)
        }.map { (bytes: [UInt8], pts: Int64, count: Int) in
            (try Patchify.patches(frames: bytes, count: framesPerBlock, height: height, width: width, config: config), pts, count)
        }
    }
}

extension EncodeSummary {
    /// The strictest PSNR (dB) that at least `share` of this encode's blocks reach with the
    /// largest budget the search could use, or nil when `share` of them already met the threshold.
    ///
    /// Judged from this encode alone, with no extra model passes: a block that missed the
    /// threshold kept the largest budget, so its PSNR is the best the model does on it; a block
    /// that met it reaches at least the threshold. So with m = ⌊(1 − share) · blocks⌋ misses
    /// allowed, the answer is the (m + 1)-th lowest PSNR among the blocks that missed.
    public func reachablePSNR(share: Double = 0.95) -> Double? {
        let missed = perBlock.filter { !$0.meetsThreshold }.map(\.psnr).sorted()
        let allowed = Int((1 - share) * Double(perBlock.count) + 1e-9)
        guard missed.count > allowed else { return nil }
        return missed[allowed]
    }
}
