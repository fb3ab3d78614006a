// BlockEncoder: the encoder side of streaming ElasticTok. Encodes one block at a time given the
// committed context (earlier blocks of the chunk, at the kept counts chosen for them), for one or
// several kept counts at once (candidates as batch rows sharing the context cache).
import EtokTensor

/// How candidate rows meet the GEMMs in the encoder.
public enum CandidateBatching: Sendable {
    /// One GEMM per candidate: a candidate's z is bit-identical whatever else runs beside it
    /// (the default; the engine's determinism contract).
    case perCandidate
    /// One GEMM over all candidates' rows: a little faster; a candidate's z may differ from a
    /// one-at-a-time run in the last bits (OpenBLAS rounds rows differently for other m).
    case stacked
}

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
/// Use: `encode` a block for some kept counts, `commit(candidate:)` the chosen one, repeat;
/// or `stage(candidate:)` one, `encode` the same block again, and `commitStaged()` at the end;
/// `reset()` at a chunk boundary. Not thread-safe; one per stream. Cost per call: the encoder on
/// candidates × tokens rows, attending to the committed tokens (see TransformerStack).
public final class BlockEncoder {
    public let model: ElasticTokModel
    /// How candidates share GEMMs.
    public var batching: CandidateBatching
    let cache: ContextCache
    let workspace: StackWorkspace
    private var input: FloatBuffer
    private var pre = FloatBuffer(count: 0)
    private var pendingCandidates = 0

    /// A fresh encoder with an empty context.
    public init(model: ElasticTokModel, batching: CandidateBatching = .perCandidate) {
        let c = model.config
        self.model = model
        self.batching = batching
        cache = ContextCache(layers: c.numEncoderLayers, capacityTokens: c.maxSequenceLength, width: c.hiddenSize)
        workspace = StackWorkspace(width: c.hiddenSize, inner: c.intermediateSize, layers: c.numEncoderLayers)
        input = FloatBuffer(count: c.tokensPerBlock * c.hiddenSize)
    }

    /// Blocks committed since the last reset.
    public var committedBlocks: Int { cache.committedTokens / model.config.tokensPerBlock }

    /// Encodes one block (tokens × patch_dim patches in [-1, 1]) at each kept count in
    /// `keptCounts`, attending to the committed context. The block is not committed: call
    /// `commit(candidate:)` with the index of the chosen count.
    public func encode(patches: [Float], keptCounts: [Int]) throws -> [EncodedBlock] {
        let c = model.config, t = c.tokensPerBlock, d = c.hiddenSize, call = "encode"
        guard patches.count == t * c.patchDim else {
            throw ModelError.badInput(call: call, message: "a block is \(t) × \(c.patchDim) values, got \(patches.count)")
        }
        guard !keptCounts.isEmpty, keptCounts.allSatisfy({ (0...t).contains($0) }) else {
            throw ModelError.badInput(call: call, message: "kept counts must be in 0...\(t), got \(keptCounts)")
        }
        guard cache.committedTokens + t <= c.maxSequenceLength else {
            throw ModelError.contextFull(call: call, committedBlocks: committedBlocks, capacityBlocks: c.contextBlocks)
        }
        let candidates = keptCounts.count, rows = candidates * t
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
        let run = StackRun(groups: candidates, rowsPerGroup: t, firstPosition: cache.committedTokens, visible: nil,
                           perGroupGEMM: batching == .perCandidate)
        TransformerStack.forward(w.encoder, config: c, run: run, cache: cache, rope: model.rope,
                                 workspace: workspace, kernels: k)
        TransformerStack.linear(run, workspace.xn.base, ldx: d, w.preQuant, pre.base, ldy: c.preQuantDim)
        let z = FloatBuffer(count: rows * c.codeDim)
        let codes = model.bottleneck(pre: pre.base, rows: rows, kept: kept, z: z.base)
        pendingCandidates = candidates
        return keptCounts.enumerated().map { i, n in
            EncodedBlock(keptCount: n,
                         z: Array(UnsafeBufferPointer(start: z.base + i * t * c.codeDim, count: t * c.codeDim)),
                         codes: codes.map { Array($0[(i * t)..<((i + 1) * t)]) })
        }
    }

    /// Commits candidate `index` of the last `encode` call to the context (its keys and values
    /// in every layer). One commit per encode call.
    public func commit(candidate index: Int) throws {
        try stage(candidate: index, call: "commit")
        try commitStaged()
    }

    /// Copies candidate `index` of the last `encode` call aside, as the block to commit later
    /// with `commitStaged()`; later `encode` calls (more candidates of the same block) leave it
    /// untouched. Staging again replaces it.
    public func stage(candidate index: Int) throws {
        try stage(candidate: index, call: "stage")
    }

    private func stage(candidate index: Int, call: String) throws {
        try cache.stage(candidate: index, of: pendingCandidates, tokens: model.config.tokensPerBlock,
                        from: workspace, call: call, ran: "encoded")
    }

    /// Commits the staged candidate to the context.
    public func commitStaged() throws {
        try cache.commitStaged(call: "commitStaged")
        pendingCandidates = 0
    }

    /// Forgets the context (a chunk boundary) and any pending candidates.
    public func reset() {
        cache.reset()
        pendingCandidates = 0
    }
}
