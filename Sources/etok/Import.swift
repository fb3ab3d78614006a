import ArgumentParser
import EtokFormat
import EtokMedia
import EtokTokenizer
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `etok import`: token sequences (exported, edited or generated) back into an `.etok` stream.
struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Turn token sequences (etok export's JSON lines or npy folder, edited or generated) into an .etok stream for etok decode.",
        discussion: """
        The way back from etok export: tokens a world model or video LM generated, or exported ones \
        you edited, become a stream that etok decode turns into video. TOKENS is JSON lines (a file, \
        or - for stdin), one block per line as etok export --format jsonl writes it: \
        {"block": 0, "time": 0.0, "kept": 37, "tokens": [...]}. Only "tokens" is required: "kept" \
        defaults to the token count, and a VAE model's tokens are kept x dim values, flat or one list \
        per token. Or TOKENS is a folder as etok export --format npy writes it: lengths.npy and \
        tokens.npy, with pts.npy (seconds), blocks.npy and chunks.npy optional (integers of any width; VAE \
        latents float16/32/64). A model with several frames per block takes "frames" (frames.npy) \
        for a last block that holds fewer.

        The tokens must come from the model given (--model, default the bundled one): every block \
        keeps min_toks..max_toks tokens (the block's first ones; the decoder masks the rest), or 0: \
        a repeat block, which shows the frame before again (not a stream's first block; the \
        stream then declares repeat blocks, format 1.2, docs/etok-format.md §5), and \
        FSQ indices lie in 0..(product of the levels - 1); etok model info shows both. The first \
        problem stops the import with the file and line (or block) named, and no output.

        Chunks: blocks with a "chunk" (chunks.npy; etok export writes the chunk's first block) share \
        the model's context while the value stays the same, and a new value starts a new chunk (so \
        exported tokens decode to the very same frames; give each clip its own chunk values when \
        concatenating). Without it the context resets every --chunk blocks, and with block numbers \
        also at their multiples of --chunk and after a gap. Times: --fps R spaces the frames 1/R s apart (the input's times ignored); without \
        it the input's times count, or 4 fps (the paper's training rate) when it has none. Imported \
        blocks have no measured reconstruction error: etok info shows n/a.

        Examples:
          etok export clip.etok --format jsonl -o clip.jsonl
          etok import clip.jsonl -o back.etok && etok decode back.etok -o back.mp4
          python3 my_world_model.py | etok import - -o dream.etok --fps 4
          etok import clip_tokens/ -o edited.etok      # a folder from --format npy
        """)

    @Argument(help: ArgumentHelp("JSON lines (a file, or - for stdin) or an npy folder, as etok export writes them.", valueName: "TOKENS"))
    var input: String

    @Option(name: .shortAndLong, help: "Output .etok file, or - for stdout.")
    var output: String

    @Option(parsing: .unconditional, help: ArgumentHelp("Blocks per chunk: the context resets every K blocks (default: the model's context length).", valueName: "K"))
    var chunk: Int?

    @Option(help: ArgumentHelp("Time blocks at R frames per second (a number or a fraction such as 30000/1001), ignoring the input's times (default: the input's times, else 4, the paper's training rate).", valueName: "R"),
            transform: parseRate)
    var fps: Double?

    @OptionGroup(title: "Model")
    var modelChoice: ModelChoice

    @OptionGroup(title: "Common")
    var common: CommonOptions

    func validate() throws {
        if let chunk, chunk < 1 { throw ValidationError("--chunk must be at least 1 block.") }
        try validateFPS(fps)
        try modelChoice.refuseOverwriting(input: input, output: output)
        if output == "-" && isatty(STDOUT_FILENO) != 0 {
            throw ValidationError("-o - writes a binary stream, and stdout is a terminal: redirect it (> out.etok) or pipe it.")
        }
    }

    func run() throws {
        let interrupt = common.startCommand()
        defer { interrupt.stop() }
        try ExitCodes.reporting {
            let model = try modelChoice.load()
            let job = TokenImportJob(input: input, output: output, overwrite: common.overwrite, chunkBlocks: chunk, fps: fps)
            let summary = try TokenImport(job: job, model: model).run()
            if !common.quiet {
                printError("etok: imported \(BlockRangeText.count(summary.blocks, "block")) (\(BlockRangeText.count(summary.frames, "frame")), "
                           + "\(BlockRangeText.count(summary.tokens, "token"))) from \(input == "-" ? "stdin" : input) → "
                           + "\(output == "-" ? "stdout" : output): \(BlockRangeText.count(summary.chunks, "chunk")), "
                           + "\(summary.bytes) bytes; times: \(summary.timing)")
            }
        }
    }
}
