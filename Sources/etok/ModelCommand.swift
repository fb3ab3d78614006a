import ArgumentParser
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
          etok model bench --context 0,1,3     timings for Tools/bench_engine.py
        """,
        subcommands: [Info.self, Run.self, Bench.self])
}

/// Why `etok model` refused to write its outputs.
enum ModelCommandError: Error, CustomStringConvertible {
    /// An output exists and -y was not given.
    case outputExists(path: String)
    /// The output folder cannot be created.
    case cannotCreate(path: String, message: String)

    var description: String {
        switch self {
        case let .outputExists(path): return "\(path): exists (use -y to overwrite)"
        case let .cannotCreate(path, message): return "\(path): cannot create: \(message)"
        }
    }
}

/// BLAS threads for the model commands.
struct ThreadOptions: ParsableArguments {
    @Option(help: "Threads for matrix products (default: all processors).")
    var threads: Int?

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1.") }
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
                let m = try ModelCatalog.load(path: model).model
                let c = m.config
                let patches = try Self.readPatches(input, config: c)
                let blockValues = c.tokensPerBlock * c.patchDim
                let blocks = patches.count / blockValues
                let counts = keepCounts.count == 1 ? [Int](repeating: keepCounts[0], count: blocks) : keepCounts
                guard counts.count == blocks else {
                    throw ValidationError("--keep gives \(counts.count) counts but \(input) holds \(blocks) blocks.")
                }
                if let bad = counts.first(where: { $0 > c.tokensPerBlock }) {
                    throw ValidationError("--keep \(bad) exceeds the \(c.tokensPerBlock) tokens of a block.")
                }
                let outputs = ["recon.npy", "z.npy"] + (c.isFSQ ? ["codes.npy"] : [])
                let paths = try prepareOutputs(outputs)

                let encoder = BlockEncoder(model: m), decoder = BlockDecoder(model: m)
                var recon: [Float] = [], z: [Float] = [], codes: [Int32] = []
                recon.reserveCapacity(patches.count)
                for (b, n) in counts.enumerated() {
                    if b % c.contextBlocks == 0 { encoder.reset(); decoder.reset() }
                    let block = Array(patches[(b * blockValues)..<((b + 1) * blockValues)])
                    let e = try encoder.encode(patches: block, keptCounts: [n])[0]
                    try encoder.commit(candidate: 0)
                    recon += try decoder.decode(z: e.z)
                    try decoder.commit()
                    z += e.z
                    codes += e.codes ?? []
                }
                let length = blocks * c.tokensPerBlock
                try NPYArray(shape: [length, c.patchDim], floats: recon).write(path: paths[0])
                try NPYArray(shape: [length, c.codeDim], floats: z).write(path: paths[1])
                if c.isFSQ { try NPYArray(shape: [length], int32: codes).write(path: paths[2]) }
                if !common.quiet {
                    let kept = counts.reduce(0, +)
                    printError("etok: \(blocks) blocks, \(kept) of \(length) tokens kept; wrote \(paths.joined(separator: ", "))")
                }
            }
        }

        /// Creates the folder and refuses existing outputs unless -y. Returns the output paths.
        func prepareOutputs(_ names: [String]) throws -> [String] {
            let fm = FileManager.default
            do { try fm.createDirectory(atPath: outputDir, withIntermediateDirectories: true) } catch {
                throw ModelCommandError.cannotCreate(path: outputDir, message: error.localizedDescription)
            }
            let paths = names.map { URL(fileURLWithPath: outputDir).appendingPathComponent($0).path }
            if !common.overwrite, let existing = paths.first(where: { fm.fileExists(atPath: $0) }) {
                throw ModelCommandError.outputExists(path: existing)
            }
            return paths
        }

        /// Reads patches from float32 (L, patch_dim) or uint8 (T, H, W, 3) .npy input.
        static func readPatches(_ path: String, config c: ModelConfig) throws -> [Float] {
            let array = try NPYArray.read(path: path)
            let s = array.shape
            let blockValues = c.tokensPerBlock * c.patchDim
            if let floats = array.floats {
                guard s.count == 2, s[1] == c.patchDim, s[0] > 0, s[0] % c.tokensPerBlock == 0 else {
                    throw ModelError.badInput(call: path, message: "float32 input must be (L, \(c.patchDim)) with L a multiple of \(c.tokensPerBlock), got \(s)")
                }
                return floats
            }
            if let bytes = array.uint8 {
                let size = c.imageSize
                guard s.count == 4, s[3] == 3, s[1] == size.height, s[2] == size.width, s[0] > 0, s[0] % c.framesPerBlock == 0 else {
                    throw ModelError.badInput(call: path, message: "uint8 input must be (T, \(size.height), \(size.width), 3) with T a multiple of \(c.framesPerBlock), got \(s)")
                }
                let patches = try Patchify.patches(frames: bytes, count: s[0], height: s[1], width: s[2], config: c)
                precondition(patches.count % blockValues == 0)
                return patches
            }
            throw ModelError.badInput(call: path, message: "input must be float32 patches or uint8 frames, got \(array.descr)")
        }
    }

    /// `etok model bench`: timings for Tools/bench_engine.py (JSON on stdout).
    struct Bench: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Time encode+decode per block with 0, 1, 3... committed blocks (for Tools/bench_engine.py).",
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

        @OptionGroup(title: "Threads")
        var threadOptions: ThreadOptions

        func run() throws {
            threadOptions.apply()
            try ExitCodes.reporting {
                let m = try model.map { try ElasticTokModel.load(path: $0) }
                    ?? ElasticTokModel(config: .etokDefault, weights: ModelWeights.random(.etokDefault, seed: 1))
                let report = try EngineBench.run(model: m, contexts: context.split(separator: ",").compactMap { Int($0) },
                                                 repeats: max(1, repeats), keep: keep, candidates: max(1, candidates))
                let data = try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys])
                print(String(decoding: data, as: UTF8.self))
            }
        }
    }
}

/// The timing loop behind `etok model bench`.
enum EngineBench {
    static func seconds(_ body: () throws -> Void) rethrows -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        try body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }

    static func median(_ v: [Double]) -> Double {
        let s = v.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }

    /// The best sgemm rate on a large square product (GFLOP/s), as the MFU denominator.
    static func sgemmPeak(size n: Int = 1024, repeats: Int = 10) -> Double {
        let a = FloatBuffer(count: n * n), b = FloatBuffer(count: n * n), c = FloatBuffer(count: n * n)
        for i in 0..<(n * n) { a.base[i] = Float(i % 7) * 0.01; b.base[i] = Float(i % 5) * 0.01 }
        var best = Double.infinity
        for _ in 0..<repeats {
            best = min(best, seconds {
                GEMM.multiply(m: n, n: n, k: n, a: a.base, lda: n, b: b.base, ldb: n, c: c.base, ldc: n)
            })
        }
        return 2 * Double(n * n * n) / best / 1e9
    }

    /// This process's peak resident set (VmHWM). Not getrusage: Linux carries ru_maxrss across
    /// exec, so a child of a large process (the Python benchmark) would report its parent's size.
    /// 0 where /proc is not available (JSON has no NaN).
    static func peakRSSMiB() -> Double {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
              let kib = Double(line.split(separator: " ").dropFirst().first ?? "")
        else { return 0 }
        return kib / 1024
    }

    static func run(model m: ElasticTokModel, contexts: [Int], repeats: Int, keep: Int?, candidates: Int) throws -> [String: Any] {
        let c = m.config
        var rng: UInt64 = 12345
        func block() -> [Float] {
            (0..<(c.tokensPerBlock * c.patchDim)).map { _ in
                rng = rng &* 6364136223846793005 &+ 1442695040888963407
                return Float(rng >> 40) / Float(1 << 24) * 2 - 1
            }
        }
        let peak = sgemmPeak()
        let n = keep ?? c.tokensPerBlock
        let counts = candidates == 1 ? [n] : (0..<candidates).map { max(1, c.tokensPerBlock * ($0 + 1) / candidates) }
        var rows: [[String: Any]] = []
        let input = block()
        for k in contexts where k < c.contextBlocks {
            let coder = BlockCoder(model: m)
            for _ in 0..<k { _ = try coder.reconstruct(patches: block(), keptCounts: [n]); try coder.commit(candidate: 0) }
            _ = try coder.reconstruct(patches: input, keptCounts: counts)  // warm-up
            var times: [Double] = []
            for _ in 0..<repeats { times.append(try seconds { _ = try coder.reconstruct(patches: input, keptCounts: counts) }) }
            let flops = ModelFLOPs.block(c, contextBlocks: k) * Double(counts.count)
            let t = median(times)
            rows.append(["context_blocks": k, "seconds": t, "seconds_min": times.min() ?? t, "flops": flops,
                         "gflops_per_s": flops / t / 1e9, "mfu": flops / t / 1e9 / peak])
        }
        return ["peak_rss_mib": peakRSSMiB(), "sgemm_peak_gflops": peak, "threads": BLASThreads.current, "kernels": m.kernels.name,
                "blas": BLASKernels.description, "blas_core": BLASKernels.coreName,
                "candidates": counts.count,
                "tokens_per_block": c.tokensPerBlock, "parameters": m.parameterCount, "results": rows]
    }
}
