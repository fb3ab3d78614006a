import ArgumentParser
import EtokFormat
import EtokIO
import EtokTokenizer
import Foundation

/// `etok export`: token sequences for ML pipelines.
struct Export: ParsableCommand {
    typealias Format = TokenExport.Format

    static let configuration = CommandConfiguration(
        abstract: "Export the token sequences of an .etok stream as .npy arrays or JSON lines.",
        discussion: """
        npy: -o DIR (a folder; its parent must exist) gets lengths.npy (int32, kept tokens per block), \
        tokens.npy (the kept tokens of all blocks concatenated: int32 FSQ indices, or float32 (N, dim) VAE \
        latents), pts.npy (float64 seconds per block), blocks.npy (int64, each block's index in the \
        stream), frames.npy (int32, frames per block: frames_per_block, fewer for a last partial \
        block) and chunks.npy (int64, each block's chunk, named by its first block: the model's \
        context resets where it changes). jsonl: one block per line, {"block", "chunk", "time", \
        "frames", "kept", "tokens"}; -o - for stdout. FSQ tokens are indices into the codebook \
        (etok info --json: vocabulary_size, fsq_quant_levels; digit d_i = index / Π_{j<i} L_j mod L_i).

        The way back: etok import reads either form, as written or edited (or tokens your own model \
        generated, same layout), and writes an .etok stream that etok decode turns into video.

        A damaged or truncated file is an error (exit 65, nothing written). --skip-damaged exports the \
        readable blocks instead and prints one warning per damaged range; the block numbers (blocks.npy, \
        "block") show the gaps.

        tar (several inputs): -o DIR gets shard-000000.tar, shard-000001.tar, ... (each at most \
        --shard-size) and index.json (the shards, their bytes and sample keys). One sample per clip, \
        key NNNNNNNN_NAME (its position and file name): KEY.lengths.npy, KEY.tokens.npy, KEY.pts.npy, \
        KEY.blocks.npy, KEY.frames.npy, KEY.chunks.npy as above, and KEY.json (source, model_sha256, \
        threshold, psnr per block). Python's tarfile and numpy read it, and so does webdataset \
        (docs/scale.md). --format npy with several inputs writes a folder per clip under -o DIR \
        (clips/a.etok -> DIR/clips/a.etok/). A bad input is named on one line and left out; the \
        export then exits with 2.

        Examples:
          etok export bikes.etok --format npy -o bikes_tokens/
          etok export bikes.etok --format jsonl -o - | head -1
          etok import bikes_tokens/ -o edited.etok      # the way back, after editing; then etok decode
          etok export cut.etok --skip-damaged -o readable.jsonl
          etok export tokens/**/*.etok -o shards/ --shard-size 512M    # WebDataset shards + index.json
          python3 -c "import numpy as n; l=n.load('bikes_tokens/lengths.npy'); t=n.load('bikes_tokens/tokens.npy'); print(n.split(t, l.cumsum()[:-1])[0])"
        """)

    @Argument(help: "The .etok file, or - for stdin; several files export a dataset (tar shards, or --format npy: a folder per clip).")
    var inputs: [String] = []

    /// The single input (the first).
    var input: String { inputs.first ?? "-" }

    @Option(help: "npy, jsonl or tar (WebDataset shards in the -o folder). Default: tar for several inputs; for one, from -o, as in ffmpeg: a .jsonl or .json file, or - (stdout), is jsonl; a folder (an existing one, a name ending in /, or a name without an extension) is npy.")
    var format: Format?

    @Option(name: .customLong("shard-size"), help: ArgumentHelp("Largest tar shard (bytes, or with K, M, G: 1024-based); a clip bigger than that gets a shard of its own. Default 1G.", valueName: "SIZE"),
            transform: parseByteSize)
    var shardSize: Int?

    /// --format, else what the output's name says (nil: it does not say).
    var effectiveFormat: Format? {
        if let format { return format }
        if inputs.count > 1 || shardSize != nil { return .tar }
        if output == "-" { return .jsonl }
        let lower = output.lowercased()
        if lower.hasSuffix(".jsonl") || lower.hasSuffix(".json") { return .jsonl }
        if lower.hasSuffix(".npy") { return .npy }   // refused by validate() with what to do instead
        var isDirectory: ObjCBool = false
        if output.hasSuffix("/") || (FileManager.default.fileExists(atPath: output, isDirectory: &isDirectory) && isDirectory.boolValue) {
            return .npy
        }
        return URL(fileURLWithPath: output).pathExtension.isEmpty ? .npy : nil
    }

    @Option(name: .shortAndLong, help: "Output: a folder for npy (created if its parent exists); a file or - for jsonl.")
    var output: String

    @OptionGroup
    var damage: DamageOptions

    @OptionGroup(title: "Common")
    var common: CommonOptions

    func validate() throws {
        if inputs.isEmpty { throw ValidationError("give an .etok file (or - for stdin).") }
        if inputs.count > 1 || effectiveFormat == .tar { try validateMany() }
        try refuseOutputIsInput(input, output)
        guard let format = effectiveFormat else {
            throw ValidationError("cannot tell the format from -o \(output): name a .jsonl file or a folder (npy), or give --format.")
        }
        if format == .npy && output == "-" { throw ValidationError("npy export writes six files: give a folder with -o.") }
        if format == .npy && output.lowercased().hasSuffix(".npy") {
            throw ValidationError("npy export writes a folder of .npy files (\(TokenExport.npyFiles.joined(separator: ", "))): give -o a folder name, not \(output).")
        }
    }

    func run() throws {
        if inputs.count > 1 || effectiveFormat == .tar { return try runMany() }
        let interrupt = common.startCommand()
        defer { interrupt.stop() }
        try ExitCodes.reporting {
            // Output problems first: they cost nothing to find.
            let format = effectiveFormat ?? .jsonl   // validate() refused a name that says nothing
            let folder = try format == .npy
                ? FolderPlacement(folder: output, names: TokenExport.npyFiles, overwrite: common.overwrite) : nil
            let file = try format == .jsonl
                ? OutputPlacement(path: output, overwrite: common.overwrite, reads: [(input, "input")]) : nil
            let report = try StreamReport.read(path: input)
            if !report.damage.isEmpty {
                if !damage.skipDamaged { throw DamageMessages.refusal(report.damage) }
                if report.blocks.isEmpty { throw DamageMessages.nothingReadable(report.damage) }
            }
            if let folder { try TokenExport.writeNPY(report, to: folder) }
            if let file { try TokenExport.writeJSONL(report, to: file) }
            DamageMessages.warn(report.damage)
            if !common.quiet {
                printError("etok: exported \(BlockRangeText.count(report.blocks.count, "block")), "
                           + "\(BlockRangeText.count(report.tokens, "token")) to \(output == "-" ? "stdout" : output)"
                           + DamageMessages.summaryNote(report.damage))
            }
        }
    }
}

extension TokenExport.Format: ExpressibleByArgument {}
