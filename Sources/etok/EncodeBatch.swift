import ArgumentParser
import EtokIO
import EtokMedia
import EtokPipeline
import EtokTokenizer
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `etok encode`'s batch options: a manifest instead of paths, and a shard of it.
struct BatchOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Read the inputs from FILE (- for stdin): one path per line, or JSON lines {\"input\": PATH, \"key\": K, \"output\": REL} (key and output optional; output is relative to -o DIR). Blank lines and # comments are skipped.", valueName: "FILE"))
    var manifest: String?

    @Option(help: ArgumentHelp("Encode only share I of N (0 ≤ I < N): the items whose key (the manifest's key, else the input path as given) hashes (FNV-1a 64) to I mod N. Adding items never moves others. For Slurm job arrays and Kubernetes Indexed Jobs (docs/scale.md).", valueName: "I/N"),
            transform: { text in
                guard let shard = ShardSpec(parsing: text) else {
                    throw ValidationError("--shard takes I/N with 0 ≤ I < N (for example --shard 0/4), not '\(text)'.")
                }
                return shard
            })
    var shard: ShardSpec?

    @Option(help: ArgumentHelp("Files encoded at once, sharing --threads (default: one file per thread, one chunk worker each; fewer files get more chunk workers each).", valueName: "J"))
    var jobs: Int?
}

extension Encode {
    /// Several inputs, a manifest, or an output folder (`-o DIR/`) make a batch.
    var isBatch: Bool { batch.manifest != nil || inputs.count > 1 || output.hasSuffix("/") || batch.shard != nil }

    /// A single input: batch-only options are refused.
    func validateSingleInput() throws {
        if inputs.isEmpty { throw ValidationError("give an input file (or - for stdin).") }
        if batch.jobs != nil { throw ValidationError("--jobs is for a batch (several inputs or --manifest, and -o DIR/).") }
    }

    func validateBatch() throws {
        if batch.manifest != nil && !inputs.isEmpty {
            throw ValidationError("give input files or --manifest, not both.")
        }
        if batch.manifest == nil && inputs.isEmpty { throw ValidationError("give input files or --manifest LIST.") }
        if inputs.contains("-") { throw ValidationError("a batch reads files; stdin (-) is for a single input.") }
        if output == "-" { throw ValidationError("a batch writes a folder: give -o DIR/.") }
        var isDirectory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: output, isDirectory: &isDirectory)
        if exists && !isDirectory.boolValue {
            throw ValidationError("-o \(output) is a file; a batch writes into a folder (-o DIR/).")
        }
        if !exists && !output.hasSuffix("/") {
            throw ValidationError("a batch writes into a folder: end -o with / (-o \(output)/) to create it.")
        }
        if stats != nil { throw ValidationError("--stats is for a single input; a batch writes DIR/summary.json.") }
        if let jobs = batch.jobs, !(1...maxThreads).contains(jobs) {
            throw ValidationError("--jobs must be from 1 to \(maxThreads).")
        }
    }

    /// The batch: reads the list, loads the model once, encodes, prints one line per failed input
    /// and a summary, and exits 0 (all done or skipped), 2 (some inputs failed), or, when every
    /// input failed, the status of the first failure.
    func runBatch() throws {
        let interrupt = common.startCommand()
        defer { interrupt.stop() }
        fixAllocatorThreshold()
        try ExitCodes.reporting {
            let all = try batch.manifest.map { try Manifest.read(path: $0) } ?? Manifest.items(paths: inputs)
            let items = batch.shard?.select(all) ?? all
            try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
            let model = try modelChoice.load()
            let settings = EncoderSettings(threshold: mseThreshold(for: model), search: search ?? .fast, fixedTokens: fixed,
                                           minTokens: minTokens, maxTokens: maxTokens, chunkBlocks: chunk,
                                           maxTokensPerChunk: maxTokensPerChunk, rateTarget: rateTarget,
                                           rateObjective: rateObjective ?? .default, repeatBlocks: !noRepeat)
            var inputOptions = inputFormat.inputOptions(fps: fps)
            inputOptions.keepsTruncatedInput = skipDamaged
            let job = BatchEncodeJob(items: items, folder: output, inputOptions: inputOptions, fit: fit,
                                     settings: settings, overwrite: common.overwrite,
                                     workers: threads ?? ThreadPolicy.defaultWorkers, shard: batch.shard,
                                     filesAtOnce: batch.jobs)
            let run = BatchEncode(job: job, model: model)
            interrupt.attach { run.cancel() }
            let progress = ProgressReporter(quiet: common.quiet, duration: nil)
            let started = Date()
            let outcomes = run.run(progress: { p in
                progress.update(frames: p.frames, mediaSeconds: p.mediaSeconds, extra: batchProgressText(p))
            }, finished: { item, outcome in
                guard case .failed(let error) = outcome, !(error is BatchItemNotStarted), !run.isCancelled else { return }
                progress.abandon()
                printError("etok: " + failureLine(item, ExitCodes.report(error).message))
            })
            if run.isCancelled {
                progress.abandon()
                throw PipelineError.cancelled
            }
            let summary = run.summary(outcomes, seconds: Date().timeIntervalSince(started))
            try run.writeFailures(outcomes, describe: ExitCodes.report)
            try run.writeSummary(summary)
            progress.end(frames: summary.frames, mediaSeconds: summary.mediaSeconds,
                         summary: batchSummaryLine(summary, folder: output, failuresFile: job.failuresPath))
            if summary.failed > 0 {
                if summary.failed == summary.items, let first = outcomes.first(where: { if case .failed = $0 { true } else { false } }),
                   case .failed(let error) = first {
                    throw ExitCode(ExitCodes.report(error).status)
                }
                throw ExitCode(ExitCodes.someInputsFailed)
            }
        }
    }
}

/// One line for a failed input: the error's message, which names the input; prefixed with the
/// input when it does not (an output problem names the output).
func failureLine(_ item: BatchItem, _ message: String) -> String {
    message.contains(item.input) ? message : "\(item.input): \(message)"
}

/// The batch's part of the progress line: files done of all and the whole run's ETA (from the
/// mean time per file so far).
func batchProgressText(_ p: BatchProgress) -> String {
    var text = "files=\(p.filesDone)/\(p.filesTotal)"
    if p.filesDone > 0 && p.filesDone < p.filesTotal {
        text += " eta=" + ProgressReporter.clock(p.elapsed / Double(p.filesDone) * Double(p.filesTotal - p.filesDone))
    }
    return text
}

/// The batch's closing line: what was done, skipped, failed; hours of video, frames, tokens,
/// tokens per frame, repeat blocks (when any) and speed (over the files encoded in this run).
func batchSummaryLine(_ s: BatchSummary, folder: String, failuresFile: String) -> String {
    let items = s.items == 1 ? "1 input" : "\(s.items) inputs"
    var line = "etok: \(items)\(s.shard.map { " (shard \($0))" } ?? "") → \(folder): \(s.encoded) encoded, "
        + "\(s.skipped) skipped (already done), \(s.failed) failed"
    if s.failed > 0 { line += " (listed in \(failuresFile))" }
    let wall = max(1e-6, s.seconds)
    line += String(format: "; %.3f h of video, %d frames, %d tokens, %.1f tokens/frame", s.mediaSeconds / 3600, s.frames,
                   s.tokens, s.meanTokensPerFrame)
    if s.repeatBlocks > 0 {
        line += String(format: " (%d repeat blocks, %.0f%%, 0 tokens each)", s.repeatBlocks, 100 * s.repeatShare)
    }
    line += String(format: "; %.1f s, %.1f frames/s (%.2fx real time)", s.seconds, Double(s.frames) / wall, s.mediaSeconds / wall)
    return line
}

/// Fixes glibc's mmap threshold at 256 KiB for a batch: by default it rises (up to 32 MiB) each time
/// a large buffer is freed, after which the model contexts and frame buffers of the files encoded
/// side by side come from the heap, where their interleaved lifetimes fragment it, and the peak RSS
/// grew with the number of files (265 MiB for 24 clips, 316 MiB for 96; fixed: 154 and 156 MiB,
/// BENCHMARKS.md "Batch encode"). No effect elsewhere than glibc.
func fixAllocatorThreshold() {
    #if canImport(Glibc)
    // mallopt is in <malloc.h>, which the Glibc module does not export: found by name.
    typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
    let mmapThreshold: Int32 = -3   // M_MMAP_THRESHOLD
    guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") else { return }
    _ = unsafeBitCast(symbol, to: Mallopt.self)(mmapThreshold, 256 * 1024)
    #endif
}
