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
/// `commitStaged()` at the end; `reset()` at a chunk boundary. Not thread-safe; one per stream.
public class StackSession {
    public let model: ElasticTokModel
    let cache: ContextCache
    let workspace: StackWorkspace
    /// Candidates of the last pass not yet committed (0 after a commit or reset).
    var pendingCandidates = 0
    /// Threads one pass may use (attention heads and query tiles, candidates' GEMMs; see
    /// TransformerStack). The results do not depend on it. Default: every active processor.
    public var threads = max(1, ProcessInfo.processInfo.activeProcessorCount)
    /// The threads a pass splits into now: `threads` while OpenBLAS runs one thread per call
    /// (encode and decode, `ThreadPolicy`), else 1, so that the pass's threads and OpenBLAS's
    /// own do not pile up on the same cores.
    var passThreads: Int { BLASThreads.current > 1 ? 1 : threads }
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

    /// Copies candidate `index` of the last pass aside, as the block to commit later with
    /// `commitStaged()`; later passes (more candidates of the same block) leave it untouched.
    /// Staging again replaces it.
    public func stage(candidate index: Int) throws {
        try stage(candidate: index, call: "stage")
    }

    private func stage(candidate index: Int, call: String) throws {
        try cache.stage(candidate: index, of: pendingCandidates, tokens: model.config.tokensPerBlock,
                        from: workspace, call: call, ran: ran)
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
