import EtokModel

/// Repeat blocks at a chunk's start (docs/etok-format.md §5): a chunk whose first frames the
/// previous chunk's last reconstruction already shows within the threshold begins with repeat
/// blocks of that frame, so a static shot costs 0 tokens on every frame after its first, not
/// only after each chunk's first.
///
/// Chunks are encoded in parallel, so a chunk's worker does not know the previous chunk's
/// reconstruction; this is the serial stage after them, in stream order (`EncodeRun`'s write
/// stage). It keeps the reconstruction of the last block passed on. When a chunk arrives whose
/// block 0 would repeat it (`RepeatBlock.mse` against the threshold, the test every repeat
/// passes), the chunk is encoded again, serially, with that frame as its starting "previous"
/// (`ConditionalEncoder.encodeChunk(_:firstBlock:after:measured:)`): its leading blocks repeat,
/// its coded blocks start with an empty context, as every chunk's do. Other chunks pass through
/// unchanged, so a stream with no chunk-start repeat has the bytes it had without this stage.
///
/// Cost: one repeat MSE (a copy and a sum over a block) per chunk; a model re-encode of the
/// chunks that start with a repeat (none when the whole chunk repeats: no model pass), whose
/// parallel encode is discarded (its model work is still counted in the blocks' `passes`).
/// Memory: the chunk's source patches travel with it from its worker (`EncodedChunk.carry`, a
/// chunk per chunk in flight) and one block's reconstruction is kept here; a second encoder's
/// contexts, made on the first re-encode.
///
/// Used by one thread at a time (the write stage); not thread-safe.
final class ChunkStartRepeats: @unchecked Sendable {
    private let model: ElasticTokModel
    private let settings: EncoderSettings
    private var encoder: ConditionalEncoder?
    /// The stream index and reconstruction of the last block passed on.
    private var last: (index: Int, reconstruction: [Float])?

    init(model: ElasticTokModel, settings: EncoderSettings) {
        self.model = model
        self.settings = settings
    }

    /// The chunk as the stream gets it: `item` itself, or, when its first block repeats the
    /// previous chunk's last frame, the chunk encoded again from that frame. Drops the carry.
    func process(_ item: EncodedChunk) throws -> EncodedChunk {
        guard let carry = item.carry else { return item }
        var out = item
        out.carry = nil
        let first = item.chunk.firstBlock
        if let last, last.index == first - 1,
           try RepeatBlock.mse(of: carry.blocks[0].patches, after: last.reconstruction, config: model.config).mse <= settings.threshold {
            let encoder = try self.encoder ?? ConditionalEncoder(model: model, settings: settings)
            self.encoder = encoder
            var lastReconstruction: [Float] = []
            let again = try encoder.encodeChunk(carry.blocks, firstBlock: first, after: last.reconstruction) { _, recon in
                lastReconstruction = recon
            }
            // The one kept, and the other (the discarded encode, whose model work counts too). Under
            // `--max-tokens-per-chunk` a re-encode over the cap (its first coded block lost its
            // context) is the one dropped: the chunk stays as its worker encoded it, within the cap.
            let overCap = settings.maxTokensPerChunk.map { again.results.map(\.keptTokens).reduce(0, +) > $0 } ?? false
            var discarded = item
            if overCap {
                discarded = again
                lastReconstruction = carry.lastReconstruction
            } else {
                out = again
            }
            for (k, block) in discarded.results.enumerated() where k < out.results.count {
                out.results[k].passes += block.passes
                out.results[k].evaluations += block.evaluations
            }
            self.last = (first + out.results.count - 1, lastReconstruction)
            return out
        }
        last = (first + item.results.count - 1, carry.lastReconstruction)
        return out
    }
}

/// What `ChunkStartRepeats` needs of a chunk encoded in parallel: its source blocks and its last
/// block's reconstruction.
struct RepeatCarry: Sendable {
    var blocks: [ConditionalEncoder.BlockInput]
    var lastReconstruction: [Float]
}
