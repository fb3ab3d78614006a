// ElasticTokModel: a loaded model (config + weights + the tables every session shares), and the
// whole-sequence forward pass used to check the incremental engine.
import EtokTensor
import Foundation

/// A loaded ElasticTok model: its config, float32 weights in the engine's layout, the file's
/// tensor table, and the RoPE and FSQ tables. Immutable; share it between sessions and threads.
/// Sessions (`BlockEncoder`, `BlockDecoder`, `BlockCoder`) hold all mutable state.
public final class ElasticTokModel: @unchecked Sendable {
    public let config: ModelConfig
    public let weights: ModelWeights
    /// The tensors as the file stores them (name, dtype, shape), sorted by name; empty when the
    /// weights did not come from a file.
    public let tensors: [TensorEntry]
    /// The file the model came from, if any.
    public let path: String?
    /// The file's safetensors metadata ("config", "format", and any other keys); empty when the
    /// weights did not come from a file.
    public let metadata: [String: String]
    /// The kernels every session of this model uses.
    public let kernels: Kernels
    /// What the stacks compute in (the weights' precision); sessions cache keys and values in it.
    public var precision: Precision { weights.precision }
    let rope: RoPETable
    let fsqLevels: [FSQLevel]

    /// Wraps weights for `config` (validated).
    public init(config: ModelConfig, weights: ModelWeights, tensors: [TensorEntry] = [], path: String? = nil,
                metadata: [String: String] = [:], kernels: Kernels = .best) {
        self.config = config
        self.weights = weights
        self.tensors = tensors
        self.path = path
        self.metadata = metadata
        self.kernels = kernels
        rope = RoPETable(positions: config.maxSequenceLength, headDim: config.headDim, theta: config.theta)
        fsqLevels = config.isFSQ ? FSQLevel.table(levels: config.fsqQuantLevels) : []
    }

    /// Loads a model file: safetensors with the config JSON under the metadata key "config"
    /// (and, when present, "format" = "etok-elastictok"). Strict about the header, the config
    /// (`ModelLimits`), and every tensor's name, shape, dtype and values (finite); F16 and BF16
    /// storage is converted to float32. Everything is checked before anything the file sizes is
    /// allocated: the header, then the config, then the tensor table against the config, then
    /// the values tensor by tensor. `precision` bf16 throws `bf16Unavailable` on a CPU without
    /// AVX512-BF16.
    public static func load(path: String, kernels: Kernels = .best, precision: Precision = .fp32) throws -> ElasticTokModel {
        try load(try SafeTensorsFile(path: path), kernels: kernels, precision: precision)
    }

    /// Loads a model from an opened safetensors file (the same checks as `load(path:)`; the
    /// fuzz target feeds bytes through here).
    public static func load(_ file: SafeTensorsFile, kernels: Kernels = .best, precision: Precision = .fp32) throws -> ElasticTokModel {
        let path = file.path
        if precision == .bf16 && !Precision.bf16Available { throw ModelError.bf16Unavailable(file: path) }
        if let format = file.metadata["format"], format != "etok-elastictok" {
            throw ModelError.badHeader(file: path, message: "format is \"\(format)\", expected \"etok-elastictok\"")
        }
        guard let json = file.metadata["config"] else {
            throw ModelError.badHeader(file: path, message: "no \"config\" in the header metadata")
        }
        let config = try ModelConfig.parse(json: json, file: path)
        let weights = try ModelWeights.load(file, config: config, precision: precision)
        let table = file.entries.values.sorted { $0.name < $1.name }
        return ElasticTokModel(config: config, weights: weights, tensors: table, path: path, metadata: file.metadata,
                               kernels: kernels)
    }

    /// Number of parameters.
    public var parameterCount: Int { ModelWeights.parameterCount(config) }

    /// The output of a forward pass over a sequence of blocks.
    public struct SequenceOutput {
        /// Reconstruction (L × patch_dim) in [-1, 1].
        public var recon: [Float]
        /// z (L × code_dim), zero where not kept.
        public var z: [Float]
        /// FSQ indices (L), the masked index where not kept; nil for a VAE.
        public var codes: [Int32]?
    }

    /// The full-sequence forward pass, as the reference computes it: every block at once with a
    /// block-causal mask (positions 0..<L). `patches` is (L × patch_dim) with L a whole number
    /// of blocks, at most max_sequence_length; keep[b] is block b's kept count.
    ///
    /// This is the independent check of the incremental path (`BlockEncoder`/`BlockDecoder`),
    /// which is what etok runs; both agree to float rounding (≈1e-7), not bit for bit.
    public func forwardSequence(patches: [Float], keep: [Int]) throws -> SequenceOutput {
        let t = config.tokensPerBlock, p = config.patchDim, d = config.hiddenSize
        let call = "forwardSequence"
        guard patches.count % (t * p) == 0, !patches.isEmpty else {
            throw ModelError.badInput(call: call, message: "\(patches.count) values are not whole blocks of \(t) × \(p)")
        }
        let blocks = patches.count / (t * p), length = blocks * t
        guard length <= config.maxSequenceLength else {
            throw ModelError.badInput(call: call, message: "\(blocks) blocks exceed the context of \(config.contextBlocks)")
        }
        guard keep.count == blocks, keep.allSatisfy({ (0...t).contains($0) }) else {
            throw ModelError.badInput(call: call, message: "keep needs \(blocks) counts in 0...\(t), got \(keep)")
        }
        let visible = (0..<length).map { Int32(($0 / t + 1) * t) }
        let run = StackRun(groups: 1, rowsPerGroup: length, firstPosition: 0, visible: visible)

        // Encoder.
        let enc = StackWorkspace(width: d, inner: config.intermediateSize, layers: config.numEncoderLayers,
                                 precision: precision)
        enc.ensure(rows: length)
        patches.withUnsafeBufferPointer { x in
            GEMM.linear(x.baseAddress!, ldx: p, rows: length, weight: weights.inProj, into: enc.h.base, ldy: d)
        }
        let kept = (0..<length).map { ($0 % t) < keep[$0 / t] }
        for r in 0..<length {
            kernels.add(enc.h.base + r * d, kept[r] ? weights.keptEmbed.base : weights.maskedEmbed.base, n: d)
        }
        TransformerStack.forward(weights.encoder, config: config, run: run, cache: nil, rope: rope, workspace: enc,
                                 kernels: kernels)
        let pre = FloatBuffer(count: length * config.preQuantDim)
        GEMM.linear(enc.xn.base, ldx: d, rows: length, weight: weights.preQuant, into: pre.base, ldy: config.preQuantDim)
        let z = FloatBuffer(count: length * config.codeDim)
        let codes = bottleneck(pre: pre.base, rows: length, kept: kept, z: z.base)

        // Decoder.
        let dec = StackWorkspace(width: d, inner: config.intermediateSize, layers: config.numDecoderLayers,
                                 precision: precision)
        dec.ensure(rows: length)
        GEMM.linear(z.base, ldx: config.codeDim, rows: length, weight: weights.postQuant, into: dec.h.base, ldy: d)
        TransformerStack.forward(weights.decoder, config: config, run: run, cache: nil, rope: rope, workspace: dec,
                                 kernels: kernels)
        let recon = FloatBuffer(count: length * p)
        GEMM.linear(dec.xn.base, ldx: d, rows: length, weight: weights.outProj, into: recon.base, ldy: p)
        kernels.tanh(recon.base, recon.base, n: length * p)
        return SequenceOutput(recon: recon.toArray(), z: z.toArray(), codes: codes)
    }

    /// The bottleneck on `rows` rows of pre_quant output: FSQ codes (or the VAE mean) into z,
    /// zeroed where the token is not kept. Returns the FSQ indices (masked index where not kept),
    /// or nil for a VAE.
    func bottleneck(pre: UnsafePointer<Float>, rows: Int, kept: [Bool], z: UnsafeMutablePointer<Float>) -> [Int32]? {
        let dim = config.codeDim
        var indices: [Int32]?
        if config.isFSQ {
            var idx = [Int32](repeating: 0, count: rows)
            kernels.fsq(pre, ldz: dim, rows: rows, levels: fsqLevels, codes: z, ldc: dim, indices: &idx)
            indices = idx
        } else {
            for r in 0..<rows { (z + r * dim).update(from: pre + r * config.preQuantDim, count: dim) }
        }
        let masked = config.maskedIndex
        for r in 0..<rows where !kept[r] {
            (z + r * dim).update(repeating: 0, count: dim)
            indices?[r] = masked
        }
        return indices
    }
}
