import ArgumentParser
import EtokIO
import EtokMedia
import EtokTokenizer
import Foundation
#if canImport(Glibc)
import Glibc
#endif

extension SearchStrategy: ExpressibleByArgument {}
extension PrecisionChoice: ExpressibleByArgument {}
extension RateObjective: ExpressibleByArgument {}

/// `--model FILE`: which weights to use (the bundled default model when absent).
struct ModelChoice: ParsableArguments {
    @Option(help: ArgumentHelp("ElasticTok weights (.safetensors). Default: the model bundled with etok.", valueName: "FILE"))
    var model: String?

    @Option(help: ArgumentHelp("""
        What the model computes in: fp32 (the reference), bf16 (AVX512-BF16 CPUs only: half the memory; \
        exit 69 elsewhere) or auto: bf16 for models of 100M parameters or more where the CPU has it, \
        else fp32; when decoding, auto follows the stream.
        """, valueName: "fp32|bf16|auto"))
    var precision: PrecisionChoice = .auto

    func load() throws -> LoadedModel { try ModelCatalog.load(path: model, precision: precision) }

    /// The files a command with this choice reads, which no output may name (even with -y).
    func reads(input: String) -> [(file: String, role: String)] {
        [(input, "input")] + (model.map { [($0, "model")] } ?? [])
    }

    /// Refuses `output` when it is the input or the model file.
    func refuseOverwriting(input: String, output: String) throws {
        for (file, role) in reads(input: input) { try refuseOutputIsInput(file, output, role: role) }
    }
}

/// `etok encode`: video in, `.etok` token stream out.
struct Encode: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Tokenize a video: each frame gets about the fewest tokens that reconstruct it within the threshold.",
        discussion: """
        For every block (one frame with the default model) the encoder searches for the smallest number \
        of tokens whose reconstruction error (MSE on the [-1, 1] pixel scale) is at most --threshold, \
        given the earlier blocks of its chunk as context. Static shots cost few tokens; cuts and \
        fast motion cost many. The context resets every --chunk blocks, so each chunk decodes on its own. \
        The default search (fast) stops within 4% of the smallest passing count, in about half the \
        model passes of --search binary, which finds it exactly when the error falls as tokens rise.

        Repeat blocks: before searching a block, the encoder checks whether showing the previous \
        frame again already meets the threshold; if so the block keeps 0 tokens and costs no model \
        pass, and decode shows that frame again, exactly as measured. The model never sees a \
        repeat: the chunk's next coded block is coded with the earlier coded blocks as context. A \
        frame that the next frame is close to (their difference alone under the threshold) may get \
        more tokens than the threshold needs, when that makes the next frames repeat it and saves \
        more tokens than it costs (a keyframe; one more batched pass on such frames only). A \
        chunk may start with repeats of the previous chunk's last frame (such a chunk is encoded \
        again, serially, once the previous one is done), so a static shot costs one full frame and \
        0 tokens after it; decoding from inside it (--time) starts at the chunk that holds that \
        frame. On by default with the threshold (--threshold, --psnr, any --search); --no-repeat \
        turns it off (every block then keeps at least min_toks tokens, and the file is format 1.1, \
        byte for byte as without repeat blocks). --fixed never writes repeats; rate control writes \
        them where they pay (below).

        Rate control trades the threshold guarantee for a token guarantee. Each block's error is \
        measured at 7 token counts (6 on a log grid and the chunk's even share), given the chunk's \
        earlier blocks at the even share; the chunk's tokens are handed out along those curves, and \
        the chunk is encoded at the chosen counts (2 passes and 8 counts evaluated per coded block, 1 \
        and 7 per repeat; the \
        default search takes about 3 passes of one count). --rate-objective says how: balanced (the \
        default) first gives every block the tokens its curve needs to reach a floor 0.5 dB above \
        the worst block of an even split (or the highest floor the tokens allow every block, if \
        lower), then the rest where they raise the mean PSNR most: by the curves, no frame ends \
        below the worst frame of an even split of the same tokens (--fixed), and the mean gains \
        what is left (the curves are a prediction: a block's committed PSNR may differ by about \
        half a dB, more after a block that kept far fewer tokens than the share). \
        Under --tokens-per-second and --budget (and in a chunk re-encoded within \
        --max-tokens-per-chunk) a block after a chunk's first may also be a repeat block: the measuring pass also gives each block's error shown as an earlier block's \
        reconstruction (no model pass), and the chunk's tokens go to a set of coded blocks with \
        repeats between them when that is predicted to raise the objective with no frame below \
        the floor (static or slow footage: the tokens a repeat saves make the frame it shows \
        sharper, and so the repeat too). A repeat costs no commit pass. --no-repeat turns it off. \
        With repeats a chunk can keep as little as its first block's min_toks, so low rates and \
        budgets are met too. A repeat layout is used only if its coded blocks can take the chunk's \
        whole share (at most max_toks each), so above about half of max_toks per frame fewer frames \
        repeat (and quality can dip as the rate rises); --chunk 1 leaves none. At equal tokens a \
        file with repeats is larger in bytes (its coded blocks hold more, harder-to-code tokens). \
        psnr maximises the mean PSNR alone (the worst frame may lose); mse minimises the summed \
        error (the hardest frames gain most, the mean least). \
        --max-tokens-per-chunk C: the threshold as usual, but no chunk keeps more than C tokens (a \
        chunk over it is encoded again by equal slope within C; one under it is as without the cap, \
        except that repeats at its start follow the previous chunk's last frame, which the cap may \
        have changed). \
        --tokens-per-second R: one pass, streaming; each chunk gets the tokens R allows up to its end \
        in media time minus what earlier chunks got (a token bucket), so the file's mean lands on R \
        unless the footage cannot hold it (every block at the largest or smallest budget). --budget N: \
        N tokens for the whole file; reads the file twice (measure, then encode), so not from stdin; \
        a total below the least the file can keep (frames × min_toks, or chunks × min_toks with \
        repeats) is refused, where a rate out of reach is met as closely as it can be, with a warning. \
        With balanced, the floor is whole-file: 0.3 dB above the worst block of --fixed at the mean \
        share, 0.7 dB more per position in its chunk (a block after starved ones does worse than its \
        curve), and no block under half the share; the rest goes by the mean PSNR. The second pass \
        then commits block by block with the real context: a block whose planned count misses the \
        floor is raised (its pass evaluates the planned count and up to 3 larger ones) as far as its chunk's \
        later blocks, re-planned over what is left, stay above it; each chunk keeps its total, so \
        the file's is exact (2 passes and about 10 counts per frame: the chosen count is committed \
        from the checking pass; a chunk with repeats is \
        committed as planned, without the closed loop). Neither \
        rate mode promises the threshold; the stats and etok info give the target and what was achieved.

        Examples:
          etok encode Samples/bikes.mp4 -o bikes.etok
          etok encode clip.mp4 -o clip.etok --psnr 28 --stats clip.json
          etok encode clip.mp4 -o fixed.etok --fixed 128        # fixed-length baseline
          etok encode clip.mp4 -o clip.etok --tokens-per-second 3000
          etok encode clip.mp4 -o clip.etok --budget 30000 --max-tokens-per-chunk 600
          ffmpeg -loglevel error -i clip.mov -f nut -c:v rawvideo - | etok encode - -o clip.etok
          etok encode clip.mp4 -o - | ssh host 'cat > clip.etok'
          etok encode clips/*.mp4 -o tokens/                   # a batch: tokens/clips/a.mp4.etok, ...
          etok encode --manifest list.txt -o tokens/ --shard 3/16   # one job of 16 (docs/scale.md)

        A batch (several inputs, or --manifest, with -o DIR/) loads the model once and encodes files \
        side by side. Each output keeps its input's path under DIR with .etok appended to the name \
        (clips/a.mp4 -> DIR/clips/a.mp4.etok; an absolute path starts with @root/, each .. becomes \
        @up/, a name starting with @ gets one more @), so no two inputs meet. A rerun skips outputs \
        that are complete (index and every CRC checked) and redoes the rest; -y redoes all. A bad \
        input is named on one line, listed in DIR/failures.jsonl, and the run goes on; it then \
        exits with 2 (some inputs failed). DIR/summary.json holds the totals.
        """)

    @Argument(help: "Video file, or - for stdin; several files (or --manifest) with -o DIR/ encode a batch.")
    var inputs: [String] = []

    /// The single input (the first; `-` when none was given, as with --manifest).
    var input: String { inputs.first ?? "-" }

    @Option(name: .shortAndLong, help: "Output .etok file, or - for stdout; for a batch, a folder (DIR/).")
    var output: String

    @Option(parsing: .unconditional, help: ArgumentHelp("Largest reconstruction MSE per block, on the [-1, 1] scale (0.003 ≈ 31.2 dB). Default: the threshold the model was calibrated for (etok model info), else 0.003.", valueName: "MSE"))
    var threshold: Float?

    @Option(parsing: .unconditional, help: ArgumentHelp("The threshold as a PSNR in dB instead of --threshold.", valueName: "DB"))
    var psnr: Double?

    @Option(help: "Budget search: fast (ours: predicts each next budget from the errors so far; the default), binary (bisection, one candidate per pass, like the official inference_binary but always the smallest passing count), linear (official log grid).")
    var search: SearchStrategy?

    @Option(parsing: .unconditional, help: ArgumentHelp("Keep exactly N tokens per block (the fixed-length baseline); no search.", valueName: "N"))
    var fixed: Int?

    @Option(name: .customLong("min-tokens"), parsing: .unconditional, help: "Smallest budget the search may choose (default: the model's min_toks).")
    var minTokens: Int?

    @Option(name: .customLong("max-tokens"), parsing: .unconditional, help: "Largest budget the search may choose (default: the model's max_toks).")
    var maxTokens: Int?

    @Option(parsing: .unconditional, help: ArgumentHelp("Blocks per chunk: the context resets between chunks (default: the model's context length).", valueName: "K"))
    var chunk: Int?

    @Option(name: .customLong("max-tokens-per-chunk"), parsing: .unconditional, help: ArgumentHelp("Never keep more than C tokens in a chunk (a hard cap; with the threshold, or on top of a rate mode).", valueName: "C"))
    var maxTokensPerChunk: Int?

    @Option(name: .customLong("tokens-per-second"), parsing: .unconditional, help: ArgumentHelp("Keep a mean of R tokens per second of media over the file, instead of the threshold (one pass; works on stdin).", valueName: "R"))
    var tokensPerSecond: Double?

    @Option(parsing: .unconditional, help: ArgumentHelp("Keep N tokens for the whole file, spread where they lower the error most, instead of the threshold (reads the file twice; not stdin, not in a batch).", valueName: "N"))
    var budget: Int?

    @Option(name: .customLong("rate-objective"), help: ArgumentHelp("How rate control places tokens: balanced (the default: every frame first up to a floor above the worst frame of an even split, 0.5 dB per chunk or, under --budget, 0.3 dB for the whole file and more for a chunk's later frames, then the mean PSNR), psnr (the mean PSNR alone) or mse (the summed error).", valueName: "balanced|psnr|mse"))
    var rateObjective: RateObjective?

    @Flag(name: .customLong("no-repeat"), help: "Never write repeat blocks (0 tokens: the previous frame shown again when it meets the threshold, or, under --tokens-per-second or --budget, where that is predicted to pay); every block keeps at least min_toks tokens.")
    var noRepeat = false

    @Option(help: ArgumentHelp("Write per-block kept tokens, MSE, PSNR and passes (a block is one frame with the default model), and totals, as JSON (- for stdout).", valueName: "FILE.json"))
    var stats: String?

    @Flag(name: .customLong("skip-damaged"),
          help: "An input that ends early (a truncated file, a cut pipe) keeps the frames before the cut, with a warning, instead of failing.")
    var skipDamaged = false

    @Option(parsing: .unconditional, help: "Chunks encoded at once, one thread each (default: all cores). The output is the same for any count. At most 4 per processor (at least 256).")
    var threads: Int?

    @Option(help: ArgumentHelp("Fit to the model's shape: crop (centre, as ElasticTok trains), pad (letterbox) or stretch."))
    var fit: FitMode = .crop

    @Option(help: ArgumentHelp(fpsHelp, valueName: "rate"), transform: parseRate)
    var fps: Double?

    @OptionGroup(title: "Many inputs (a batch)")
    var batch: BatchOptions

    @OptionGroup(title: "Model")
    var modelChoice: ModelChoice

    @OptionGroup(title: "Input")
    var inputFormat: InputFormatOptions

    @OptionGroup(title: "Common")
    var common: CommonOptions

    func validate() throws {
        if isBatch { try validateBatch() } else { try validateSingleInput() }
        try modelChoice.refuseOverwriting(input: input, output: output)
        if threshold != nil && psnr != nil { throw ValidationError("give --threshold or --psnr, not both.") }
        if let threshold, !(threshold > 0 && threshold.isFinite) {
            throw ValidationError("--threshold must be a positive MSE (for example 0.003).")
        }
        if let psnr, !(psnr > 0 && psnr < 100) { throw ValidationError("--psnr must be in dB between 0 and 100 (for example 30).") }
        if fixed != nil && (threshold != nil || psnr != nil) {
            throw ValidationError("--fixed keeps a set budget; it takes no --threshold or --psnr.")
        }
        if fixed != nil && (search != nil || minTokens != nil || maxTokens != nil) {
            throw ValidationError("--fixed keeps a set budget; it takes no --search, --min-tokens or --max-tokens.")
        }
        if let fixed, fixed < 1 {
            throw ValidationError("--fixed must be a positive number of tokens (etok model info shows the model's range).")
        }
        if let minTokens, minTokens < 0 { throw ValidationError("--min-tokens must be a number of tokens.") }
        if let maxTokens, maxTokens < 1 { throw ValidationError("--max-tokens must be a number of tokens, at least 1.") }
        if let chunk, chunk < 1 { throw ValidationError("--chunk must be at least 1 block.") }
        try validateRateControl()
        try validateFPS(fps)
        try validateThreads(threads)
        if output == "-" && isatty(STDOUT_FILENO) != 0 {
            throw ValidationError("-o - writes a binary stream, and stdout is a terminal: redirect it (> clip.etok) or pipe it.")
        }
        if let stats, stats == "-" && output == "-" {
            throw ValidationError("-o - already writes the stream to stdout; give --stats a file name.")
        }
        if let stats, OutputPlacement.isSameDestination(stats, output) || stats == output && stats != "-" {
            throw ValidationError("--stats must name another file than the output.")
        }
        if let stats, OutputPlacement.isSameDestination(stats, input) {
            throw ValidationError("--stats must name another file than the input.")
        }
    }

    /// The rate-control options: one target at most, not with --fixed or --search, --budget not on stdin.
    func validateRateControl() throws {
        if tokensPerSecond != nil && budget != nil { throw ValidationError("give --tokens-per-second or --budget, not both.") }
        let rate = tokensPerSecond != nil || budget != nil
        if fixed != nil && (rate || maxTokensPerChunk != nil) {
            throw ValidationError("--fixed keeps a set budget; it takes no --tokens-per-second, --budget or --max-tokens-per-chunk.")
        }
        if rate && search != nil { throw ValidationError("--tokens-per-second and --budget run no threshold search; drop --search.") }
        if let tokensPerSecond, !(tokensPerSecond > 0 && tokensPerSecond.isFinite) {
            throw ValidationError("--tokens-per-second must be a positive rate (for example 3000).")
        }
        if let budget, budget < 1 { throw ValidationError("--budget must be a positive number of tokens.") }
        if let maxTokensPerChunk, maxTokensPerChunk < 1 { throw ValidationError("--max-tokens-per-chunk must be a positive number of tokens.") }
        if rateObjective != nil && !rate && maxTokensPerChunk == nil {
            throw ValidationError("--rate-objective goes with --tokens-per-second, --budget or --max-tokens-per-chunk.")
        }
        if budget != nil && isBatch {
            throw ValidationError("--budget is a total for one file; a batch takes --tokens-per-second or --max-tokens-per-chunk, which apply to each file.")
        }
        if budget != nil && input == "-" {
            throw ValidationError("--budget reads the input twice (measure, then encode) and needs a file, not stdin; for a stream use --tokens-per-second.")
        }
    }

    /// The rate target from --tokens-per-second or --budget (nil: the threshold).
    var rateTarget: RateTarget? {
        if let tokensPerSecond { return .tokensPerSecond(tokensPerSecond) }
        return budget.map { .budget($0) }
    }

    /// The threshold from --threshold or --psnr (PSNR = 10·log10(4 / MSE) on the [-1, 1] scale),
    /// else the model's calibrated one, else the paper's 0.003.
    func mseThreshold(for model: LoadedModel) -> Float {
        EncoderSettings.mseThreshold(threshold: threshold, psnr: psnr, model: model)
    }

    func run() throws {
        if isBatch { return try runBatch() }
        let interrupt = common.startCommand()
        defer { interrupt.stop() }
        try ExitCodes.reporting {
            // Checked (and its temporary file made) before any work: a missing folder shows now.
            let statsOutput = try stats.map {
                try OutputPlacement(path: $0, overwrite: common.overwrite, reads: modelChoice.reads(input: input))
            }
            let model = try modelChoice.load()
            if common.verbose { printError("etok: precision: \(model.model.precision.rawValue)" + (model.precisionNote.map { " (\($0))" } ?? "")) }
            let settings = EncoderSettings(threshold: mseThreshold(for: model), search: search ?? .fast, fixedTokens: fixed,
                                           minTokens: minTokens, maxTokens: maxTokens, chunkBlocks: chunk,
                                           maxTokensPerChunk: maxTokensPerChunk, rateTarget: rateTarget,
                                           rateObjective: rateObjective ?? .default, repeatBlocks: !noRepeat)
            var inputOptions = inputFormat.inputOptions(fps: fps)
            inputOptions.keepsTruncatedInput = skipDamaged
            let job = EncodeJob(input: input, inputOptions: inputOptions, fit: fit,
                                output: output, overwrite: common.overwrite, settings: settings,
                                workers: threads ?? ThreadPolicy.defaultWorkers)
            let run = try EncodeRun(job: job, model: model)
            if !common.quiet, let line = upscaleWarning(run.info, model: model.model.config.imageSize, fit: fit) {
                printError(line)
            }
            interrupt.attach { run.cancel() }
            let progress = ProgressReporter(quiet: common.quiet, duration: run.info.duration)
            let summary: EncodeSummary
            do {
                summary = try run.run { p in
                    progress.update(frames: p.frames, mediaSeconds: p.mediaSeconds,
                                    extra: String(format: "tok/frame=%.1f saved=%.0f%%", p.meanTokensPerFrame, 100 * p.savings))
                }
            } catch {
                progress.abandon()
                throw error
            }
            if let statsOutput { try writeJSON(summary, to: statsOutput) }
            let line = summaryLine(summary, output: output == "-" ? "stdout" : output)
            progress.end(frames: summary.frames, mediaSeconds: summary.perBlock.last.map { $0.seconds - summary.perBlock[0].seconds } ?? 0,
                         summary: [line, rateControlLine(summary), rateMissWarning(summary, repeats: !noRepeat), missedThresholdHint(summary),
                                   damagedInputWarning(summary)]
                            .compactMap { $0 }.joined(separator: "\n"))
            // Damage is worth a line even with -q, as decode's --skip-damaged warnings are.
            if common.quiet, let warning = damagedInputWarning(summary) { printError(warning) }
        }
    }
}

/// The encode's closing line. Tokens are per frame whatever the model's frames per block; the
/// threshold share and the passes are per block, and say "blocks" unless a block is one frame.
func summaryLine(_ summary: EncodeSummary, output: String) -> String {
    let block = summary.framesPerBlock == 1 ? "frame" : "block"
    let maxPerFrame = summary.maxTokensPerFrame
    let maxText = maxPerFrame == maxPerFrame.rounded() ? String(Int(maxPerFrame)) : String(format: "%.1f", maxPerFrame)
    return String(
        format: "etok: %d frames → %@: %.1f tokens/frame of %@ (%.0f%% saved), %.2f dB mean PSNR, "
            + "%.0f%% of %@s within threshold, %.2f passes/%@, %.2f bits/token, %d bytes",
        summary.frames, output, summary.meanTokensPerFrame, maxText, 100 * summary.savings, summary.meanPSNR,
        100 * summary.shareMeetingThreshold, block, summary.passesPerBlock, block, summary.bitsPerToken, summary.bytes)
        + (summary.repeatBlocks == 0 ? "" : String(format: ", %d repeat %@s (%.0f%%, 0 tokens each)",
                                                   summary.repeatBlocks, block, 100 * summary.repeatShare))
}

/// The rate-control target against what was achieved (nil without rate control).
func rateControlLine(_ summary: EncodeSummary) -> String? {
    guard let r = summary.rateControl else { return nil }
    let share = summary.perBlock.isEmpty ? 0 : 100 * summary.shareMeetingThreshold
    switch r.mode {
    case "tokens_per_second":
        return String(format: "etok: rate %.1f tokens/s over %.2f s (target %.6g, %+.2f%%), largest chunk %d tokens",
                      r.achieved, r.mediaSeconds, r.target, 100 * (r.achieved / r.target - 1), r.largestChunk)
            + (r.maxTokensPerChunk.map { " (cap \($0))" } ?? "")
    case "budget":
        return String(format: "etok: budget %.0f tokens kept of %.0f (%+.2f%%), largest chunk %d tokens, %.0f%% within threshold",
                      r.achieved, r.target, 100 * (r.achieved / r.target - 1), r.largestChunk, share)
            + (r.maxTokensPerChunk.map { " (cap \($0))" } ?? "")
    default:
        return String(format: "etok: largest chunk %d tokens (cap %.0f)", r.largestChunk, r.target)
    }
}

/// One line when a rate or a budget missed its target by more than 2% (nil otherwise): every block
/// keeps between the model's least and most tokens (with repeats, only a chunk's first block needs
/// the least), and a cap holds chunks down, so a target outside what the file can take is met as
/// closely as it allows, and the user should hear so. `repeats`: rate control could write repeats.
func rateMissWarning(_ summary: EncodeSummary, repeats: Bool) -> String? {
    guard let r = summary.rateControl, r.mode == "tokens_per_second" || r.mode == "budget", r.target > 0 else { return nil }
    let off = r.achieved / r.target - 1
    guard abs(off) > 0.02 else { return nil }
    let name = summary.input == "-" ? "stdin" : summary.input
    let limit = off > 0
        ? (repeats ? "each chunk's first block keeps at least the model's least tokens (the others can repeat with 0)"
                   : "each block keeps at least the model's least tokens")
        : "a block keeps at most the model's most tokens" + (r.maxTokensPerChunk.map { " and a chunk at most the cap \($0)" } ?? "")
    return String(format: "etok: warning: %@: the target is out of reach (achieved %+.1f%%): %@ (etok model info)", name, 100 * off, limit)
}

/// One line when fitting the input to the model enlarges it more than 2×: the tokens then describe
/// a blurred picture, which a user tokenizing a dataset would want to know (nil otherwise).
func upscaleWarning(_ info: VideoInfo, model: (height: Int, width: Int), fit: FitMode) -> String? {
    guard info.width > 0, info.height > 0 else { return nil }
    let sideways = info.rotation == 90 || info.rotation == 270
    let (w, h) = sideways ? (Double(info.height), Double(info.width)) : (Double(info.width), Double(info.height))
    let (mw, mh) = (Double(model.width), Double(model.height))
    // crop fills the model's frame (the larger ratio); pad fits inside it (the smaller); stretch: the larger.
    let scale = fit == .pad ? min(mw / w, mh / h) : max(mw / w, mh / h)
    guard scale > 2 else { return nil }
    return String(format: "etok: warning: %@ is %dx%d, enlarged %.1f× to the model's %dx%d: the tokens describe a blurred picture",
                  info.input, Int(w), Int(h), scale, model.width, model.height)
}

/// A line when the input was cut short (and `--skip-damaged` kept what came before), and one when
/// FFmpeg reported decode errors in it (those frames were tokenized as the decoder concealed
/// them); nil for a whole, clean input.
func damagedInputWarning(_ summary: EncodeSummary) -> String? {
    let name = summary.input == "-" ? "stdin" : summary.input
    var lines: [String] = []
    if let cut = summary.inputEndedEarly {
        let encoded = "\(summary.frames) frame\(summary.frames == 1 ? "" : "s") encoded"
        lines.append("etok: warning: \(cut); --skip-damaged kept what came before (\(encoded))")
    }
    if summary.decodeErrors > 0 {
        let errors = summary.decodeErrors == 1 ? "1 decode error" : "\(summary.decodeErrors) decode errors"
        lines.append("etok: warning: \(name): FFmpeg reported \(errors); damaged frames were tokenized as it "
                     + "concealed them (-v shows its messages)")
    }
    return lines.isEmpty ? nil : lines.joined(separator: "\n")
}

/// When fewer than 95% of the blocks met the threshold, one line saying that the model cannot
/// reach it on this footage and which `--psnr` it can reach on 95% of it (nil otherwise, and for
/// fixed budgets, which do not aim at a threshold).
func missedThresholdHint(_ summary: EncodeSummary) -> String? {
    guard summary.search != "fixed", summary.search != "rate", let reachable = summary.reachablePSNR(share: 0.95) else { return nil }
    let missed = summary.perBlock.filter { !$0.meetsThreshold }
    let budget = missed.map(\.kept).max() ?? summary.maxTokensPerBlock
    let suggestion = (reachable * 10).rounded(.down) / 10  // never above what was measured
    let unit = summary.frames == summary.blocks ? "frames" : "blocks"
    let name = summary.input == "-" ? "stdin" : summary.input
    if let cap = summary.rateControl?.maxTokensPerChunk {   // the cap, not (only) the model, held them back
        return String(format: "etok: warning: %@: %d of %d %@ missed the threshold (%.2f dB) under --max-tokens-per-chunk %d; "
                      + "a higher cap buys quality where the model can reach it", name, missed.count, summary.blocks, unit,
                      psnr(mse: summary.threshold), cap)
    }
    return String(format: "etok: warning: %@: %d of %d %@ missed the threshold (%.2f dB) even with %d tokens: the model's "
                  + "limit on this footage; --psnr %.1f is within reach for about 95%% of them",
                  name, missed.count, summary.blocks, unit, psnr(mse: summary.threshold), budget, suggestion)
}

/// Writes `value` as pretty JSON (sorted keys) to `output` (stdout, or a temporary file moved
/// into place).
func writeJSON<T: Encodable>(_ value: T, to output: OutputPlacement) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    try output.writeWhole(Array(try encoder.encode(value)) + Array("\n".utf8))
}
