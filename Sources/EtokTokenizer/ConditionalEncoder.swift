import EtokFormat
import EtokModel
import Foundation

/// The encoder's settings: how each block's token budget is chosen and how often the context resets.
public struct EncoderSettings: Sendable, Equatable {
    /// Reconstruction MSE bound on the [−1, 1] pixel scale (0.003 ≈ 31.2 dB PSNR, the paper's).
    public var threshold: Float
    /// How the budget is searched; ignored when `fixedTokens` is set.
    public var search: SearchStrategy
    /// A fixed budget for every block (the fixed-length baseline), or nil for the adaptive search.
    public var fixedTokens: Int?
    /// Smallest and largest budget the search may choose; nil: the model's min_toks / max_toks.
    public var minTokens: Int?
    public var maxTokens: Int?
    /// Blocks per chunk (the context resets between chunks); nil: the model's context length.
    public var chunkBlocks: Int?
    /// Kept counts evaluated together per batched pass by the `linear` search.
    public var batchSize: Int
    /// A hard cap on the tokens of any chunk (`--max-tokens-per-chunk`); nil: none. With the
    /// threshold search, a chunk whose blocks' searched budgets sum above it is re-encoded by
    /// equal slope within the cap (`RateAllocator`); chunks under it are encoded as without it.
    public var maxTokensPerChunk: Int?
    /// A rate or whole-file total instead of the threshold (`RateControl.swift`); nil: the threshold.
    public var rateTarget: RateTarget?
    /// What rate control minimises: the summed MSE (default) or the mean PSNR.
    public var rateObjective: RateObjective
    /// Whether the encoder may write repeat blocks (`RepeatBlock`: 0 tokens, the previous frame
    /// shown again): by the threshold (`searchRepeats`), or where rate control finds them worth
    /// their tokens (`rateRepeats`). Asked for by default; never with a fixed budget.
    public var repeatBlocks: Bool

    /// The defaults: threshold 0.003, `fast` search, the model's token range and context.
    public init(threshold: Float = 0.003, search: SearchStrategy = .fast, fixedTokens: Int? = nil,
                minTokens: Int? = nil, maxTokens: Int? = nil, chunkBlocks: Int? = nil, batchSize: Int = 4,
                maxTokensPerChunk: Int? = nil, rateTarget: RateTarget? = nil, rateObjective: RateObjective = .default,
                repeatBlocks: Bool = true) {
        self.threshold = threshold
        self.search = search
        self.fixedTokens = fixedTokens
        self.minTokens = minTokens
        self.maxTokens = maxTokens
        self.chunkBlocks = chunkBlocks
        self.batchSize = batchSize
        self.maxTokensPerChunk = maxTokensPerChunk
        self.rateTarget = rateTarget
        self.rateObjective = rateObjective
        self.repeatBlocks = repeatBlocks
    }

    /// Whether this encode may write repeat blocks, so its header declares them (§5) and a coded
    /// block keeps at least one token: `searchRepeats` or `rateRepeats`. A fixed budget means that
    /// many tokens every block, so it writes none.
    public var writesRepeats: Bool { searchRepeats || rateRepeats }

    /// Whether the threshold search writes a repeat wherever one meets the threshold (and
    /// `ChunkStartRepeats` at chunk starts): when the threshold sets the budgets (also under a
    /// cap per chunk, for the chunks under it).
    public var searchRepeats: Bool {
        repeatBlocks && fixedTokens == nil && rateTarget == nil
    }

    /// Whether rate control may spend 0 tokens on a block that repeats the one before, where the
    /// allocator predicts that helps (`RateAllocator.bestRepeats`): a rate, a total, or a chunk
    /// over `--max-tokens-per-chunk` encoded again within it. Never at a chunk's first block.
    public var rateRepeats: Bool { repeatBlocks && fixedTokens == nil && (rateTarget != nil || maxTokensPerChunk != nil) }

    /// The threshold (an MSE) a user asks for: `threshold`, else `psnr` in dB (PSNR = 10·log10(4 / MSE)
    /// on the [-1, 1] scale), else the model's calibrated one, else the paper's 0.003. The one
    /// conversion for `etok encode` and the C ABI, so both get the same bits.
    public static func mseThreshold(threshold: Float?, psnr: Double?, model: LoadedModel) -> Float {
        if let threshold { return threshold }
        if let psnr { return Float(4 / pow(10, psnr / 10)) }
        return model.calibratedThreshold ?? EncoderSettings().threshold
    }

    /// The settings resolved against a model, or an error naming the setting that does not fit.
    /// A fixed budget is a search over the one count `fixed...fixed`.
    func resolved(for config: ModelConfig) throws(TokenizerError) -> (search: TokenBudgetSearch, chunkBlocks: Int) {
        var lo = minTokens ?? config.minToks
        let hi = maxTokens ?? config.maxToks
        // The model trains (and the .etok format stores) kept counts from min_toks to max_toks.
        let range = "\(config.minToks) to \(config.maxToks) (the model's min_toks to max_toks)"
        guard lo >= config.minToks, lo <= hi, hi <= config.maxToks else {
            throw .badSetting("token range \(lo) to \(hi) must lie within \(range)")
        }
        if let fixed = fixedTokens, !(config.minToks...config.maxToks).contains(fixed) {
            throw .badSetting("--fixed \(fixed) must lie within \(range)")
        }
        let chunk = chunkBlocks ?? config.contextBlocks
        guard chunk >= 1, chunk <= config.contextBlocks else {
            throw .badSetting("--chunk \(chunk) must lie within 1…\(config.contextBlocks) (the model's context in blocks)")
        }
        // A stream with repeats reads kept 0 as a repeat (§5): a coded block keeps at least one token.
        if writesRepeats && lo == 0 { lo = min(1, hi) }
        guard threshold.isFinite, threshold > 0 else { throw .badSetting("threshold \(threshold) must be a positive MSE") }
        guard batchSize >= 1 else { throw .badSetting("batch size must be at least 1") }
        try validateRateControl(lo: fixedTokens ?? lo, hi: fixedTokens ?? hi, chunkBlocks: chunk)
        let search = TokenBudgetSearch(strategy: search, threshold: threshold, minTokens: fixedTokens ?? lo,
                                       maxTokens: fixedTokens ?? hi, batchSize: batchSize)
        return (search, chunk)
    }
}

/// One encoded block: its budget and what the encoder measured. Its tokens are in the chunk.
public struct BlockResult: Sendable {
    /// Index of the block in the stream.
    public var index: Int
    /// Presentation time of its first frame (source time base) and its frame count.
    public var pts: Int64
    public var frames: Int
    /// The chosen kept count (token budget).
    public var keptTokens: Int
    /// The reconstruction MSE the encoder measured at `keptTokens` — exactly what a decoder gets.
    public var mse: Float
    /// Whether `mse` meets the threshold (false only at the largest budget).
    public var meetsThreshold: Bool
    /// Batched forward passes and kept counts evaluated for this block; `passes` includes the one
    /// that runs the chosen count again when its keys and values had no room to wait
    /// (`ConditionalEncoder.ContextRoom`).
    public var passes: Int
    public var evaluations: Int
    /// Under rate control, the MSE the allocator predicted from the block's measured curve (the
    /// curve was measured with the chunk's earlier blocks at provisional counts; `mse` is the
    /// committed one); nil otherwise.
    public var predictedMSE: Float? = nil
    /// A repeat block (`RepeatBlock`): 0 tokens, the previous block's last frame shown again, no
    /// model pass.
    public var isRepeat = false
}

/// One encoded chunk: the chunk as the writer stores it, and each block's search figures.
public struct EncodedChunk: Sendable {
    public var results: [BlockResult]
    public var chunk: Chunk
    /// From a parallel worker to `ChunkStartRepeats`, when the encode writes repeats; nil after it.
    var carry: RepeatCarry? = nil

    public init(results: [BlockResult], chunk: Chunk) {
        self.results = results
        self.chunk = chunk
    }
}

/// The conditional encoder: encodes a chunk block by block, each given the chunk's earlier
/// blocks as context, choosing for each the smallest kept count whose reconstruction error meets
/// the threshold (`TokenBudgetSearch`).
///
/// A chunk encodes on its own: the context starts empty and the search's first hint comes from
/// nothing outside the chunk, so the result is the same whichever encoder, thread or order handles
/// it (chunks can be encoded in parallel with identical output). The one input from outside is
/// the previous chunk's last frame for repeats at the chunk's start, given only by the serial
/// `ChunkStartRepeats` (`encodeChunk(_:firstBlock:after:measured:)`). Which frames form a chunk
/// and how its blocks are numbered is the caller's (`EncodeRun`'s chunk stage).
///
/// Owns the model's encoder and decoder contexts. Not thread-safe: one thread at a time (it may
/// move between threads, hence `Sendable`); parallel chunks use one encoder each.
public final class ConditionalEncoder: @unchecked Sendable {
    public let model: ElasticTokModel
    public let settings: EncoderSettings
    let search: TokenBudgetSearch
    /// Blocks per chunk, at most.
    public let chunkBlocks: Int
    let coder: BlockCoder
    let decoder: BlockDecoder

    /// An encoder for `model` with `settings` (validated against the model).
    public init(model: ElasticTokModel, settings: EncoderSettings) throws {
        self.model = model
        self.settings = settings
        (search, chunkBlocks) = try settings.resolved(for: model.config)
        coder = BlockCoder(model: model)
        decoder = coder.decoder
    }

    /// Threads each pass splits into (`ThreadPolicy.passThreads`); changes no bit.
    public var passThreads: Int {
        get { coder.encoder.threads }
        set { coder.encoder.threads = newValue; coder.decoder.threads = newValue }
    }

    /// One block's input: patches (tokens × patch_dim in [−1, 1]), first pts, frame count.
    public typealias BlockInput = (patches: [Float], pts: Int64, frames: Int)

    /// Encodes `blocks` (1 … `chunkBlocks` of them) as one chunk whose first block is stream block
    /// `firstBlock`, each block at the threshold; a chunk over `settings.maxTokensPerChunk` is
    /// encoded again within it (`encodeChunk(_:firstBlock:plan:)`).
    public func encodeChunk(_ blocks: [BlockInput], firstBlock: Int) throws -> EncodedChunk {
        let encoded = try encodeChunk(blocks, firstBlock: firstBlock, measured: { _, _ in })
        return try capped(encoded, blocks)
    }

    /// As `encodeChunk(_:firstBlock:)`, handing each block's committed reconstruction (tokens ×
    /// patch_dim) to `measured` with the block's index in the chunk.
    ///
    /// `lastShown`: the reconstruction of the stream's block before the chunk (the previous
    /// chunk's last block), when the caller knows it (`ChunkStartRepeats`): the chunk's leading
    /// blocks may then be repeat blocks showing its last frame (docs/etok-format.md §5). The
    /// chunk's coded blocks still start with an empty context. Nil: a chunk that starts coded.
    func encodeChunk(_ blocks: [BlockInput], firstBlock: Int, after lastShown: [Float]? = nil,
                     measured: (Int, [Float]) -> Void) throws -> EncodedChunk {
        try encodeBlocks(blocks, firstBlock: firstBlock, after: lastShown, plan: { _ in .search(self.search) }, measured: measured)
    }

    /// How `encodeBlocks` encodes one block.
    enum BlockPlan {
        /// A repeat block (rate control plans one only after the chunk's first block).
        case repeatBlock
        /// The threshold search (with repeats where it finds them, and keyframes: `searchRepeats`).
        case search(TokenBudgetSearch)
        /// Exactly this many tokens (rate control's commit): no repeat, no keyframe.
        case count(Int)
        /// FSQ: one batched pass over `counts` (ascending), then `pick` their MSEs → the index kept,
        /// committed from that pass (`ClosedLoopCommit`).
        case pick(counts: [Int], pick: ([Float]) -> Int)
    }

    /// Encodes `blocks` as one chunk, block `k` as `plan(k)` says; `lastShown` as in
    /// `encodeChunk(_:firstBlock:after:measured:)`.
    func encodeBlocks(_ blocks: [BlockInput], firstBlock: Int, after lastShown: [Float]? = nil,
                      plan: (Int) throws -> BlockPlan, measured: (Int, [Float]) -> Void) throws -> EncodedChunk {
        precondition(!blocks.isEmpty && blocks.count <= chunkBlocks, "a chunk holds 1…\(chunkBlocks) blocks")
        coder.reset()
        var results: [BlockResult] = [], records: [BlockRecord] = [], tokens: [BlockTokens] = []
        var previous: [Float]? = lastShown
        for (k, block) in blocks.enumerated() {
            let blockPlan = try plan(k)
            var planned = false, searched = false
            switch blockPlan {
            case .repeatBlock: planned = true
            case .search: searched = true
            case .count, .pick: break
            }
            // A repeat block (`RepeatBlock`): no model pass, nothing committed to the contexts.
            // Rate control plans one; the threshold search writes one when the previous
            // reconstruction already meets the threshold.
            if planned || (searched && settings.searchRepeats), let last = previous {
                let (mse, recon) = try RepeatBlock.mse(of: block.patches, after: last, config: model.config)
                if planned || mse <= search.threshold {
                    tokens.append(model.config.isFSQ ? .fsq([]) : .vae([]))
                    measured(k, recon)
                    results.append(BlockResult(index: firstBlock + k, pts: block.pts, frames: block.frames, keptTokens: 0,
                                               mse: mse, meetsThreshold: mse <= self.search.threshold, passes: 0, evaluations: 0,
                                               isRepeat: true))
                    records.append(BlockRecord(kept: 0, frames: block.frames, pts: block.pts, mse: mse))
                    previous = recon
                    continue
                }
            }
            precondition(!planned, "a chunk's first block is coded")
            // The previous coded block's budget is the best guess for this one.
            let hint = results.last(where: { !$0.isRepeat })?.keptTokens
            // How much of the context the pass may keep (`ContextRoom`): by the block's position in
            // the chunk (repeats only leave more room: they commit nothing).
            let room = ContextRoom(block: k, of: blocks.count, spareSlot: blockKeyValueBytes <= spareSlotBytes)
            let choice: Choice
            switch blockPlan {
            case .search(let blockSearch) where model.config.isFSQ:
                // Keyframe lookahead (`RepeatLookahead`) where the next block is close to this one;
                // not for a model whose block of keys and values is large (over `spareSlotBytes`:
                // its pass over several counts would keep each one's, past the memory bound).
                let later = blocks[(k + 1)...]
                let lookahead: (followers: Int, max: Int, run: ([Float]) throws -> Int)?
                if settings.searchRepeats, blockKeyValueBytes <= spareSlotBytes, let next = later.first,
                   try RepeatBlock.mse(of: next.patches, after: block.patches, config: model.config).mse < search.threshold {
                    lookahead = (later.count, blockSearch.maxTokens, { recon in
                        var run = 0
                        for b in later {
                            guard try RepeatBlock.mse(of: b.patches, after: recon, config: self.model.config).mse <= self.search.threshold
                            else { break }
                            run += 1
                        }
                        return run
                    })
                } else {
                    lookahead = nil
                }
                choice = try encodeFSQ(patches: block.patches, room: room, lookahead: lookahead) { evaluate, adopt in
                    try blockSearch.choose(hint: hint, evaluate: evaluate, adopt: adopt)
                }
            case .search(let blockSearch):
                choice = try encodeVAE(patches: block.patches, hint: hint, search: blockSearch, commit: room != .none)
            case .count(let n):
                let fixed = TokenBudgetSearch(strategy: .fast, threshold: search.threshold, minTokens: n, maxTokens: n)
                choice = model.config.isFSQ
                    ? try encodeFSQ(patches: block.patches, room: room) { evaluate, adopt in
                        try fixed.choose(hint: hint, evaluate: evaluate, adopt: adopt)
                    }
                    : try encodeVAE(patches: block.patches, hint: hint, search: fixed, commit: room != .none)
            case .pick(let counts, let pick):
                precondition(model.config.isFSQ, "a one-pass pick is FSQ's")
                choice = try encodeFSQ(patches: block.patches, room: room) { evaluate, adopt in
                    let mse = try evaluate(counts)
                    let i = pick(mse)
                    try adopt(i)
                    return TokenBudgetChoice(keptTokens: counts[i], mse: mse[i], meetsThreshold: mse[i] <= self.search.threshold,
                                             passes: 1, evaluations: counts.count)
                }
            case .repeatBlock:
                preconditionFailure("handled above")
            }
            tokens.append(choice.tokens)
            measured(k, choice.reconstruction)
            previous = choice.reconstruction
            let c = choice.search
            results.append(BlockResult(index: firstBlock + k, pts: block.pts, frames: block.frames,
                                       keptTokens: c.keptTokens, mse: choice.mse, meetsThreshold: choice.mse <= self.search.threshold,
                                       passes: c.passes, evaluations: c.evaluations))
            records.append(BlockRecord(kept: c.keptTokens, frames: block.frames, pts: block.pts, mse: choice.mse))
        }
        let chunk = Chunk(firstBlock: firstBlock, blocks: records,
                          tokens: try ChunkTokens(blocks: tokens, bottleneck: model.config.bottleneck))
        return EncodedChunk(results: results, chunk: chunk)
    }

    /// A block's chosen candidate: the search's figures, the MSE of the committed reconstruction
    /// (what a decoder reproduces), the kept tokens (FSQ indices, or VAE latents rounded to
    /// binary16, token-major) and the reconstruction itself.
    struct Choice {
        var search: TokenBudgetChoice
        var mse: Float
        var tokens: BlockTokens
        var reconstruction: [Float]
    }

    /// Where a block's chosen candidate's keys and values may wait for its commit, in the
    /// context's buffers (a block per stack and layer each): what bounds a large model's memory,
    /// since a written page stays resident and the peak is the chunk's last blocks'. With n blocks
    /// in the chunk, blocks 0 … n−2 are committed into slots the chunk fills anyway, so block k
    /// may also use the slot after its own while k + 1 ≤ n − 2: the peak is n − 1 blocks of
    /// keys and values per stack plus one layer's (keeping every pass's until its commit: n).
    enum ContextRoom {
        /// The chunk's last block: never context, nothing kept (one layer at a time).
        case none
        /// The second-to-last, when a block's keys and values are large (`spareSlotBytes`): one
        /// slot, which each pass takes over; when the chosen count is not the last pass's it runs
        /// again (one pass, counted in the block's passes: on the bundled model's samples, 10-70%
        /// of chunks, since the fast search's last pass usually fails just below its answer).
        case oneSlot
        /// Earlier blocks (and the second-to-last of a small model): two slots; each
        /// single-candidate pass writes into the one not staged.
        case twoSlots

        init(block k: Int, of n: Int, spareSlot: Bool) {
            self = k == n - 1 ? .none : (k + 2 < n || spareSlot) ? .twoSlots : .oneSlot
        }
    }

    /// Largest block of keys and values (both stacks, every layer) for which the second-to-last
    /// block of a chunk keeps a second slot (one block more at the peak) rather than run its
    /// chosen count again: 64 MiB, far above the bundled model's 4.2 MB (float32), far below the official
    /// 200M model's 336 MB in bf16. Settable for tests.
    var spareSlotBytes = 64 << 20

    /// Bytes of one block of keys and values of both stacks in the model's precision.
    var blockKeyValueBytes: Int {
        let c = model.config
        return c.tokensPerBlock * 2 * c.hiddenSize * (c.numEncoderLayers + c.numDecoderLayers) * (model.precision == .bf16 ? 2 : 4)
    }

    /// What a pass of `candidates` counts keeps of its keys and values in `room`: a single
    /// candidate goes straight into a context slot; several (the `linear` search's batches)
    /// keep every layer's in the workspace, a block per candidate, staged by copy.
    func keeping(candidates: Int, room: ContextRoom) -> KeyValueKeeping {
        switch room {
        case .none: .discard
        case _ where candidates > 1: .all
        case .oneSlot: .slot(0)
        case .twoSlots: .slot(coder.stagedSlot == 0 ? 1 : 0)
        }
    }

    /// FSQ: candidates are encoded and decoded together by BlockCoder (each on its own fixed-shape
    /// GEMMs). The candidate the search adopts after a pass is staged in the coder, so the chosen
    /// one is committed from the pass that measured it, without running it again, unless `room`
    /// had no slot left for it (`ContextRoom.oneSlot`): then it runs again alone, bit-identical
    /// (the determinism contract), and the pass is counted in the choice's `passes`.
    /// `choose`: the search (or pick) over the `evaluate` and `adopt` closures it is given.
    /// `lookahead`: where the keyframe lookahead applies (`RepeatLookahead`: one more batched pass
    /// may raise the count, up to `max`), the chunk's blocks after this one and the run of them a
    /// reconstruction would repeat.
    func encodeFSQ(patches: [Float], room: ContextRoom = .twoSlots,
                   lookahead: (followers: Int, max: Int, run: ([Float]) throws -> Int)? = nil,
                   choose: (_ evaluate: ([Int]) throws -> [Float], _ adopt: (Int) throws -> Void) throws -> TokenBudgetChoice)
        throws -> Choice {
        var pass: [Reconstruction] = []
        var staged: Reconstruction?
        let commit = room != .none
        let evaluate = { (counts: [Int]) throws -> [Float] in
            pass = try self.coder.reconstruct(patches: patches, keptCounts: counts,
                                              keeping: self.keeping(candidates: counts.count, room: room))
            return pass.map(\.mse)
        }
        let adopt = { (i: Int) throws in
            if commit { try self.coder.stage(candidate: i) }
            staged = pass[i]
        }
        var choice = try choose(evaluate, adopt)
        if let lookahead, choice.meetsThreshold, let chosen = staged {
            let n = choice.keptTokens, counts = RepeatLookahead.counts(n: n, max: lookahead.max)
            let base = try lookahead.run(chosen.recon)
            if !counts.isEmpty, base < lookahead.followers {
                let mse = try evaluate(counts)
                choice.passes += 1
                choice.evaluations += counts.count
                let candidates = try counts.indices.map { i in (tokens: counts[i], mse: mse[i], run: try lookahead.run(pass[i].recon)) }
                if let i = RepeatLookahead.pick(n: n, base: base, candidates: candidates, threshold: search.threshold) {
                    try adopt(i)
                    choice.keptTokens = counts[i]
                    choice.mse = mse[i]
                }
            }
        }
        if commit {
            // A later pass took the staged candidate's slot: run it again.
            if coder.stagedSlot == nil {
                _ = try coder.reconstruct(patches: patches, keptCounts: [choice.keptTokens], keeping: .slot(0))
                try coder.stage(candidate: 0)
                choice.passes += 1
            }
            try coder.commitStaged()
        }
        let r = staged!
        return Choice(search: choice, mse: r.mse, tokens: .fsq(Array(r.codes![0..<choice.keptTokens])),
                      reconstruction: r.recon)
    }

    /// VAE: latents are stored as binary16, so each candidate is decoded from its rounded latents
    /// (what a decoder will read), one at a time; the chosen one is encoded and decoded again
    /// alone and committed (the decoder stages only from its last call, which decoded another
    /// candidate). So the search's passes keep no keys and values, and the last one keeps its
    /// own in context slot 0.
    func encodeVAE(patches: [Float], hint: Int?, search: TokenBudgetSearch, commit: Bool = true) throws -> Choice {
        let c = model.config
        let choice = try search.choose(hint: hint, evaluate: { counts in
            let encoded = try self.coder.encoder.encode(patches: patches, keptCounts: counts, keeping: .discard)
            return try encoded.map { e in
                meanSquaredError(try self.decoder.decode(z: e.z.map(Float16Bits.round), keeping: .discard), patches)
            }
        })
        let n = choice.keptTokens
        let keeping: KeyValueKeeping = commit ? .slot(0) : .discard
        let encoded = try coder.encoder.encode(patches: patches, keptCounts: [n], keeping: keeping)
        if commit { try coder.encoder.commit(candidate: 0) }
        let z = encoded[0].z.map(Float16Bits.round)
        let recon = try decoder.decode(z: z, keeping: keeping)
        if commit { try decoder.commit() }
        // The committed reconstruction is the one a decoder reproduces; report its error.
        let mse = meanSquaredError(recon, patches)
        return Choice(search: choice, mse: mse, tokens: .vae(Array(z[0..<(n * c.codeDim)])), reconstruction: recon)
    }
}

/// Mean over all values of (a − b)², accumulated in double (the paper's MSE on the [−1, 1] scale).
func meanSquaredError(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count)
    var sum = 0.0
    for i in 0..<a.count {
        let d = Double(a[i]) - Double(b[i])
        sum += d * d
    }
    return Float(sum / Double(max(1, a.count)))
}
