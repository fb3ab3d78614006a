import ArgumentParser
import EtokIO
import EtokModel
import EtokTensor
import EtokTokenizer
import Foundation

/// `etok model`: inspect and run ElasticTok model files (safetensors with the config in the
/// header). `run` is how anyone checks etok's engine against another implementation.
struct ModelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model",
        abstract: "Inspect and run ElasticTok model files.",
        discussion: """
        Examples:
          etok model info model.safetensors
          etok model run --model m.safetensors --input vision.npy \\
              --keep 3,16,7 --output-dir out
          etok model bench --context 0,1,3     timings for etok-tools bench engine
        """,
        subcommands: [Info.self, Run.self, Bench.self])
}

/// BLAS threads for the model commands.
struct ThreadOptions: ParsableArguments {
    @Option(help: "Threads for matrix products (default: all processors; at most 4 per processor, at least 256).")
    var threads: Int?

    func validate() throws {
        try validateThreads(threads)
    }

    func apply() { BLASThreads.configure(threads: threads) }
}

extension ModelCommand {
    /// `etok model info FILE`.
    struct Info: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a model's config, parameter count and tensors.",
            discussion: """
            Examples:
              etok model info                    the bundled default model
              etok model info model.safetensors
              etok model info --json model.safetensors
            """)

        @Argument(help: "Model file (.safetensors); default: the model bundled with etok.")
        var file: String?

        @Flag(help: "Print the config and tensor table as JSON.")
        var json = false

        func run() throws {
            try ExitCodes.reporting {
                let loaded = try ModelCatalog.load(path: file)
                let model = loaded.model, file = loaded.path
                let c = model.config
                let threshold = loaded.calibratedThreshold.map { String(format: "%.6g (%.2f dB)", $0, psnr(mse: Double($0))) }
                    ?? "none (etok encode uses 0.003)"
                if json {
                    let tensors = model.tensors.map { ["name": $0.name, "dtype": $0.dtype, "shape": $0.shape] as [String: Any] }
                    let config = try JSONSerialization.jsonObject(with: Data(c.jsonString().utf8))
                    let object: [String: Any] = ["file": file, "config": config, "parameters": model.parameterCount,
                                                 "sha256": loaded.sha256,
                                                 "calibrated_threshold": loaded.calibratedThreshold.map { Double($0) } as Any,
                                                 "context_blocks": c.contextBlocks, "blas": BLASKernels.description,
                                                 "precision": model.precision.rawValue,
                                                 "precision_note": loaded.precisionNote as Any,
                                                 "vocabulary_size": c.isFSQ ? c.codebookSize as Any : NSNull(),
                                                 "tensors": tensors]
                    let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
                    print(String(decoding: data, as: UTF8.self))
                    return
                }
                let size = c.imageSize
                print("model       \(file)")
                print("bottleneck  \(c.isFSQ ? "fsq \(c.fsqQuantLevels) (\(c.codebookSize) codes)" : "vae \(c.codeDim)")")
                print("frames      \(size.width)x\(size.height), \(c.framesPerBlock) per block, patch \(c.patchSize)")
                print("tokens      \(c.tokensPerBlock) per block (min \(c.minToks)), context \(c.contextBlocks) blocks")
                print("width       hidden \(c.hiddenSize), MLP \(c.intermediateSize), \(c.numAttentionHeads) heads")
                print("layers      encoder \(c.numEncoderLayers), decoder \(c.numDecoderLayers)")
                print("norm, rope  eps \(c.rmsNormEps), theta \(c.theta)")
                print("parameters  \(model.parameterCount)")
                print("sha256      \(loaded.sha256)")
                print("threshold   \(threshold)")
                print("config      \(c.jsonString())")
                print("blas        \(BLASKernels.description)")
                print("precision   \(model.precision.rawValue) under --precision auto (AVX512-BF16 kernel \(Precision.bf16Available ? "available" : "not available on this CPU"))")
                if let note = loaded.precisionNote { print("            \(note)") }
                print("")
                let width = model.tensors.map(\.name.count).max() ?? 0
                for t in model.tensors {
                    let pad = String(repeating: " ", count: width - t.name.count)
                    print("\(t.name)\(pad)  \(t.dtype.padding(toLength: 4, withPad: " ", startingAt: 0))  \(t.shape)")
                }
            }
        }
    }

    /// `etok model run`.
    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Encode and decode an array with a model; write recon.npy, z.npy and codes.npy.",
            discussion: """
            The input is float32 (L, patch_dim) patches in [-1, 1] covering whole blocks, or uint8 \
            (T, H, W, 3) frames at the model's size (patchified for you). Blocks run one at a time, \
            each with the earlier blocks committed as context (the streaming engine); the context is \
            reset every max_sequence_length / max_toks blocks (a chunk). --keep gives the number of \
            leading tokens kept in each block: one number for every block, or one per block.

            Writes into the output folder (created if missing):
              recon.npy  float32 (L, patch_dim), the reconstruction in [-1, 1]
              z.npy      float32 (L, code_dim), zero where a token is not kept
              codes.npy  int32 (L,), FSQ indices (FSQ models only); past a block's kept
                         count they hold the index of the all-zero code (z = 0 there),
                         so use --keep to tell kept tokens from masked ones

            Without --model the bundled model runs.

            Examples:
              etok model run --model m.safetensors --input vision.npy \\
                  --keep 3,16,7,11 --output-dir out
              etok model run --model m.safetensors --input frames.npy \\
                  --keep 256 --output-dir out -y
            """)

        @Option(help: "Model file (.safetensors); default: the model bundled with etok.")
        var model: String?

        @Option(help: "Input .npy: float32 (L, patch_dim) patches or uint8 (T, H, W, 3) frames.")
        var input: String

        @Option(help: ArgumentHelp("Kept tokens per block: one count, or a comma-separated list with one per block.",
                                   valueName: "n[,n...]"))
        var keep: String

        @Option(name: .customLong("output-dir"), help: "Folder for recon.npy, z.npy and codes.npy.")
        var outputDir: String

        @OptionGroup(title: "Threads")
        var threadOptions: ThreadOptions

        @OptionGroup(title: "Common")
        var common: CommonOptions

        /// The kept counts, parsed.
        var keepCounts: [Int] { keep.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) } }

        func validate() throws {
            let parts = keep.split(separator: ",", omittingEmptySubsequences: false)
            guard !parts.isEmpty, keepCounts.count == parts.count, keepCounts.allSatisfy({ $0 >= 0 }) else {
                throw ValidationError("--keep must be non-negative whole numbers separated by commas, e.g. --keep 3,16,7.")
            }
        }

        func run() throws {
            threadOptions.apply()
            try ExitCodes.reporting {
                // float32, the reference: what parity checks against other implementations compare.
                let m = try ModelCatalog.load(path: model, precision: .fp32).model
                let c = m.config
                let patches = try ModelRun.patches(NPYArray.read(path: input), file: input, config: c)
                let blocks = patches.count / (c.tokensPerBlock * c.patchDim)
                let counts = keepCounts.count == 1 ? [Int](repeating: keepCounts[0], count: blocks) : keepCounts
                guard counts.count == blocks else {
                    throw ValidationError("--keep gives \(counts.count) counts but \(input) holds \(blocks) blocks.")
                }
                if let bad = counts.first(where: { $0 > c.tokensPerBlock }) {
                    throw ValidationError("--keep \(bad) exceeds the \(c.tokensPerBlock) tokens of a block.")
                }
                let folder = try FolderPlacement(folder: outputDir, names: ModelRun.fileNames(c), overwrite: common.overwrite,
                                                 createParents: true)
                let output = try ModelRun.run(model: m, patches: patches, keptCounts: counts)
                try folder.writeWhole(output.files.map { $0.array.encoded() })
                if !common.quiet {
                    let kept = counts.reduce(0, +), paths = folder.files.map { $0.file }
                    printError("etok: \(blocks) blocks, \(kept) of \(blocks * c.tokensPerBlock) tokens kept; "
                               + "wrote \(paths.joined(separator: ", "))")
                }
            }
        }
    }

    /// `etok model bench`: timings for etok-tools bench engine (JSON on stdout).
    struct Bench: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Time encode+decode per block with 0, 1, 3... committed blocks (for etok-tools bench engine).",
            discussion: """
            Prints one JSON object: the sgemm peak measured first (GFLOP/s), then per context size \
            the median seconds per block, the model FLOPs and the MFU. Without --model it times random \
            weights at the default architecture.

            Examples:
              etok model bench --context 0,1,3 --repeats 20
              etok model bench --model m.safetensors --threads 1
            """)

        @Option(help: "Model file; default: random weights at the default architecture.")
        var model: String?

        @Option(help: "Committed blocks before the timed block, comma-separated.")
        var context = "0,1,3"

        @Option(help: "Timed repetitions per context size (the median is reported).")
        var repeats = 10

        @Option(help: "Kept count of the timed block (default: all tokens).")
        var keep: Int?

        @Option(help: "Candidates per timed call (kept counts spread over the block).")
        var candidates = 1

        @Option(help: ArgumentHelp("What the model computes in: fp32, bf16 (AVX512-BF16 CPUs) or auto (bf16 from 100M parameters where the CPU has it).",
                                   valueName: "fp32|bf16|auto"))
        var precision: PrecisionChoice = .auto

        @Option(help: ArgumentHelp("Also time sgemm against the bf16 kernel on these linear-layer shapes (rows x in x out), median of --repeats, e.g. 4096x1024x3072,4096x2048x1024.",
                                   valueName: "MxKxN[,...]"))
        var gemm: String?

        @OptionGroup(title: "Threads")
        var threadOptions: ThreadOptions

        func run() throws {
            threadOptions.apply()
            try ExitCodes.reporting {
                let resolved = precision.resolve(parameters: ModelWeights.parameterCount(.etokDefault))
                if model == nil && resolved == .bf16 && !Precision.bf16Available { throw ModelError.bf16Unavailable(file: "random weights") }
                let loaded = try model.map { try ModelCatalog.load(path: $0, precision: precision) }
                let m = loaded?.model
                    ?? ElasticTokModel(config: .etokDefault, weights: ModelWeights.random(.etokDefault, seed: 1, precision: resolved))
                let shapes = try (gemm ?? "").split(separator: ",").map { text -> (Int, Int, Int) in
                    let v = text.split(separator: "x").compactMap { Int($0) }
                    guard v.count == 3, v.allSatisfy({ $0 > 0 }) else { throw ValidationError("--gemm takes MxKxN, e.g. 4096x1024x3072.") }
                    return (v[0], v[1], v[2])
                }
                var report = try EngineBench.run(model: m, contexts: context.split(separator: ",").compactMap { Int($0) },
                                                 repeats: max(1, repeats), keep: keep, candidates: max(1, candidates))
                if let note = loaded?.precisionNote { report["precision_note"] = note }
                if !shapes.isEmpty { report["gemm"] = EngineBench.gemmShapes(shapes, repeats: max(1, repeats)) }
                let data = try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys])
                print(String(decoding: data, as: UTF8.self))
            }
        }
    }
}

