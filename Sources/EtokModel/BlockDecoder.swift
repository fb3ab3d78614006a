// BlockDecoder: the decoder side of streaming ElasticTok. Decodes one block at a time from z (or
// FSQ indices) given its own committed context.
import EtokTensor

/// The decoder's state for one stream: its committed context (a per-layer KV cache of the
/// decoder's activations for the committed blocks), separate from the encoder's.
///
/// Determinism contract: decoding is bit-identical whether a block is decoded as one of several
/// candidates during the encoder's search (`BlockCoder`) or later from its codes alone, because
/// every GEMM runs on exactly one block's rows (fixed shapes), the elementwise kernels are
/// bit-identical across CPU paths, and z from FSQ indices equals the encoder's codes exactly
/// (both are integer / (L div 2) in float32). So the decoder reproduces exactly the
/// reconstruction the encoder measured, provided the same kernels and OpenBLAS build and
/// thread count are used.
///
/// Use: `decode` a block, `commit()` it, repeat; `reset()` at a chunk boundary (the protocol
/// is `StackSession`'s). Not thread-safe; one per stream.
public final class BlockDecoder: StackSession {
    /// A fresh decoder with an empty context.
    public init(model: ElasticTokModel) {
        super.init(model: model, layers: model.config.numDecoderLayers, ran: "decoded")
    }

    /// Decodes one block from z (tokens × code_dim) → patches (tokens × patch_dim) in [-1, 1].
    /// Not committed: call `commit()` to add it to the context. `keeping`: what the pass keeps of
    /// its keys and values for that (`KeyValueKeeping`); it changes no bit of the result.
    public func decode(z: [Float], keeping: KeyValueKeeping = .all) throws -> [Float] {
        let c = model.config
        guard z.count == c.tokensPerBlock * c.codeDim else {
            throw ModelError.badInput(call: "decode", message: "z of a block is \(c.tokensPerBlock) × \(c.codeDim) values, got \(z.count)")
        }
        return try z.withUnsafeBufferPointer { try decodeCandidates(z: $0.baseAddress!, count: 1, keeping: keeping) }
    }

    /// Decodes one block from FSQ indices (tokens); the masked index decodes as z = 0.
    public func decode(codes: [Int32], keeping: KeyValueKeeping = .all) throws -> [Float] {
        try decode(z: try FSQCodes.codes(indices: codes, levels: model.config, call: "decode"), keeping: keeping)
    }

    /// Decodes `count` candidate blocks stored one after another in `z`, one GEMM set per block.
    /// Returns the reconstructions one after another (count × tokens × patch_dim).
    func decodeCandidates(z: UnsafePointer<Float>, count: Int, keeping: KeyValueKeeping = .all) throws -> [Float] {
        let c = model.config, t = c.tokensPerBlock, d = c.hiddenSize, p = c.patchDim
        try checkRoom(call: "decode")
        try check(keeping, candidates: count, call: "decode")
        let rows = count * t
        workspace.ensure(rows: rows)
        let w = model.weights
        let run = StackRun(groups: count, rowsPerGroup: t, firstPosition: cache.committedTokens, visible: nil)
        TransformerStack.linear(run, z, ldx: c.codeDim, w.postQuant, workspace.h.base, ldy: d)
        TransformerStack.forward(w.decoder, config: c, run: run, cache: cache, rope: model.rope,
                                 workspace: workspace, kernels: model.kernels, threads: passThreads, keeping: keeping)
        var out = [Float](repeating: 0, count: rows * p)
        out.withUnsafeMutableBufferPointer { o in
            TransformerStack.linear(run, workspace.xn.base, ldx: d, w.outProj, o.baseAddress!, ldy: p)
            model.kernels.tanh(o.baseAddress!, o.baseAddress!, n: rows * p)
        }
        pendingCandidates = count
        pendingKeeping = keeping
        return out
    }
}

/// FSQ indices ↔ codes, as the official code defines them.
public enum FSQCodes {
    /// Indices (one per token) → codes (tokens × dims) in [-1, 1]: digit_d = (index / basis_d)
    /// mod L_d, code = (digit − L_d div 2) / (L_d div 2). Throws on an index outside the codebook
    /// or for a non-FSQ model.
    public static func codes(indices: [Int32], levels config: ModelConfig, call: String) throws -> [Float] {
        guard config.isFSQ else { throw ModelError.badInput(call: call, message: "codes need an FSQ model") }
        let levels = config.fsqQuantLevels, size = config.codebookSize
        guard indices.count == config.tokensPerBlock else {
            throw ModelError.badInput(call: call, message: "a block has \(config.tokensPerBlock) codes, got \(indices.count)")
        }
        var out = [Float](repeating: 0, count: indices.count * levels.count)
        for (r, index) in indices.enumerated() {
            guard index >= 0, Int(index) < size else {
                throw ModelError.badInput(call: call, message: "code \(index) at token \(r) is outside 0..<\(size)")
            }
            var rest = Int(index)
            for (dim, l) in levels.enumerated() {
                let half = l / 2
                out[r * levels.count + dim] = Float(rest % l - half) / Float(half)
                rest /= l
            }
        }
        return out
    }
}
