import EtokFormat
import EtokMedia
import EtokModel
import EtokPipeline
import EtokTensor
import Foundation

/// Which frames of a stream to decode.
public enum FrameSelection: Sendable, Equatable {
    case all
    /// Frame indices `lower ..< upper` (either end open).
    case frames(lower: Int?, upper: Int?)
    /// Presentation times `lower ..< upper` in seconds (either end open).
    case time(lower: Double?, upper: Double?)

    /// Parses `A:B` (either side may be empty) for `--frames` or `--time`.
    public static func parse(_ text: String, time: Bool) -> FrameSelection? {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2 else { return nil }
        if time {
            let lo = parts[0].isEmpty ? nil : Double(parts[0]), hi = parts[1].isEmpty ? nil : Double(parts[1])
            if (!parts[0].isEmpty && lo == nil) || (!parts[1].isEmpty && hi == nil) { return nil }
            if let lo, let hi, hi <= lo { return nil }
            return .time(lower: lo, upper: hi)
        }
        let lo = parts[0].isEmpty ? nil : Int(parts[0]), hi = parts[1].isEmpty ? nil : Int(parts[1])
        if (!parts[0].isEmpty && lo == nil) || (!parts[1].isEmpty && hi == nil) { return nil }
        if let lo, lo < 0 { return nil }
        if let lo, let hi, hi <= lo { return nil }
        return .frames(lower: lo, upper: hi)
    }

    func contains(frame: Int, seconds: Double) -> Bool {
        switch self {
        case .all: return true
        case .frames(let lo, let hi): return frame >= (lo ?? 0) && frame < (hi ?? Int.max)
        case .time(let lo, let hi): return seconds >= (lo ?? -.infinity) && seconds < (hi ?? .infinity)
        }
    }

    /// Whether the selection needs anything in `span` (a chunk, or a damaged range of the stream).
    func needs(_ span: StreamSpan, timeBase: EtokHeader.Rational, framesPerBlock: Int) -> Bool {
        switch self {
        case .all:
            return true
        case .frames(let lo, let hi):
            let first = span.firstBlock * framesPerBlock, end = span.endBlock.map { $0 * framesPerBlock } ?? Int.max
            return end > (lo ?? 0) && first < (hi ?? Int.max)
        case .time(let lo, let hi):
            let start = span.startPts.map(timeBase.seconds) ?? -.infinity, next = span.endPts.map(timeBase.seconds) ?? .infinity
            return next > (lo ?? -.infinity) && start < (hi ?? .infinity)
        }
    }

    var description: String {
        switch self {
        case .all: return "all frames"
        case .frames(let lo, let hi): return "--frames \(lo.map(String.init) ?? ""):\(hi.map(String.init) ?? "")"
        case .time(let lo, let hi): return "--time \(lo.map { "\($0)" } ?? ""):\(hi.map { "\($0)" } ?? "")"
        }
    }
}

/// What `etok decode` does: an `.etok` stream in, frames at the model resolution out.
public struct DecodeJob: Sendable {
    /// The `.etok` path, or `-` for stdin.
    public var input: String
    /// Output path (`-` for y4m on stdout, `%05d` patterns for PNG sequences).
    public var output: String
    public var outputOptions: OutputOptions
    public var selection: FrameSelection
    /// Decode even when the stream names other weights (shapes are still checked).
    public var allowModelMismatch: Bool
    /// The precision asked for: auto follows the stream's header (`encoding.precision`); fp32 or
    /// bf16 against a stream made in the other is refused (the reconstruction would differ from
    /// the one the encoder measured) unless `allowModelMismatch`.
    public var precision: PrecisionChoice = .auto
    /// Resize the decoded frames (bicubic); nil keeps the model resolution.
    public var scale: PixelSize?
    /// Chunks decoded at once, one worker thread each (the output is the same for any count).
    /// Default: one per core (`ThreadPolicy`).
    public var workers: Int
    /// Decode what is readable when the stream is damaged (`DecodeSummary.skipped` lists what was
    /// not); by default damage in the chunks the selection needs is an error and nothing is written.
    public var skipDamaged: Bool

    public init(input: String, output: String, outputOptions: OutputOptions = OutputOptions(),
                selection: FrameSelection = .all, allowModelMismatch: Bool = false, scale: PixelSize? = nil,
                workers: Int = ThreadPolicy.defaultWorkers, skipDamaged: Bool = false) {
        self.workers = workers
        self.skipDamaged = skipDamaged
        self.input = input
        self.output = output
        self.outputOptions = outputOptions
        self.selection = selection
        self.allowModelMismatch = allowModelMismatch
        self.scale = scale
    }
}

/// What a finished decode did.
public struct DecodeSummary: Sendable {
    public var framesWritten: Int
    public var blocksDecoded: Int
    /// The stream's health as far as the run read it (truncation, damaged chunks).
    public var health: EtokHealth
    /// The damaged ranges skipped (`DecodeJob.skipDamaged`), in stream order; empty otherwise.
    public var skipped: [DamagedRange]
}

/// One decode: chunks (seeking with the index when the file has one) → decoder → video writer,
/// three pipeline stages. The output is removed on error or cancellation. Runs once.
///
/// Damage (docs/etok-format.md §7): from a file, opening walks the whole file and checks every
/// chunk the selection needs before the output is created, so a damaged file fails with nothing
/// written (not even to stdout), unless `skipDamaged`. From a pipe, damage shows only as it
/// arrives: the run stops there and removes its output file (what went to stdout is gone). Either
/// way the damage found is what `etok info` reports for the same bytes (`ChunkSource`).
public final class DecodeRun: @unchecked Sendable {
    public let job: DecodeJob
    public let header: EtokHeader
    /// What the model decodes in (the stream's precision under --precision auto).
    public var precision: Precision { model.model.precision }
    private var model: LoadedModel
    private let source: ChunkSource
    private let writer: any VideoWriter
    private let control = CancellableRun()
    /// The spans the run reads: the selection's, and before it the chunks its first chunk's
    /// leading repeat blocks need (`leadIn`).
    private let wants: @Sendable (StreamSpan) -> Bool

    /// Opens the stream, checks it against the model, and opens the output.
    public init(job: DecodeJob, model: LoadedModel) throws {
        self.job = job
        self.model = model
        source = try ChunkSource.open(job.input)
        header = source.header
        try ModelCatalog.check(header, file: job.input, against: model, allowMismatch: job.allowModelMismatch)
        guard let made = PrecisionChoice.recorded(header.encoding.precision) else {
            throw TokenizerError.incompatibleStream(file: job.input, message: "encoded in precision "
                + "\"\(header.encoding.precision ?? "")\", which this etok does not know (fp32, bf16)")
        }
        if made != model.model.precision {
            if job.precision == .auto {
                self.model = try model.reloaded(precision: made)
            } else if !job.allowModelMismatch {
                throw TokenizerError.incompatibleStream(
                    file: job.input, message: "encoded in \(made.rawValue) but --precision \(job.precision.rawValue) was given; "
                        + "decode with --precision \(made.rawValue) or auto to reproduce the encoder's reconstruction")
            }
        }
        _ = try ChunkDecoder(model: self.model.model, header: header, fileName: job.input)
        wants = DecodeRun.leadIn(job.selection, source: source)
        if source.isSeekable, !job.skipDamaged {
            // Read and check every chunk the selection needs (cheap next to the model), so that
            // damage fails the run before any output exists.
            let check = source.walk(wants: wants)
            while try check.next() != nil {}
            if let first = check.damage.first {
                throw FormatError.damaged(first, others: check.damage.count - 1, hint: DecodeRun.skipHint)
            }
        }
        var output = job.outputOptions
        if let fps = header.encoding.fps {
            output.frameRate = Rational(approximating: fps)
        } else if let fps = header.source.fps, fps.num > 0, fps.den > 0 {
            output.frameRate = Rational(Int32(clamping: fps.num), Int32(clamping: fps.den))
        }
        writer = try openVideoWriter(path: job.output, options: output)
    }

    /// Runs to the end, reporting frames written and the media time of the last one (seconds from
    /// the first). Throws the first stage's error, or `PipelineError.cancelled`.
    public func run(progress: @escaping @Sendable (_ frames: Int, _ mediaSeconds: Double) -> Void = { _, _ in }) throws -> DecodeSummary {
        ThreadPolicy.applyToBLAS()
        let passThreads = ThreadPolicy.passThreads(running: ThreadPolicy.running(workers: max(1, job.workers), chunks: source.entries?.count))
        let decoders = try (0..<max(1, job.workers)).map { _ in
            let decoder = try ChunkDecoder(model: model.model, header: self.header, fileName: job.input)
            decoder.passThreads = passThreads
            return decoder
        }
        let walk = source.walk(wants: wants)
        let chunks = ChunkFeed(walk: walk, skipDamaged: job.skipDamaged)
        let fileName = job.input == "-" ? "stdin" : job.input
        let selection = job.selection, writer = self.writer, header = self.header
        let (height, width) = model.model.config.imageSize
        let timeBase = Rational(Int32(clamping: header.source.timeBase.num), Int32(clamping: header.source.timeBase.den))
        let framesPerBlock = header.model.framesPerBlock
        let frameTicks = DecodeRun.frameTicks(header)
        // --time reads the stream's own clock, which need not start at 0 (MPEG-TS, --fps): say where.
        var startHint = ""
        if case .time = selection, let first = source.entries?.first?.firstPts {
            let start = timeBase.seconds(first)
            startHint = String(format: " (times are on the stream's clock, which starts at %.3f s)", start)
        }
        let counter = DecodeCounter()
        var resolver = ChunkStartResolver(config: model.model.config, file: fileName)
        let skipDamaged = job.skipDamaged
        let scaler = try job.scale.map { try RGBScaler(width: $0.width, height: $0.height) }
        /// Frame `i` of a block: its index in the stream, pts and time. Frames after the first of a
        /// block have no pts of their own: they are spaced one frame period apart (from the
        /// stream's frame rate; one tick when unknown).
        let frameAt = { (block: DecodedBlock, i: Int) throws -> (frame: Int, pts: Int64, seconds: Double) in
            let (pts, overflow) = block.record.pts.addingReportingOverflow(Int64(i) * frameTicks)
            if overflow { throw FormatError.badHeader(file: fileName, key: "source.time_base", message: "frame times overflow") }
            return (block.index * framesPerBlock + i, pts, timeBase.seconds(pts))
        }
        // A block's frames, selected, timed and scaled (the frames stage).
        let emitFrames = { (block: DecodedBlock, emit: (VideoFrame) throws -> Void) throws in
            counter.blocks += 1
            for (i, rgb) in block.frames.enumerated() {
                let (frame, pts, seconds) = try frameAt(block, i)
                guard selection.contains(frame: frame, seconds: seconds) else { continue }
                let decoded = VideoFrame(index: frame, pts: pts, timeBase: timeBase, width: width, height: height, rgb: rgb)
                try emit(try scaler?.scale(decoded) ?? decoded)
            }
        }
        /// Whether the selection shows a frame of `block` (of its record's frames).
        let selects = { (block: DecodedBlock) throws -> Bool in
            try (0..<block.record.frames).contains { i in
                let (frame, _, seconds) = try frameAt(block, i)
                return selection.contains(frame: frame, seconds: seconds)
            }
        }
        // Each chunk decodes on its own, so the frames do not depend on the number of workers.
        let pipeline = Pipeline.source("read") { try chunks.next() }
            .parallelMap("decode", capacity: 1, workers: decoders) { decoder, chunk in try decoder.decode(chunk) }
            .flatMap("frames", capacity: 1) { (blocks: [DecodedBlock], emit: (VideoFrame) throws -> Void) in
                // Repeats at a chunk's start show the previous chunk's last frame (§5).
                let (resolved, lost) = try resolver.resolve(blocks)
                // Lost leading repeats matter only where the selection shows them: the chunk a
                // lead-in starts at may begin with repeats of a chunk it did not read.
                if let lost, try blocks.contains(where: { b in
                    try b.index >= lost.firstBlock && b.index < (lost.endBlock ?? .max) && selects(b)
                }) {
                    if !skipDamaged { throw FormatError.damaged(lost, others: 0, hint: DecodeRun.skipHint) }
                    counter.lost.append(lost)
                }
                for block in resolved { try emitFrames(block, emit) }
            }
            .sink("write", consume: { frame in
                try writer.write(frame)
                let start = counter.firstSeconds ?? frame.seconds
                counter.firstSeconds = start
                progress(writer.framesWritten, frame.seconds - start)
            }, finish: {
                guard writer.framesWritten > 0 else {
                    // Nothing readable is an error even when skipping damage.
                    let skipped = DecodeRun.merged(chunks.skipped, counter.lost)
                    if let first = skipped.first {
                        throw FormatError.damaged(first, others: skipped.count - 1, hint: "no readable frames")
                    }
                    throw TokenizerError.emptyRange(file: fileName, range: selection.description + startHint)
                }
                try writer.finish()
            }, abort: {
                writer.cancel()
            })
        try control.run(pipeline) { writer.cancel() }
        return DecodeSummary(framesWritten: writer.framesWritten, blocksDecoded: counter.blocks,
                              health: walk.health, skipped: DecodeRun.merged(chunks.skipped, counter.lost))
    }

    /// What the error for damage suggests.
    public static let skipHint = "--skip-damaged keeps what is readable"

    /// One frame period in `source.time_base` ticks: from `encoding.fps` (the resampled rate), else
    /// `source.fps`; 1 when neither is known or the period is under a tick.
    static func frameTicks(_ header: EtokHeader) -> Int64 {
        let tb = header.source.timeBase
        let fps = header.encoding.fps ?? header.source.fps.flatMap { $0.den > 0 ? Double($0.num) / Double($0.den) : nil }
        guard let fps, fps > 0, tb.num > 0, tb.den > 0 else { return 1 }
        let ticks = (Double(tb.den) / (fps * Double(tb.num))).rounded()
        // A period beyond 2^40 ticks comes only from a header with absurd values: one tick then.
        return ticks.isFinite && ticks >= 1 && ticks <= 0x1p40 ? Int64(ticks) : 1
    }

    /// Whether `selection` needs a span of the stream (chunks to read, damage to report).
    static func wants(_ selection: FrameSelection, _ header: EtokHeader) -> @Sendable (StreamSpan) -> Bool {
        let timeBase = header.source.timeBase, framesPerBlock = header.model.framesPerBlock
        return { selection.needs($0, timeBase: timeBase, framesPerBlock: framesPerBlock) }
    }

    /// What a run reads for `selection` (`wants`), plus the chunks before it that its first
    /// chunk's leading repeat blocks need (docs/etok-format.md §5): back to the nearest earlier
    /// chunk holding a coded block, whose decode gives the frame they show. The frames before
    /// the selection are decoded and dropped. A file's chunk list finds that chunk (reading the
    /// block tables of the chunks in between; a damaged one stops the search and is read, so its
    /// damage is reported); a pipe cannot look back, so it decodes every chunk before the
    /// selection. Nothing more where the stream has no repeat blocks or the selection is all.
    static func leadIn(_ selection: FrameSelection, source: ChunkSource) -> @Sendable (StreamSpan) -> Bool {
        let header = source.header
        let needs = wants(selection, header)
        guard header.encoding.declaresRepeats, selection != .all else { return needs }
        guard let reader = source.reader else {
            let upTo: FrameSelection
            switch selection {
            case .all: upTo = .all
            case .frames(_, let hi): upTo = .frames(lower: nil, upper: hi)
            case .time(_, let hi): upTo = .time(lower: nil, upper: hi)
            }
            return wants(upTo, header)
        }
        let entries = reader.chunks
        func span(_ i: Int) -> StreamSpan {
            let e = entries[i]
            return StreamSpan(firstBlock: e.firstBlock, endBlock: e.firstBlock + e.blockCount, startPts: e.firstPts,
                              endPts: i + 1 < entries.count ? entries[i + 1].firstPts : nil)
        }
        guard let first = entries.indices.first(where: { needs(span($0)) }) else { return needs }
        var from = first
        func startsWithRepeat(_ chunk: Chunk) -> Bool { chunk.blocks.first?.kept == 0 }
        func hasCoded(_ chunk: Chunk) -> Bool { chunk.blocks.contains { $0.kept > 0 } }
        if let chunk = try? reader.chunk(at: first), startsWithRepeat(chunk) {
            while from > 0 {
                from -= 1
                guard let earlier = try? reader.chunk(at: from), !hasCoded(earlier) else { break }
            }
        }
        let lower = entries[from].firstBlock, upper = entries[first].firstBlock
        return { needs($0) || ($0.firstBlock >= lower && $0.firstBlock < upper) }
    }

    /// The damaged ranges a run skipped: the walk's and the lost leading repeats', in stream order.
    static func merged(_ walk: [DamagedRange], _ lost: [DamagedRange]) -> [DamagedRange] {
        lost.isEmpty ? walk : (walk + lost).sorted { $0.firstBlock < $1.firstBlock }
    }

    /// Stops the run (thread-safe, idempotent).
    public func cancel() { control.cancel() }
}

/// Counts kept by the frames and write stages (each field touched by one stage), read after the run.
final class DecodeCounter: @unchecked Sendable {
    /// Blocks decoded (frames stage).
    var blocks = 0
    /// Leading repeat blocks lost for want of the previous chunk's frame (frames stage).
    var lost: [DamagedRange] = []
    /// Media time of the first frame written (write stage).
    var firstSeconds: Double?
}

/// Yields the chunks a selection needs (the walk seeks with the index when the file has one) and
/// either stops at damage (a `FormatError.damaged` naming the range) or skips it and keeps the
/// range for the summary. Used by the read stage only; `skipped` is read after the run.
final class ChunkFeed: @unchecked Sendable {
    private let walk: ChunkWalk
    private let skipDamaged: Bool

    init(walk: ChunkWalk, skipDamaged: Bool) {
        self.walk = walk
        self.skipDamaged = skipDamaged
    }

    func next() throws -> Chunk? {
        while let step = try walk.next() {
            switch step {
            case .chunk(let chunk):
                return chunk
            case .damaged(let range):
                if !skipDamaged { throw FormatError.damaged(range, others: 0, hint: DecodeRun.skipHint) }
            }
        }
        return nil
    }

    /// The damaged ranges met so far (skipped when `skipDamaged`).
    var skipped: [DamagedRange] { walk.damage }
}
