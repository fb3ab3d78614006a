import EtokFormat
import EtokModel

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

    /// The defaults: threshold 0.003, `fast` search, the model's token range and context.
    public init(threshold: Float = 0.003, search: SearchStrategy = .fast, fixedTokens: Int? = nil,
                minTokens: Int? = nil, maxTokens: Int? = nil, chunkBlocks: Int? = nil, batchSize: Int = 4) {
        self.threshold = threshold
        self.search = search
        self.fixedTokens = fixedTokens
        self.minTokens = minTokens
        self.maxTokens = maxTokens
        self.chunkBlocks = chunkBlocks
        self.batchSize = batchSize
    }

    /// The settings resolved against a model, or an error naming the setting that does not fit.
    func resolved(for config: ModelConfig) throws(TokenizerError) -> (search: TokenBudgetSearch, chunkBlocks: Int, fixed: Int?) {
        let lo = minTokens ?? config.minToks, hi = maxTokens ?? config.maxToks
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
        guard threshold.isFinite, threshold > 0 else { throw .badSetting("threshold \(threshold) must be a positive MSE") }
        guard batchSize >= 1 else { throw .badSetting("batch size must be at least 1") }
        let search = TokenBudgetSearch(strategy: search, threshold: threshold, minTokens: lo, maxTokens: hi,
                                       batchSize: batchSize)
        return (search, chunk, fixedTokens)
    }
}

/// One encoded block: its budget, its kept tokens and what the encoder measured.
public struct BlockResult: Sendable {
    /// Index of the block in the stream.
    public var index: Int
    /// Presentation time of its first frame (source time base) and its frame count.
    public var pts: Int64
    public var frames: Int
    /// The chosen kept count (token budget).
    public var keptTokens: Int
    /// FSQ indices of the kept tokens (FSQ models), or their latents rounded to binary16,
    /// token-major (VAE models).
    public var tokens: KeptTokens
    /// The reconstruction MSE the encoder measured at `keptTokens` — exactly what a decoder gets.
    public var mse: Float
    /// Whether `mse` meets the threshold (false only at the largest budget).
    public var meetsThreshold: Bool
    /// Batched forward passes and kept counts evaluated for this block.
    public var passes: Int
    public var evaluations: Int
    /// The reconstruction (tokens × patch_dim, [−1, 1]) the MSE was measured on.
    public var reconstruction: [Float]
}

/// The kept tokens of one block.
public enum KeptTokens: Sendable, Equatable {
    case fsq([Int32])
    case vae([Float])
}

/// The conditional encoder of one stream: for each block, given the committed earlier blocks of the
/// current chunk, finds the smallest kept count whose reconstruction error meets the threshold,
/// commits the block with it, and groups blocks into chunks (the context resets between chunks).
///
/// Owns the model's encoder and decoder contexts for this stream. Not thread-safe: one thread at a
/// time (it may move between threads, hence `Sendable`); independent chunks may use one encoder
/// each, in parallel.
public final class ConditionalEncoder: @unchecked Sendable {
    public let model: ElasticTokModel
    public let settings: EncoderSettings
    private let search: TokenBudgetSearch
    private let fixedTokens: Int?
    /// Blocks per chunk.
    public let chunkBlocks: Int
    private let coder: BlockCoder
    private let decoder: BlockDecoder
    private var nextBlock = 0
    private var pending: [BlockResult] = []
    private var lastBudget: Int?
    private var chunkFirstBudget: Int?

    /// An encoder for `model` with `settings` (validated against the model).
    public init(model: ElasticTokModel, settings: EncoderSettings) throws {
        self.model = model
        self.settings = settings
        (search, chunkBlocks, fixedTokens) = try settings.resolved(for: model.config)
        coder = BlockCoder(model: model)
        decoder = coder.decoder
    }

    /// Encodes one block (tokens × patch_dim patches in [−1, 1]) and commits it. Returns the block's
    /// result, and the finished chunk when this block completes one.
    public func encode(patches: [Float], pts: Int64, frames: Int) throws -> (BlockResult, Chunk?) {
        let position = pending.count
        // The budget of the previous block is the best guess; a chunk's first block has no context,
        // so it looks like the previous chunk's first block instead.
        let hint = position == 0 ? (chunkFirstBudget ?? lastBudget) : lastBudget
        let result = model.config.isFSQ
            ? try encodeFSQ(patches: patches, hint: hint)
            : try encodeVAE(patches: patches, hint: hint)
        let block = BlockResult(index: nextBlock, pts: pts, frames: frames, keptTokens: result.kept,
                                tokens: result.tokens, mse: result.mse, meetsThreshold: result.mse <= search.threshold,
                                passes: result.choice.passes, evaluations: result.choice.evaluations,
                                reconstruction: result.reconstruction)
        nextBlock += 1
        lastBudget = result.kept
        if position == 0 { chunkFirstBudget = result.kept }
        pending.append(block)
        if pending.count == chunkBlocks {
            return (block, flush())
        }
        return (block, nil)
    }

    /// One block's input: patches (tokens × patch_dim in [−1, 1]), first pts, frame count.
    public typealias BlockInput = (patches: [Float], pts: Int64, frames: Int)

    /// Encodes one whole chunk on its own: the context starts empty and the search's first hint
    /// comes from nothing outside the chunk, so the result is the same whichever encoder, thread or
    /// order handles the chunk (chunks can be encoded in parallel with identical output).
    public func encodeChunk(_ blocks: [BlockInput], firstBlock: Int) throws -> (results: [BlockResult], chunk: Chunk) {
        precondition(!blocks.isEmpty && blocks.count <= chunkBlocks, "a chunk holds 1…\(chunkBlocks) blocks")
        coder.reset()
        pending.removeAll()
        nextBlock = firstBlock
        lastBudget = nil
        chunkFirstBudget = nil
        var results: [BlockResult] = []
        var chunk: Chunk?
        for block in blocks {
            let (result, done) = try encode(patches: block.patches, pts: block.pts, frames: block.frames)
            results.append(result)
            chunk = done
        }
        return (results, chunk ?? flush()!)
    }

    /// Ends the current chunk early (end of stream): returns it, or nil when it is empty, and
    /// resets the context.
    public func flush() -> Chunk? {
        guard let first = pending.first else { return nil }
        let records = pending.map { BlockRecord(kept: $0.keptTokens, frames: $0.frames, pts: $0.pts, mse: $0.mse) }
        let tokens: ChunkTokens
        if model.config.isFSQ {
            tokens = .fsq(pending.map { if case .fsq(let t) = $0.tokens { t } else { [] } })
        } else {
            tokens = .vae(pending.map { if case .vae(let t) = $0.tokens { t } else { [] } })
        }
        pending.removeAll()
        coder.reset()
        return Chunk(firstBlock: first.index, blocks: records, tokens: tokens)
    }

    private struct Choice {
        var kept: Int
        var tokens: KeptTokens
        var mse: Float
        var reconstruction: [Float]
        var choice: TokenBudgetChoice
    }

    /// FSQ: candidates are encoded and decoded together by BlockCoder (each on its own fixed-shape
    /// GEMMs). After each pass the candidate that would be chosen if the search stopped now (the
    /// smallest count meeting the threshold, else `maxTokens`) is staged in the coder, so the
    /// chosen one is committed from the pass that measured it, without running it again.
    private func encodeFSQ(patches: [Float], hint: Int?) throws -> Choice {
        var staged: Reconstruction?
        let threshold = search.threshold, maxTokens = fixedTokens ?? search.maxTokens
        let evaluate: ([Int]) throws -> [Float] = { counts in
            let pass = try self.coder.reconstruct(patches: patches, keptCounts: counts)
            let passing = pass.indices.filter { pass[$0].mse <= threshold }
            let current = staged.map { $0.mse <= threshold ? $0.keptCount : Int.max } ?? Int.max
            if let i = passing.min(by: { pass[$0].keptCount < pass[$1].keptCount }), pass[i].keptCount < current {
                try self.coder.stage(candidate: i)
                staged = pass[i]
            } else if current == Int.max, let i = pass.firstIndex(where: { $0.keptCount == maxTokens }) {
                try self.coder.stage(candidate: i)
                staged = pass[i]
            }
            return pass.map(\.mse)
        }
        let choice = try choose(hint: hint, evaluate: evaluate)
        // The search's answer is the staged candidate by construction; should a strategy ever
        // choose otherwise, measure its choice again alone (fixed per-candidate shapes: same bits).
        if staged?.keptCount != choice.keptTokens {
            let pass = try coder.reconstruct(patches: patches, keptCounts: [choice.keptTokens])
            try coder.stage(candidate: 0)
            staged = pass[0]
        }
        try coder.commitStaged()
        let r = staged!
        let codes = Array((r.codes ?? [])[0..<choice.keptTokens])
        return Choice(kept: choice.keptTokens, tokens: .fsq(codes), mse: r.mse, reconstruction: r.recon, choice: choice)
    }

    /// The search, or the fixed budget measured in one pass.
    private func choose(hint: Int?, evaluate: ([Int]) throws -> [Float]) throws -> TokenBudgetChoice {
        guard let fixed = fixedTokens else { return try search.choose(hint: hint, evaluate: evaluate) }
        let mse = try evaluate([fixed])[0]
        return TokenBudgetChoice(keptTokens: fixed, mse: mse, meetsThreshold: mse <= search.threshold,
                                 passes: 1, evaluations: 1)
    }

    /// VAE: latents are stored as binary16, so each candidate is decoded from its rounded latents
    /// (what a decoder will read), one at a time; the chosen one is decoded again and committed.
    private func encodeVAE(patches: [Float], hint: Int?) throws -> Choice {
        let c = model.config
        let evaluate: ([Int]) throws -> [Float] = { counts in
            let encoded = try self.coder.encoder.encode(patches: patches, keptCounts: counts)
            return try encoded.map { e in
                meanSquaredError(try self.decoder.decode(z: e.z.map(Float16Bits.round)), patches)
            }
        }
        let choice = try choose(hint: hint, evaluate: evaluate)
        let n = choice.keptTokens
        let encoded = try coder.encoder.encode(patches: patches, keptCounts: [n])
        try coder.encoder.commit(candidate: 0)
        let z = encoded[0].z.map(Float16Bits.round)
        let recon = try decoder.decode(z: z)
        try decoder.commit()
        // The committed reconstruction is the one a decoder reproduces; report its error.
        let mse = meanSquaredError(recon, patches)
        return Choice(kept: n, tokens: .vae(Array(z[0..<(n * c.codeDim)])), mse: mse, reconstruction: recon, choice: choice)
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
