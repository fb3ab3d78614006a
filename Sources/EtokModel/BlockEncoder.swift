// BlockEncoder: the encoder side of streaming ElasticTok. Encodes one block at a time given the
// committed context (earlier blocks of the chunk, at the kept counts chosen for them), for one or
// several kept counts at once (candidates as batch rows sharing the context cache).
import EtokTensor

/// One block encoded at one kept count.
public struct EncodedBlock: Sendable {
    /// The kept count (the first `keptCount` tokens are kept).
    public var keptCount: Int
    /// z (tokens × code_dim): FSQ codes in [-1, 1] or the VAE mean; zero where not kept.
    public var z: [Float]
    /// FSQ indices (tokens), the masked index where not kept; nil for a VAE.
    public var codes: [Int32]?
}

/// The encoder's state for one stream: its committed context (a per-layer KV cache of the
/// encoder's activations for the committed blocks). Separate from the decoder's context.
///
/// Use: `encode` a block for some kept counts, then commit or stage the chosen one
/// (`StackSession`'s protocol); `reset()` at a chunk boundary. Not thread-safe; one per stream.
/// Cost per call: the encoder on candidates × tokens rows, attending to the committed tokens
/// (see TransformerStack). Every GEMM runs on one candidate's rows, so a candidate's z is
/// bit-identical whatever else runs beside it (the engine's determinism contract).
public final class BlockEncoder: StackSession {
    private var input: FloatBuffer
    private var pre = FloatBuffer(count: 0)

    /// A fresh encoder with an empty context.
    public init(model: ElasticTokModel) {
        let c = model.config
        input = FloatBuffer(count: c.tokensPerBlock * c.hiddenSize)
        super.init(model: model, layers: c.numEncoderLayers, ran: "encoded")
    }

    /// Encodes one block (tokens × patch_dim patches in [-1, 1]) at each kept count in
    /// `keptCounts`, attending to the committed context. The block is not committed: call
    /// `commit(candidate:)` with the index of the chosen count. `keeping`: what the pass keeps of
    /// its keys and values for that (`KeyValueKeeping`); it changes no bit of the result.
    public func encode(patches: [Float], keptCounts: [Int], keeping: KeyValueKeeping = .all) throws -> [EncodedBlock] {
        let c = model.config, t = c.tokensPerBlock, d = c.hiddenSize, call = "encode"
        guard patches.count == t * c.patchDim else {
            throw ModelError.badInput(call: call, message: "a block is \(t) × \(c.patchDim) values, got \(patches.count)")
        }
        guard !keptCounts.isEmpty, keptCounts.allSatisfy({ (0...t).contains($0) }) else {
            throw ModelError.badInput(call: call, message: "kept counts must be in 0...\(t), got \(keptCounts)")
        }
        try checkRoom(call: call)
        let candidates = keptCounts.count, rows = candidates * t
        try check(keeping, candidates: candidates, call: call)
        workspace.ensure(rows: rows)
        if pre.count < rows * c.preQuantDim { pre = FloatBuffer(count: rows * c.preQuantDim) }
        let w = model.weights, k = model.kernels
        // The patches are the same for every candidate: project them once.
        patches.withUnsafeBufferPointer { x in
            GEMM.linear(x.baseAddress!, ldx: c.patchDim, rows: t, weight: w.inProj, into: input.base, ldy: d)
        }
        var kept = [Bool](repeating: false, count: rows)
        for (i, n) in keptCounts.enumerated() {
            for r in 0..<t {
                let row = workspace.h.base + (i * t + r) * d
                row.update(from: input.base + r * d, count: d)
                kept[i * t + r] = r < n
                k.add(row, r < n ? w.keptEmbed.base : w.maskedEmbed.base, n: d)
            }
        }
        let run = StackRun(groups: candidates, rowsPerGroup: t, firstPosition: cache.committedTokens, visible: nil)
        TransformerStack.forward(w.encoder, config: c, run: run, cache: cache, rope: model.rope,
                                 workspace: workspace, kernels: k, threads: passThreads, keeping: keeping)
        TransformerStack.linear(run, workspace.xn.base, ldx: d, w.preQuant, pre.base, ldy: c.preQuantDim)
        let z = FloatBuffer(count: rows * c.codeDim)
        let codes = model.bottleneck(pre: pre.base, rows: rows, kept: kept, z: z.base)
        pendingCandidates = candidates
        pendingKeeping = keeping
        return keptCounts.enumerated().map { i, n in
            EncodedBlock(keptCount: n,
                         z: Array(UnsafeBufferPointer(start: z.base + i * t * c.codeDim, count: t * c.codeDim)),
                         codes: codes.map { Array($0[(i * t)..<((i + 1) * t)]) })
        }
    }
}
