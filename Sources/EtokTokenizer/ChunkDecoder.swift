import EtokFormat
import EtokModel

/// One decoded block: its frames as RGB24 at the model resolution, and the float reconstruction.
public struct DecodedBlock: Sendable {
    /// Index of the block in the stream and its record (kept count, pts, frames, encoder's MSE).
    public var index: Int
    public var record: BlockRecord
    /// The reconstruction, tokens × patch_dim in [−1, 1]: bit-identical to what the encoder measured.
    public var reconstruction: [Float]
    /// The block's frames, each height × width × 3 bytes (only `record.frames` of them).
    public var frames: [[UInt8]]
    /// A repeat block at the chunk's start (docs/etok-format.md §5): it shows the last frame of
    /// the stream's previous block, in the previous chunk, which the chunk's decoder does not
    /// have. `reconstruction` and `frames` are empty until `resolved(after:)` fills them.
    public var repeatsPreviousChunk = false

    /// This leading repeat block with its frames: `previous` is the reconstruction of the stream's
    /// block before it (as decoded, or as resolved itself).
    public func resolved(after previous: [Float], config: ModelConfig) throws -> DecodedBlock {
        var block = self
        block.reconstruction = try RepeatBlock.reconstruction(after: previous, config: config)
        block.frames = try ChunkDecoder.frames(of: block.reconstruction, count: record.frames, config: config)
        block.repeatsPreviousChunk = false
        return block
    }
}

/// Resolves, in stream order, the repeat blocks that start chunks (`DecodedBlock.repeatsPreviousChunk`)
/// from the block decoded before them, across chunks decoded apart (in parallel): the one serial
/// step of a decode. A leading repeat whose previous block was not decoded (a damaged or dropped
/// chunk, a chunk before those read) is lost: a `DamagedRange` per run of them. Memory: one block's
/// reconstruction.
public struct ChunkStartResolver {
    private let config: ModelConfig
    private let file: String
    private var last: (index: Int, reconstruction: [Float])?

    public init(config: ModelConfig, file: String) {
        self.config = config
        self.file = file
    }

    /// `blocks` (a chunk's, in order) with their leading repeats resolved, and the run of leading
    /// repeats that could not be (nil when none).
    public mutating func resolve(_ blocks: [DecodedBlock]) throws -> (blocks: [DecodedBlock], lost: DamagedRange?) {
        var out: [DecodedBlock] = [], lost: DamagedRange?
        out.reserveCapacity(blocks.count)
        for var block in blocks {
            if block.repeatsPreviousChunk {
                guard let last, last.index == block.index - 1 else {
                    lost = lost.map { DamagedRange(file: file, firstBlock: $0.firstBlock, endBlock: block.index + 1, reason: $0.reason) }
                        ?? DamagedRange(file: file, firstBlock: block.index, endBlock: block.index + 1,
                                        reason: .repeatsMissingFrame(file: file, block: block.index - 1))
                    continue
                }
                block = try block.resolved(after: last.reconstruction, config: config)
            }
            last = (block.index, block.reconstruction)
            out.append(block)
        }
        return (out, lost)
    }
}

/// Decodes chunks of an `.etok` stream back to frames with the model the stream was made with.
///
/// Each chunk decodes on its own (docs/etok-format.md §5, §8): the decoder's context is reset at
/// every chunk, then each block is decoded with the chunk's earlier blocks as context; a repeat
/// block (`RepeatBlock`) shows the previous block's last frame and adds nothing to the context
/// (repeats at the chunk's start come back unresolved, for `ChunkStartResolver`). Owns the
/// model's decoder context. Not thread-safe: one thread at a time (it may move between threads,
/// hence `Sendable`); parallel chunks use one decoder each.
public final class ChunkDecoder: @unchecked Sendable {
    public let model: ElasticTokModel
    let decoder: BlockDecoder
    private let fileName: String
    /// Whether a block keeping 0 tokens is a repeat block (the header declares them, §4).
    private let repeats: Bool

    /// A decoder for streams whose header matches `model`; a mismatch in the facts the decoder
    /// needs is an error naming `fileName`. The weights' SHA-256 is checked by the caller
    /// (`ModelCatalog.check`), which may allow a mismatch on request.
    public init(model: ElasticTokModel, header: EtokHeader, fileName: String) throws {
        self.model = model
        self.fileName = fileName
        repeats = header.encoding.declaresRepeats
        decoder = BlockDecoder(model: model)
        let c = model.config, m = header.model
        func require(_ ok: Bool, _ what: String) throws {
            if !ok { throw TokenizerError.incompatibleStream(file: fileName, message: what) }
        }
        try require(m.patchSize == c.patchSize, "patch size \(m.patchSize) differs from the model's \(c.patchSize)")
        try require(m.imageSize == [c.imageSize.height, c.imageSize.width],
                    "image size \(m.imageSize) differs from the model's [\(c.imageSize.height), \(c.imageSize.width)]")
        try require(m.framesPerBlock == c.framesPerBlock, "frames per block \(m.framesPerBlock) differs from the model's \(c.framesPerBlock)")
        try require(m.maxToks == c.maxToks, "max tokens \(m.maxToks) differs from the model's \(c.maxToks)")
        try require(m.bottleneck == c.bottleneck, "bottleneck \(m.bottleneck.rawValue) differs from the model's \(c.bottleneckType)")
        if c.isFSQ { try require(m.fsqQuantLevels == c.fsqQuantLevels, "FSQ levels differ from the model's") }
        try require(header.encoding.chunkBlocks <= c.contextBlocks,
                    "chunks of \(header.encoding.chunkBlocks) blocks exceed the model's context of \(c.contextBlocks)")
    }

    /// Threads each pass splits into (`ThreadPolicy.passThreads`); changes no bit.
    public var passThreads: Int {
        get { decoder.threads }
        set { decoder.threads = newValue }
    }

    /// Decodes every block of `chunk`, in order.
    public func decode(_ chunk: Chunk) throws -> [DecodedBlock] {
        try decode(chunk, blocks: chunk.blockRange)
    }

    /// Decodes the chunk's blocks up to the last one in `wanted` (earlier blocks are context and
    /// must be decoded anyway) and returns those in `wanted`.
    public func decode(_ chunk: Chunk, blocks wanted: Range<Int>) throws -> [DecodedBlock] {
        let c = model.config, t = c.tokensPerBlock
        guard chunk.blocks.count <= c.contextBlocks else {
            throw TokenizerError.incompatibleStream(file: fileName, message: "chunk at block \(chunk.firstBlock) holds \(chunk.blocks.count) blocks, more than the model's context of \(c.contextBlocks)")
        }
        guard chunk.tokens.bottleneck == c.bottleneck else {
            throw TokenizerError.incompatibleStream(file: fileName, message: "chunk at block \(chunk.firstBlock) holds \(chunk.tokens.bottleneck.rawValue) tokens, the model's bottleneck is \(c.bottleneckType)")
        }
        decoder.reset()
        var out: [DecodedBlock] = []
        var previous: [Float]?
        for (k, record) in chunk.blocks.enumerated() {
            let index = chunk.firstBlock + k
            if index >= wanted.upperBound { break }
            guard record.kept <= t else {
                throw TokenizerError.incompatibleStream(file: fileName, message: "block \(index) keeps \(record.kept) tokens, more than \(t)")
            }
            let recon: [Float]
            if repeats && record.kept == 0 {
                // A repeat block (`RepeatBlock`): the previous block's last frame, the context untouched.
                guard let last = previous else {
                    // At the chunk's start: the previous chunk's last frame (`ChunkStartResolver`).
                    if wanted.contains(index) {
                        var block = DecodedBlock(index: index, record: record, reconstruction: [], frames: [])
                        block.repeatsPreviousChunk = true
                        out.append(block)
                    }
                    continue
                }
                recon = try RepeatBlock.reconstruction(after: last, config: c)
                previous = recon
                if wanted.contains(index) {
                    out.append(DecodedBlock(index: index, record: record, reconstruction: recon,
                                            frames: try Self.frames(of: recon, count: record.frames, config: c)))
                }
                continue
            }
            // The pass writes its keys and values straight into the context's slot, which the
            // commit then keeps (no per-layer copy in the workspace: the 200M decoder's would be
            // 0.5 GB in fp32); the last block decoded is context for nothing and keeps none.
            // Neither changes a bit of the reconstruction.
            let isLast = k == chunk.blocks.count - 1 || index + 1 >= wanted.upperBound
            let keeping: KeyValueKeeping = isLast ? .discard : .slot(0)
            // The tokens a block did not keep are masked (FSQ) or zero (VAE).
            switch chunk.tokens[block: k] {
            case .fsq(let kept):
                var codes = [Int32](repeating: c.maskedIndex, count: t)
                for (i, code) in kept.prefix(record.kept).enumerated() { codes[i] = code }
                recon = try decoder.decode(codes: codes, keeping: keeping)
            case .vae(let kept):
                var z = [Float](repeating: 0, count: t * c.codeDim)
                for (i, v) in kept.prefix(record.kept * c.codeDim).enumerated() { z[i] = v }
                recon = try decoder.decode(z: z, keeping: keeping)
            }
            if !isLast { try decoder.commit() }
            previous = recon
            guard wanted.contains(index) else { continue }
            out.append(DecodedBlock(index: index, record: record, reconstruction: recon,
                                    frames: try Self.frames(of: recon, count: record.frames, config: c)))
        }
        return out
    }

    /// Splits a block's reconstruction into its first `count` frames of RGB24.
    static func frames(of recon: [Float], count: Int, config c: ModelConfig) throws -> [[UInt8]] {
        let (h, w) = c.imageSize
        let pixels = Patchify.toUInt8(try Patchify.frames(patches: recon, height: h, width: w, config: c))
        let frameBytes = h * w * 3
        return (0..<min(count, pixels.count / frameBytes)).map { Array(pixels[($0 * frameBytes)..<(($0 + 1) * frameBytes)]) }
    }
}
