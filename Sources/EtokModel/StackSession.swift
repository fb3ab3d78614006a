// StackSession: what the encoder's and the decoder's streaming sessions share: one stack's
// committed context, its scratch workspace, and the stage / commit / reset protocol over the
// candidates of the last pass.
import EtokTensor
import Foundation

/// One stack's streaming state: a per-layer KV cache of the committed blocks (`ContextCache`),
/// the workspace of the last pass, and how many candidates that pass ran. `BlockEncoder` and
/// `BlockDecoder` are its two kinds; they add the pass itself.
///
/// Use: run a pass over one block (one or several candidates), then `commit(candidate:)` the
/// chosen one; or `stage(candidate:)` it, run more passes over the same block, and
/// `commitStaged()` at the end; `reset()` at a chunk boundary. What a pass keeps of its keys
/// and values for a commit (`KeyValueKeeping`) is the caller's choice: it bounds the memory.
/// Not thread-safe; one per stream.
public class StackSession {
    public let model: ElasticTokModel
    let cache: ContextCache
    let workspace: StackWorkspace
    /// Candidates of the last pass not yet committed (0 after a commit or reset).
    var pendingCandidates = 0
    /// What the last pass kept of its keys and values (what can be staged from it).
    var pendingKeeping = KeyValueKeeping.discard
    /// Threads one pass may use (attention heads and query tiles, candidates' GEMMs; see
    /// TransformerStack). The results do not depend on it. Default: every active processor.
    public var threads = max(1, ProcessInfo.processInfo.activeProcessorCount)
    /// The threads a pass splits into now. fp32: `threads` while OpenBLAS runs one thread per
    /// call (encode and decode, `ThreadPolicy`), else 1, so that the pass's threads and
    /// OpenBLAS's own do not pile up on the same cores. bf16: `threads` (the stacks' products and
    /// attention are etok's own kernels; OpenBLAS only runs the small float32 products outside
    /// the stacks, never at the same time as the pass's threads).
    var passThreads: Int { model.precision == .bf16 || BLASThreads.current <= 1 ? threads : 1 }
    /// What a pass did, for errors ("encoded", "decoded").
    private let ran: String

    init(model: ElasticTokModel, layers: Int, ran: String) {
        let c = model.config
        self.model = model
        self.ran = ran
        cache = ContextCache(layers: layers, capacityTokens: c.maxSequenceLength, width: c.hiddenSize,
                             precision: model.precision)
        workspace = StackWorkspace(width: c.hiddenSize, inner: c.intermediateSize, layers: layers,
                                   precision: model.precision)
    }

    /// Blocks committed since the last reset.
    public var committedBlocks: Int { cache.committedTokens / model.config.tokensPerBlock }

    /// The context slot (0 or 1) holding the staged candidate; nil when none is staged (never
    /// staged, committed, or replaced by a later `.slot` pass over the same slot).
    public var stagedSlot: Int? { cache.stagedSlot }

    /// Most rows × layers of keys and values this session has held (the context's buffers up to
    /// their highest written row, and an `.all` pass's per-layer workspace; one layer's buffers
    /// are not counted): its keys' and values' share of resident memory, in units where a block
    /// of the whole stack is tokens_per_block × layers. For memory accounting in tests.
    public var keyValueLayerRows: Int { cache.touchedTokens * workspace.layers + workspace.keptLayerRows }

    /// Checks that a pass of `candidates` candidates may keep its keys and values as `keeping`.
    func check(_ keeping: KeyValueKeeping, candidates: Int, call: String) throws {
        guard case .slot(let s) = keeping else { return }
        guard candidates == 1, s == 0 || s == 1 else {
            throw ModelError.badInput(call: call, message: "a context slot (0 or 1) holds one candidate, got slot \(s) for \(candidates)")
        }
        let c = model.config
        guard cache.committedTokens + (s + 1) * c.tokensPerBlock <= c.maxSequenceLength else {
            throw ModelError.contextFull(call: call, committedBlocks: committedBlocks, capacityBlocks: c.contextBlocks)
        }
    }

    /// Throws `contextFull` for `call` when one more block does not fit the context.
    func checkRoom(call: String) throws {
        let c = model.config
        guard cache.committedTokens + c.tokensPerBlock <= c.maxSequenceLength else {
            throw ModelError.contextFull(call: call, committedBlocks: committedBlocks, capacityBlocks: c.contextBlocks)
        }
    }

    /// Commits candidate `index` of the last pass to the context (its keys and values in every
    /// layer). One commit per pass.
    public func commit(candidate index: Int = 0) throws {
        try stage(candidate: index, call: "commit")
        try commitStaged()
    }

    /// Sets candidate `index` of the last pass aside, as the block to commit later with
    /// `commitStaged()` (an `.all` pass's is copied into slot 0; a `.slot` pass's is already in
    /// its slot; a `.discard` pass's cannot be). Later passes (more candidates of the same block)
    /// leave it untouched, except a `.slot` pass over its slot. Staging again replaces it.
    public func stage(candidate index: Int) throws {
        try stage(candidate: index, call: "stage")
    }

    private func stage(candidate index: Int, call: String) throws {
        try cache.stage(candidate: index, of: pendingCandidates, tokens: model.config.tokensPerBlock,
                        kept: pendingKeeping, from: workspace, call: call, ran: ran)
    }

    /// Commits the staged candidate to the context.
    public func commitStaged() throws {
        try cache.commitStaged(tokens: model.config.tokensPerBlock, call: "commitStaged")
        pendingCandidates = 0
        pendingKeeping = .discard
    }

    /// Forgets the context (a chunk boundary) and any pending candidates.
    public func reset() {
        cache.reset()
        pendingCandidates = 0
        pendingKeeping = .discard
    }
}
