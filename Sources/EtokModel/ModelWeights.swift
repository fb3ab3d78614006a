// ModelWeights: the tensors of one ElasticTok model, named 1:1 as the official flax parameters
// ('params/encoder/in_proj/kernel', ...), loaded strictly from safetensors and laid out for the
// engine (wq|wk|wv fused into one (D, 3D) kernel, w1|w3 into one (D, 2F) kernel).
import EtokTensor

/// One pre-norm transformer block: attention and SwiGLU MLP, no biases.
///
/// Fusion only concatenates columns: column j of `qkv` is column j of wq, wk or wv, so
/// x · qkv computes the three official products (OpenBLAS may order the sums differently
/// from three separate calls, within float rounding). The four kernels are in the model's
/// precision (bf16: packed, no float32 copy kept); norms stay float32.
public final class LayerWeights {
    /// attention_norm/kernel (D).
    public let attentionNorm: FloatBuffer
    /// [wq | wk | wv] kernels: (D, 3D).
    public let qkv: LinearWeight
    /// wo kernel: (D, D).
    public let wo: LinearWeight
    /// ffn_norm/kernel (D).
    public let ffnNorm: FloatBuffer
    /// [w1 | w3] kernels: (D, 2F).
    public let w13: LinearWeight
    /// w2 kernel: (F, D).
    public let w2: LinearWeight

    init(attentionNorm: FloatBuffer, qkv: LinearWeight, wo: LinearWeight, ffnNorm: FloatBuffer, w13: LinearWeight,
         w2: LinearWeight) {
        self.attentionNorm = attentionNorm
        self.qkv = qkv
        self.wo = wo
        self.ffnNorm = ffnNorm
        self.w13 = w13
        self.w2 = w2
    }
}

/// The encoder's or the decoder's stack of blocks and its final norm.
public struct StackWeights {
    public let layers: [LayerWeights]
    /// ln_f/kernel (D).
    public let finalNorm: FloatBuffer
}

/// Every weight of a model in the engine's layout: float32, except the stacks' linear layers
/// under `Precision.bf16`. Immutable after loading; safe to share across threads for reading.
public final class ModelWeights: @unchecked Sendable {
    /// What the stacks' linear layers compute in.
    public let precision: Precision
    /// in_proj kernel (patch_dim, D).
    public let inProj: Matrix
    /// is_kept_embed (D) and is_masked_embed (D).
    public let keptEmbed: FloatBuffer
    public let maskedEmbed: FloatBuffer
    public let encoder: StackWeights
    /// pre_quant kernel (D, code_dim) for FSQ, (D, 2·dim) for a VAE.
    public let preQuant: Matrix
    /// post_quant kernel (code_dim, D).
    public let postQuant: Matrix
    public let decoder: StackWeights
    /// out_proj kernel (D, patch_dim).
    public let outProj: Matrix

    init(precision: Precision, inProj: Matrix, keptEmbed: FloatBuffer, maskedEmbed: FloatBuffer, encoder: StackWeights,
         preQuant: Matrix, postQuant: Matrix, decoder: StackWeights, outProj: Matrix) {
        self.precision = precision
        self.inProj = inProj
        self.keptEmbed = keptEmbed
        self.maskedEmbed = maskedEmbed
        self.encoder = encoder
        self.preQuant = preQuant
        self.postQuant = postQuant
        self.decoder = decoder
        self.outProj = outProj
    }

    /// Every tensor a model with `config` has, with its official name and shape, in a fixed order.
    public static func expectedTensors(_ config: ModelConfig) -> [(name: String, shape: [Int])] {
        let d = config.hiddenSize, f = config.intermediateSize
        func block(_ prefix: String) -> [(String, [Int])] {
            [("\(prefix)/attention/wq/kernel", [d, d]), ("\(prefix)/attention/wk/kernel", [d, d]),
             ("\(prefix)/attention/wv/kernel", [d, d]), ("\(prefix)/attention/wo/kernel", [d, d]),
             ("\(prefix)/attention_norm/kernel", [d]), ("\(prefix)/ffn_norm/kernel", [d]),
             ("\(prefix)/feed_forward/w1/kernel", [d, f]), ("\(prefix)/feed_forward/w2/kernel", [f, d]),
             ("\(prefix)/feed_forward/w3/kernel", [d, f])]
        }
        var list: [(String, [Int])] = [
            ("params/encoder/in_proj/kernel", [config.patchDim, d]),
            ("params/encoder/is_kept_embed", [1, d]),
            ("params/encoder/is_masked_embed", [1, d]),
        ]
        for i in 0..<config.numEncoderLayers { list += block("params/encoder/encoder_blocks/\(i)") }
        list += [("params/encoder/ln_f/kernel", [d]), ("params/encoder/pre_quant/kernel", [d, config.preQuantDim]),
                 ("params/decoder/post_quant/kernel", [config.codeDim, d])]
        for i in 0..<config.numDecoderLayers { list += block("params/decoder/decoder_blocks/\(i)") }
        list += [("params/decoder/ln_f/kernel", [d]), ("params/decoder/out_proj/kernel", [d, config.patchDim])]
        return list.map { (name: $0.0, shape: $0.1) }
    }

    /// Loads every tensor of `file` for `config`, strictly: an unknown or missing tensor, a wrong
    /// shape or a dtype other than F32/F16/BF16 throws an error naming the tensor. `precision`
    /// bf16 needs `Precision.bf16Available` (the caller checks).
    public static func load(_ file: SafeTensorsFile, config: ModelConfig, precision: Precision = .fp32) throws -> ModelWeights {
        let expected = expectedTensors(config)
        let wanted = Dictionary(uniqueKeysWithValues: expected.map { ($0.name, $0.shape) })
        for name in file.entries.keys.sorted() where wanted[name] == nil {
            throw ModelError.unknownTensor(file: file.path, name: name)
        }
        for (name, shape) in expected {
            guard let entry = file.entries[name] else { throw ModelError.missingTensor(file: file.path, name: name) }
            if entry.shape != shape {
                throw ModelError.wrongShape(file: file.path, name: name, shape: entry.shape, expected: shape)
            }
            if StorageDType(rawValue: entry.dtype) == nil {
                throw ModelError.wrongDType(file: file.path, name: name, dtype: entry.dtype)
            }
        }
        return try build(config, precision: precision) { name in try file.floats(name) }
    }

    /// Builds weights from a tensor source (name → float32 values in the official shape).
    /// Used by the loader and by `random(config:seed:)`.
    /// Each layer's kernels are fused (and packed, for bf16) as they load, so a bf16 model never
    /// holds more than one layer's float32 kernels.
    static func build(_ config: ModelConfig, precision: Precision,
                      _ tensor: (String) throws -> FloatBuffer) throws -> ModelWeights {
        let d = config.hiddenSize, f = config.intermediateSize
        func matrix(_ name: String, _ rows: Int, _ cols: Int) throws -> Matrix {
            Matrix(rows: rows, cols: cols, storage: try tensor(name))
        }
        func concatColumns(_ parts: [Matrix]) -> Matrix {
            let rows = parts[0].rows, cols = parts.reduce(0) { $0 + $1.cols }
            let out = Matrix(rows: rows, cols: cols)
            for r in 0..<rows {
                var offset = 0
                for p in parts {
                    (out.base + r * cols + offset).update(from: p.base + r * p.cols, count: p.cols)
                    offset += p.cols
                }
            }
            return out
        }
        func stack(_ prefix: String, _ blocks: String, _ count: Int) throws -> StackWeights {
            let layers = try (0..<count).map { i -> LayerWeights in
                let p = "\(prefix)/\(blocks)/\(i)"
                let qkv = concatColumns([try matrix("\(p)/attention/wq/kernel", d, d),
                                         try matrix("\(p)/attention/wk/kernel", d, d),
                                         try matrix("\(p)/attention/wv/kernel", d, d)])
                let w13 = concatColumns([try matrix("\(p)/feed_forward/w1/kernel", d, f),
                                         try matrix("\(p)/feed_forward/w3/kernel", d, f)])
                return LayerWeights(attentionNorm: try tensor("\(p)/attention_norm/kernel"),
                                    qkv: LinearWeight(qkv, precision: precision),
                                    wo: LinearWeight(try matrix("\(p)/attention/wo/kernel", d, d), precision: precision),
                                    ffnNorm: try tensor("\(p)/ffn_norm/kernel"), w13: LinearWeight(w13, precision: precision),
                                    w2: LinearWeight(try matrix("\(p)/feed_forward/w2/kernel", f, d), precision: precision))
            }
            return StackWeights(layers: layers, finalNorm: try tensor("\(prefix)/ln_f/kernel"))
        }
        return ModelWeights(
            precision: precision,
            inProj: try matrix("params/encoder/in_proj/kernel", config.patchDim, d),
            keptEmbed: try tensor("params/encoder/is_kept_embed"),
            maskedEmbed: try tensor("params/encoder/is_masked_embed"),
            encoder: try stack("params/encoder", "encoder_blocks", config.numEncoderLayers),
            preQuant: try matrix("params/encoder/pre_quant/kernel", d, config.preQuantDim),
            postQuant: try matrix("params/decoder/post_quant/kernel", config.codeDim, d),
            decoder: try stack("params/decoder", "decoder_blocks", config.numDecoderLayers),
            outProj: try matrix("params/decoder/out_proj/kernel", d, config.patchDim))
    }

    /// Random weights (dense kernels and embeddings ~ uniform(±std·√3), norm weights around 1),
    /// reproducible from `seed`. For benchmarks and tests; not a trained model.
    public static func random(_ config: ModelConfig, seed: UInt64, std: Float = 0.02,
                              precision: Precision = .fp32) -> ModelWeights {
        var state = seed
        func next() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(state >> 40) / Float(1 << 24) * 2 - 1
        }
        let shapes = Dictionary(uniqueKeysWithValues: expectedTensors(config).map { ($0.name, $0.shape) })
        // Names are visited in build order, so the values depend only on the seed.
        return try! build(config, precision: precision) { name in
            let count = shapes[name]!.reduce(1, *)
            let isNorm = name.hasSuffix("norm/kernel") || name.hasSuffix("ln_f/kernel")
            return FloatBuffer((0..<count).map { _ in isNorm ? 1 + 0.2 * next() : std * 1.7320508 * next() })
        }
    }

    /// Number of parameters (as stored: the fused kernels count their parts).
    public static func parameterCount(_ config: ModelConfig) -> Int {
        expectedTensors(config).reduce(0) { $0 + $1.shape.reduce(1, *) }
    }

    /// Bytes the stacks' linear-layer kernels hold (the bulk of a model).
    public var linearBytes: Int {
        (encoder.layers + decoder.layers).reduce(0) { $0 + $1.qkv.byteCount + $1.wo.byteCount + $1.w13.byteCount + $1.w2.byteCount }
    }
}
