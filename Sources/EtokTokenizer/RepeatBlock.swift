import EtokModel

/// A *repeat block* (docs/etok-format.md §5): a block that keeps 0 tokens and shows, for each of
/// its frames, the last frame of the stream's previous block (at a chunk's start, the previous
/// chunk's last block), bit for bit as that block was reconstructed. Video codecs call it a skip.
///
/// **The model never sees one.** A repeat block runs no model pass and commits nothing to the
/// encoder's or the decoder's context (`StackSession`): the chunk's next coded block is coded with
/// the chunk's earlier coded blocks as context, at the positions they would have without the
/// repeats (a context's positions are its committed blocks, so this needs nothing else). The
/// encoder (`ConditionalEncoder`) and the decoder (`ChunkDecoder`) both follow the one rule: a
/// block with kept 0, in a stream that declares repeats, is `reconstruction(after:)` of the block
/// before it and leaves the context as it was.
///
/// **When the encoder writes one.** Before searching a block at chunk position ≥ 1, with no model
/// pass, it measures `mse(of:after:)`: the same MSE the search measures (over the block's patches,
/// as preprocessed for the model) of the previous reconstruction repeated. If that meets the
/// threshold as the search's does (`mse ≤ threshold`), the block is a repeat with that `mse`.
/// At position 0 the chunk's own worker has no previous block; `ChunkStartRepeats`, which sees
/// the chunks in stream order, makes those repeats (and `ChunkStartResolver` decodes them).
/// Under `--tokens-per-second` and `--budget` there is no threshold to meet: rate control plans
/// repeats where they pay (`RateAllocator.bestRepeats`, from the `mse(of:after:)` of each block
/// against each earlier block's measured reconstructions) and the commit writes them as planned,
/// never at a chunk's start.
enum RepeatBlock {
    /// The reconstruction (tokens × patch_dim, as the model's) of a repeat block after a block
    /// reconstructed as `previous`: the previous block's last frame in every frame slot. With one
    /// frame per block that is `previous` itself. Cost: one copy of a block (a gather when
    /// `frames_per_block` > 1).
    static func reconstruction(after previous: [Float], config c: ModelConfig) throws -> [Float] {
        let f = c.framesPerBlock
        if f == 1 { return previous }
        let (h, w) = c.imageSize
        // (F, H, W, 3) frames of the previous block; frame F − 1 is the last shown (only a chunk's
        // last block may be partial, and no block follows it in the chunk).
        let frames = try Patchify.frames(patches: previous, height: h, width: w, config: c)
        let frameSize = h * w * 3
        let last = frames[((f - 1) * frameSize)..<(f * frameSize)]
        var repeated: [Float] = []
        repeated.reserveCapacity(f * frameSize)
        for _ in 0..<f { repeated += last }
        return try Patchify.patches(pixels: repeated, count: f, height: h, width: w, config: c)
    }

    /// The MSE of showing `previous`'s repeat for a block whose patches are `patches`: what the
    /// search compares with the threshold (`meanSquaredError`, the same measure as `BlockCoder`'s).
    static func mse(of patches: [Float], after previous: [Float], config: ModelConfig) throws -> (mse: Float, reconstruction: [Float]) {
        let recon = try reconstruction(after: previous, config: config)
        return (meanSquaredError(recon, patches), recon)
    }
}

/// Keyframe lookahead for the threshold search (`ConditionalEncoder.encodeBlocks`): on static
/// footage the smallest count that meets the threshold leaves a reconstruction whose repeat
/// misses it on the next frames (the frame's own coding error plus the small change between
/// frames), so every frame is coded again. A few more tokens on the frame make it a reference the
/// next frames repeat, as a video codec spends more on a keyframe. A capped run on a static
/// clip (balle1, 48 frames) met the threshold on every frame with 200 tokens where the search
/// spent 2,224.
///
/// The rule, as a plain value (`RepeatBlockTests` on fake figures; the encoder runs the pass):
/// after the search chose `n` for a block whose next block differs from it by less than the
/// threshold (source against source, no pass), one batched pass evaluates `counts(n:max:)`;
/// for each candidate meeting the threshold, `run` is how many of the chunk's next blocks in a row
/// its reconstruction would repeat, and the gain is the tokens those repeats save, at `n` each
/// (the cost of coding a like frame), less the extra tokens. The largest positive gain wins; none:
/// `n` stays. Cost: one pass over up to 4 counts on such blocks only (none on moving footage).
enum RepeatLookahead {
    /// Factors above the chosen count tried (and the largest count).
    static let steps = [1.5, 2.0, 3.0]

    /// The counts to evaluate above `n` (ascending, at most `max`).
    static func counts(n: Int, max: Int) -> [Int] {
        var out: [Int] = []
        for c in steps.map({ Swift.min(Int((Double(n) * $0).rounded()), max) }) + [max] where c > n && c > (out.last ?? n) {
            out.append(c)
        }
        return out
    }

    /// The candidate to keep instead of `n` (an index into `candidates`), or nil. `base`: the run
    /// of repeats `n`'s reconstruction gives.
    static func pick(n: Int, base: Int, candidates: [(tokens: Int, mse: Float, run: Int)], threshold: Float) -> Int? {
        var best: (gain: Int, index: Int)? = nil
        for (i, c) in candidates.enumerated() where c.mse <= threshold {
            let gain = (c.run - base) * n - (c.tokens - n)
            if gain > (best?.gain ?? 0) { best = (gain, i) }
        }
        return best?.index
    }
}
