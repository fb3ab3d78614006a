import EtokFormat
import EtokModel
import Foundation

/// How a chunk's kept counts are set under rate control (from `EncodeRun`'s chunk stage).
public enum ChunkPlan: Sendable, Equatable {
    /// Measure each block's curve, then spend at most this many tokens by equal slope.
    case cap(Int)
    /// Keep these counts, one per block (the second pass of `--budget` on a VAE model, or for
    /// blocks its first pass did not see).
    case counts([Int])
    /// Start from these counts (their sum is the chunk's total, kept exactly) and commit block by
    /// block with the real context (`ClosedLoopCommit`): the second pass of `--budget`, with each
    /// block's curve from the first pass and the whole file's floor as an MSE.
    case closedLoop(counts: [Int], curves: [[RatePoint]], floorMSE: Double, leastPlanned: Int)
}

extension EncoderSettings {
    /// Checks the rate-control settings against the resolved token range and chunk length.
    func validateRateControl(lo: Int, hi: Int, chunkBlocks: Int) throws(TokenizerError) {
        if let cap = maxTokensPerChunk, cap < chunkBlocks * lo {
            throw .badSetting("--max-tokens-per-chunk \(cap) is below the chunk's smallest total: "
                              + "\(chunkBlocks) blocks × \(lo) tokens (min_toks); lower --chunk or raise the cap")
        }
        switch rateTarget {
        case .tokensPerSecond(let r)?:
            guard r.isFinite, r > 0 else { throw .badSetting("--tokens-per-second \(r) must be a positive rate") }
        case .budget(let n)?:
            guard n >= 1 else { throw .badSetting("--budget \(n) must be a positive number of tokens") }
        case nil: break
        }
        if rateTarget != nil && fixedTokens != nil { throw .badSetting("--fixed takes no rate target") }
    }
}

/// Rate control on one chunk (see `RateAllocator` for the rule).
///
/// ElasticTok is conditional: a block's error at n tokens depends on the counts kept by the earlier
/// blocks of its chunk (its context). The allocation here is measured, then committed:
/// 1. *measure*: block by block, one batched pass evaluates `curvePoints` counts (the official
///    log grid from min to max) and the *provisional* count (the cap's even share), given the
///    earlier blocks committed at the provisional count, which is committed before the next block;
/// 2. *allocate*: by the settings' `RateObjective` over the blocks' curves within the cap (no
///    model pass; `balanced`: a PSNR floor first, then equal slope of the mean PSNR); with
///    `rateRepeats`, blocks after the first may repeat instead (`RateAllocator.bestRepeats`, from
///    the repeat errors step 1 also measured);
/// 3. *commit*: the chunk is encoded again from an empty context, each block at its allocated count
///    (one pass of one count per block; none for a repeat), and the MSE reported is the committed one.
/// The approximation: a block's curve was measured with its context at provisional counts, not at
/// the allocated ones; the committed MSE, not the predicted one (`BlockResult.predictedMSE`), is what
/// the stats report. The kept counts, and so the cap, are exact. Cost per block, FSQ: two passes,
/// `curvePoints` + 2 counts evaluated (+ 1 when the share is a grid point; the default search:
/// about 3.5 passes of one count); VAE one pass and one count more (its candidates decode one at a
/// time and its provisional count is encoded again to commit it).
/// `--budget` (`ChunkPlan.closedLoop`, FSQ) measures the whole file first (`EncodeRun`) and commits
/// each chunk in a closed loop (`ClosedLoopCommit`): each block's commit pass, except a chunk's
/// last, is one batched pass over the planned count and larger ones with the real context, and the
/// chosen one is committed from it (`commitClosedLoop`).
extension ConditionalEncoder {
    /// Counts measured per block for its curve: the official log grid with this many points.
    static let curvePoints = 6

    /// The counts measured per block: the official log grid over the search's range.
    var curveCounts: [Int] { TokenBudgetSearch.officialGrid(search.minTokens, search.maxTokens, points: Self.curvePoints) }

    /// Encodes `blocks` as one chunk under `plan`, handing each block's committed reconstruction
    /// to `measured` with its index in the chunk.
    public func encodeChunk(_ blocks: [BlockInput], firstBlock: Int, plan: ChunkPlan,
                            measured: (Int, [Float]) -> Void = { _, _ in }) throws -> EncodedChunk {
        switch plan {
        case .counts(let counts):
            precondition(counts.count == blocks.count, "one count per block")
            return try commit(blocks, firstBlock: firstBlock, counts: counts, predicted: nil, measurePasses: nil, measured: measured)
        case .closedLoop(let counts, let curves, let floorMSE, let least):
            precondition(counts.count == blocks.count && curves.count == blocks.count, "one count and curve per block")
            guard model.config.isFSQ else {
                return try commit(blocks, firstBlock: firstBlock, counts: counts, predicted: nil, measurePasses: nil, measured: measured)
            }
            return try commitClosedLoop(blocks, firstBlock: firstBlock,
                                        loop: ClosedLoopCommit(counts: counts, curves: curves, floorMSE: floorMSE,
                                                               minTokens: search.minTokens, maxTokens: search.maxTokens,
                                                               leastPlanned: least), measured: measured)
        case .cap(let cap):
            let provisional = provisionalCount(share: Double(cap) / Double(blocks.count))
            let (curves, repeats, passes) = try measureChunk(blocks, provisional: provisional)
            let allocation = RateAllocator.allocate(curves: curves, repeats: repeats, cap: cap,
                                                    objective: settings.rateObjective)
            return try commit(blocks, firstBlock: firstBlock, counts: allocation.counts,
                              predicted: allocation.predictedMSE, measurePasses: passes, measured: measured)
        }
    }

    /// The even share rounded into the search's range: the count a block's context is measured at,
    /// and measured itself, so that the curves hold the even split exactly (the `balanced`
    /// objective's reference: its predicted worst block is the one `--fixed` at the share would
    /// give, up to the other blocks' shares differing by a token).
    func provisionalCount(share: Double) -> Int {
        min(max(Int(share.rounded()), search.minTokens), search.maxTokens)
    }

    /// The counts `measureChunk` evaluates: `curveCounts` and `provisional`.
    func measuredCounts(provisional: Int) -> [Int] { Array(Set(curveCounts + [provisional])).sorted() }

    /// Measures each block's (tokens, MSE) curve at `measuredCounts`, the earlier blocks committed
    /// at `provisional`. Returns the curves, each block's (passes, counts evaluated), and, when the
    /// settings let rate control write repeats (`rateRepeats`), the repeat curves
    /// `RateAllocator.allocate(curves:repeats:cap:objective:margin:)` takes: `repeats[k][j]`, block
    /// k's MSE showing block j's reconstruction at each of block j's measured counts (`RepeatBlock.mse`,
    /// what the commit measures; no model pass: a copy and a sum per pair of blocks and count);
    /// empty otherwise.
    public func measureChunk(_ blocks: [BlockInput], provisional: Int) throws
        -> (curves: [[RatePoint]], repeats: [[[RatePoint]]], passes: [(Int, Int)]) {
        precondition(!blocks.isEmpty && blocks.count <= chunkBlocks, "a chunk holds 1…\(chunkBlocks) blocks")
        let counts = measuredCounts(provisional: provisional)
        let at = counts.firstIndex(of: provisional)!
        let withRepeats = settings.rateRepeats
        coder.reset()
        var curves: [[RatePoint]] = [], passes: [(Int, Int)] = []
        var repeats: [[[RatePoint]]] = withRepeats ? blocks.map { _ in [] } : []
        for (j, block) in blocks.enumerated() {
            var reconstructions: [[Float]] = [], errors: [Float] = []
            if model.config.isFSQ {
                let pass = try coder.reconstruct(patches: block.patches, keptCounts: counts)
                reconstructions = pass.map(\.recon)
                errors = pass.map(\.mse)
                try coder.commit(candidate: at)
                passes.append((1, counts.count))
            } else {
                let encoded = try coder.encoder.encode(patches: block.patches, keptCounts: counts)
                reconstructions = try encoded.map { e in try decoder.decode(z: e.z.map(Float16Bits.round)) }
                errors = reconstructions.map { meanSquaredError($0, block.patches) }
                let fixed = TokenBudgetSearch(strategy: .fast, threshold: search.threshold, minTokens: provisional, maxTokens: provisional)
                _ = try encodeVAE(patches: block.patches, hint: nil, search: fixed)
                passes.append((2, counts.count + 1))
            }
            curves.append(zip(counts, errors).map { RatePoint(tokens: $0, mse: Double($1)) })
            guard withRepeats else { continue }
            for k in (j + 1)..<blocks.count {
                repeats[k].append(try zip(counts, reconstructions).map { n, recon in
                    RatePoint(tokens: n, mse: Double(try RepeatBlock.mse(of: blocks[k].patches, after: recon, config: model.config).mse))
                })
            }
        }
        return (curves, repeats, passes)
    }

    /// Encodes the chunk with block k at `counts[k]` (a fixed search each; 0: a repeat block),
    /// adding the measuring passes to each block's figures.
    func commit(_ blocks: [BlockInput], firstBlock: Int, counts: [Int], predicted: [Double]?,
                measurePasses: [(Int, Int)]?, measured: (Int, [Float]) -> Void = { _, _ in }) throws -> EncodedChunk {
        var encoded = try encodeBlocks(blocks, firstBlock: firstBlock, plan: { k in
            counts[k] == 0 ? .repeatBlock : .count(counts[k])
        }, measured: measured)
        for k in encoded.results.indices {
            if let (p, e) = measurePasses?[k] {
                encoded.results[k].passes += p
                encoded.results[k].evaluations += e
            }
            encoded.results[k].predictedMSE = predicted.map { Float($0[k]) }
        }
        return encoded
    }

    /// FSQ: commits the chunk block by block as `loop` decides: one batched pass evaluates a
    /// block's candidates with the real context when there are several, and the chosen one is
    /// committed from that pass (`BlockPlan.pick`; a block's keys and values are kept for every
    /// candidate, as the linear search keeps them). A model whose block of keys and values is
    /// large (over `spareSlotBytes`: the official 200M) keeps none in that pass, to bound its
    /// memory, and encodes the chosen count again (one more pass, counted in the block's figures).
    /// Its `predictedMSE` is its first-pass curve at the committed count.
    func commitClosedLoop(_ blocks: [BlockInput], firstBlock: Int, loop: ClosedLoopCommit,
                          measured: (Int, [Float]) -> Void) throws -> EncodedChunk {
        var loop = loop
        var evaluated: [Int] = []
        let pickInPass = blockKeyValueBytes <= spareSlotBytes
        var encoded = try encodeBlocks(blocks, firstBlock: firstBlock, plan: { k in
            let counts = loop.candidates(k)
            var mse: [Double]? = nil
            if counts.count > 1 {
                if pickInPass {
                    evaluated.append(0)
                    return .pick(counts: counts) { mse in counts.firstIndex(of: loop.choose(k, mse: mse.map(Double.init)))! }
                }
                mse = try self.coder.reconstruct(patches: blocks[k].patches, keptCounts: counts, keeping: .discard).map { Double($0.mse) }
            }
            evaluated.append(mse == nil ? 0 : counts.count)
            return .count(loop.choose(k, mse: mse))
        }, measured: measured)
        for k in encoded.results.indices {
            encoded.results[k].predictedMSE = Float(loop.predictedMSE(k, encoded.results[k].keptTokens))
            guard evaluated[k] > 0 else { continue }
            encoded.results[k].passes += 1
            encoded.results[k].evaluations += evaluated[k]
        }
        return encoded
    }

    /// A threshold-searched chunk, or, when it is over `settings.maxTokensPerChunk`, the chunk
    /// encoded again within the cap by equal slope (its search passes are counted too).
    /// `measured` gets the re-encoded chunk's reconstructions (none when it is not over the cap).
    func capped(_ encoded: EncodedChunk, _ blocks: [BlockInput],
                measured: (Int, [Float]) -> Void = { _, _ in }) throws -> EncodedChunk {
        guard let cap = settings.maxTokensPerChunk, encoded.results.map(\.keptTokens).reduce(0, +) > cap else { return encoded }
        var again = try encodeChunk(blocks, firstBlock: encoded.chunk.firstBlock, plan: .cap(cap), measured: measured)
        for k in again.results.indices {
            again.results[k].passes += encoded.results[k].passes
            again.results[k].evaluations += encoded.results[k].evaluations
        }
        return again
    }
}
