import Dispatch
import EtokFormat
import EtokIO
import EtokMedia
import Foundation
import Synchronization

/// What `etok encode IN... -o DIR/` (or `--manifest`) does: many inputs, one model, one `.etok` per
/// input under `folder` at the item's `output` path.
public struct BatchEncodeJob: Sendable {
    public var items: [BatchItem]
    /// The output folder (created, with its parents, when missing).
    public var folder: String
    public var inputOptions: InputOptions
    public var fit: FitMode
    public var settings: EncoderSettings
    /// Redo every item, even one whose output is complete and healthy (`-y`).
    public var overwrite: Bool
    /// Worker threads in all (default: one per core). See `plan`.
    public var workers: Int
    /// The shard this run is, which names its failures and summary files (nil: the whole list).
    public var shard: ShardSpec?
    /// Files encoded at once (nil: as many as `workers`, at most one per item). See `plan`.
    public var filesAtOnce: Int?

    public init(items: [BatchItem], folder: String, inputOptions: InputOptions = InputOptions(), fit: FitMode = .crop,
                settings: EncoderSettings = EncoderSettings(), overwrite: Bool = false,
                workers: Int = ThreadPolicy.defaultWorkers, shard: ShardSpec? = nil, filesAtOnce: Int? = nil) {
        self.filesAtOnce = filesAtOnce
        self.items = items
        self.folder = folder
        self.inputOptions = inputOptions
        self.fit = fit
        self.settings = settings
        self.overwrite = overwrite
        self.workers = workers
        self.shard = shard
    }

    /// How the workers are spent: `files` encoded at once, each with `chunkWorkers` chunk workers
    /// (files × chunkWorkers ≤ workers, unless `filesAtOnce` asks for more files than workers; one
    /// OpenBLAS thread each, `ThreadPolicy`). Files first by default: a short clip is one chunk, so
    /// chunk workers alone would leave cores idle (BENCHMARKS.md, "Batch encode"); spare workers go
    /// to chunks when there are fewer files than workers.
    public var plan: (files: Int, chunkWorkers: Int) {
        let workers = max(1, self.workers)
        let files = max(1, min(filesAtOnce ?? workers, items.count))
        return (files, max(1, workers / files))
    }

    /// The failures file's path: `failures.jsonl`, or `failures.shard-I-of-N.jsonl` for a shard, so
    /// shards sharing a folder never write the same file.
    public var failuresPath: String { path(named: "failures", ext: "jsonl") }
    /// The summary file's path (written at the end of a run that was not interrupted).
    public var summaryPath: String { path(named: "summary", ext: "json") }

    private func path(named name: String, ext: String) -> String {
        let base = folder.hasSuffix("/") ? folder : folder + "/"
        return base + name + (shard.map { ".shard-\($0.index)-of-\($0.count)" } ?? "") + "." + ext
    }
}

/// What happened to one item of a batch.
public enum BatchOutcome: Sendable {
    /// Encoded now.
    case encoded(EncodeSummary, mediaSeconds: Double)
    /// Its output was already complete and healthy (index and every CRC checked).
    case skipped
    /// It failed: the error as thrown (the run goes on).
    case failed(any Error)
}

/// Progress of a batch, reported after every block of every file and after every file.
public struct BatchProgress: Sendable {
    public var filesDone: Int
    public var filesTotal: Int
    /// Frames and media seconds encoded in this run so far (files in progress included).
    public var frames: Int
    public var mediaSeconds: Double
    public var elapsed: Double
}

/// A batch's totals (what `summary.json` holds).
public struct BatchSummary: Sendable, Codable {
    public var items: Int
    public var encoded: Int
    public var skipped: Int
    public var failed: Int
    public var frames: Int
    public var blocks: Int
    public var tokens: Int
    /// Repeat blocks written (0 tokens each, docs/etok-format.md §5), of `blocks`.
    public var repeatBlocks: Int
    public var mediaSeconds: Double
    public var seconds: Double
    public var shard: String?
    /// Mean kept tokens per frame over the files encoded in this run.
    public var meanTokensPerFrame: Double { frames == 0 ? 0 : Double(tokens) / Double(frames) }
    /// Share of the blocks encoded in this run that are repeat blocks.
    public var repeatShare: Double { blocks == 0 ? 0 : Double(repeatBlocks) / Double(blocks) }

    enum CodingKeys: String, CodingKey {
        case items, encoded, skipped, failed, frames, blocks, tokens, seconds, shard
        case repeatBlocks = "repeat_blocks", mediaSeconds = "media_seconds"
    }
}

/// Runs a batch: every item is either skipped (its output is complete and healthy), encoded, or
/// recorded as failed, and one bad input never stops the others.
///
/// Outputs: each goes through `EncodeRun` (a temporary name, renamed into place when whole), so
/// after a crash or `kill -9` the final names hold only whole files; a rerun checks each existing
/// output through its index and every chunk's CRC (`isComplete`), skips the healthy ones and
/// redoes the rest. Temporary names (`.NAME.part-PID-N`) are never taken for outputs; a killed
/// run's leftovers of them stay until removed by hand (a shard on another machine may own them).
///
/// Threads: `plan.files` worker threads each take the next item until none is left (no order
/// between items, so a long clip never holds up the short ones), each running one `EncodeRun` with
/// `plan.chunkWorkers` chunk workers. Memory: one run per worker, each bounded by its pipeline,
/// plus the model once: it does not grow with the number of items.
///
/// `run` blocks until every item is done or `cancel()` was called (any thread: the runs in
/// progress stop and remove their partial outputs; items not started are left as they were).
public final class BatchEncode: @unchecked Sendable {
    public let job: BatchEncodeJob
    public let model: LoadedModel
    private let state = Mutex<State>(State())

    private struct State {
        var cancelled = false
        var active: [Int: EncodeRun] = [:]
        var next = 0
        var filesDone = 0
        var finishedFrames = 0
        var finishedSeconds = 0.0
        var liveFrames: [Int: (frames: Int, seconds: Double)] = [:]
    }

    public init(job: BatchEncodeJob, model: LoadedModel) {
        self.job = job
        self.model = model
    }

    /// True when `path` holds a complete, healthy `.etok` stream: a valid index, and every record's
    /// CRC and every chunk's token data checked against it (`EtokReader.verify`). A missing,
    /// truncated or damaged file is not. Cost: reads and decodes the whole file (no model).
    public static func isComplete(path: String) -> Bool {
        guard let reader = try? EtokReader(path: path), let health = try? reader.verify() else { return false }
        return health.isComplete
    }

    /// Runs every item; returns each item's outcome, in the items' order.
    /// - Parameters:
    ///   - progress: called from worker threads (serialise inside).
    ///   - finished: called from the worker thread as each item ends, with the item and its outcome.
    public func run(progress: @escaping @Sendable (BatchProgress) -> Void = { _ in },
                    finished: @escaping @Sendable (BatchItem, BatchOutcome) -> Void = { _, _ in }) -> [BatchOutcome] {
        let started = Date()
        let items = job.items
        let outcomes = Mutex<[BatchOutcome?]>(Array(repeating: nil, count: items.count))
        let plan = job.plan
        let report: @Sendable () -> Void = { [self] in
            let p = state.withLock { s in
                BatchProgress(filesDone: s.filesDone, filesTotal: items.count,
                              frames: s.finishedFrames + s.liveFrames.values.reduce(0) { $0 + $1.frames },
                              mediaSeconds: s.finishedSeconds + s.liveFrames.values.reduce(0) { $0 + $1.seconds },
                              elapsed: Date().timeIntervalSince(started))
            }
            progress(p)
        }
        DispatchQueue.concurrentPerform(iterations: plan.files) { _ in
            while let i = state.withLock({ s -> Int? in
                guard !s.cancelled, s.next < items.count else { return nil }
                defer { s.next += 1 }
                return s.next
            }) {
                let outcome = encode(i, chunkWorkers: plan.chunkWorkers, report: report)
                state.withLock { s in
                    s.filesDone += 1
                    s.liveFrames[i] = nil
                    if case .encoded(let summary, let seconds) = outcome {
                        s.finishedFrames += summary.frames
                        s.finishedSeconds += seconds
                    }
                }
                outcomes.withLock { $0[i] = outcome }
                finished(items[i], outcome)
                report()
            }
        }
        return outcomes.withLock { list in list.map { $0 ?? .failed(BatchItemNotStarted()) } }
    }

    /// Stops the batch: runs in progress are cancelled, no item starts (thread-safe, idempotent).
    public func cancel() {
        let runs = state.withLock { s -> [EncodeRun] in
            s.cancelled = true
            return Array(s.active.values)
        }
        for run in runs { run.cancel() }
    }

    /// True once `cancel()` was called.
    public var isCancelled: Bool { state.withLock { $0.cancelled } }

    /// One item: skip, encode, or fail.
    private func encode(_ i: Int, chunkWorkers: Int, report: @escaping @Sendable () -> Void) -> BatchOutcome {
        let item = job.items[i]
        let base = job.folder.hasSuffix("/") ? job.folder : job.folder + "/"
        let output = base + item.output
        let exists = FileManager.default.fileExists(atPath: output)
        if exists && !job.overwrite && Self.isComplete(path: output) { return .skipped }
        do {
            let folder = (output as NSString).deletingLastPathComponent
            if !folder.isEmpty { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }
            let run = try EncodeRun(job: EncodeJob(input: item.input, inputOptions: job.inputOptions, fit: job.fit,
                                                   output: output, overwrite: exists, settings: job.settings,
                                                   workers: chunkWorkers),
                                    model: model)
            let admitted = state.withLock { s -> Bool in
                if s.cancelled { return false }
                s.active[i] = run
                return true
            }
            guard admitted else { return .failed(BatchItemNotStarted()) }
            defer { _ = state.withLock { $0.active.removeValue(forKey: i) } }
            let summary = try run.run { [self] p in
                state.withLock { $0.liveFrames[i] = (p.frames, p.mediaSeconds) }
                report()
            }
            let seconds = run.info.duration
                ?? summary.perBlock.last.map { $0.seconds - summary.perBlock[0].seconds } ?? 0
            return .encoded(summary, mediaSeconds: seconds)
        } catch {
            return .failed(error)
        }
    }

    /// The totals of `outcomes` (from `run`) and the run's wall time.
    public func summary(_ outcomes: [BatchOutcome], seconds: Double) -> BatchSummary {
        var s = BatchSummary(items: outcomes.count, encoded: 0, skipped: 0, failed: 0, frames: 0, blocks: 0, tokens: 0,
                             repeatBlocks: 0, mediaSeconds: 0, seconds: seconds, shard: job.shard?.description)
        for outcome in outcomes {
            switch outcome {
            case .encoded(let e, let media):
                s.encoded += 1
                s.frames += e.frames
                s.blocks += e.blocks
                s.tokens += e.tokens
                s.repeatBlocks += e.repeatBlocks
                s.mediaSeconds += media
            case .skipped: s.skipped += 1
            case .failed: s.failed += 1
            }
        }
        return s
    }

    /// Writes the failures file (JSON lines: `input`, `key`, `output`, `error`, `status`) through
    /// `describe`, which turns an error into its message and exit status; with no failure, removes
    /// an older failures file of this run's name (a rerun that fixed everything leaves none).
    public func writeFailures(_ outcomes: [BatchOutcome],
                              describe: (any Error) -> (message: String, status: Int32)) throws {
        var lines: [UInt8] = []
        for (item, outcome) in zip(job.items, outcomes) {
            guard case .failed(let error) = outcome else { continue }
            let (message, status) = describe(error)
            let object: [String: Any] = ["input": item.input, "key": item.key, "output": item.output,
                                         "error": message, "status": Int(status)]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
            lines += Array(data) + [0x0A]
        }
        if lines.isEmpty {
            unlink(job.failuresPath)
            return
        }
        try OutputPlacement(path: job.failuresPath, overwrite: true).writeWhole(lines)
    }

    /// Writes `summary.json` (or the shard's) over any older one.
    public func writeSummary(_ summary: BatchSummary) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try OutputPlacement(path: job.summaryPath, overwrite: true)
            .writeWhole(Array(try encoder.encode(summary)) + [0x0A])
    }
}

/// An item that did not start because the batch was cancelled.
public struct BatchItemNotStarted: Error, CustomStringConvertible, Sendable {
    public var description: String { "not started: the run was interrupted" }
}
