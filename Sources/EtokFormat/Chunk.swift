/// One block's entry in a chunk's block table (§5).
public struct BlockRecord: Sendable, Equatable {
    /// Kept tokens *n*: the block stores its first *n* tokens (`min_toks` ≤ *n* ≤ `max_toks`).
    public var kept: Int
    /// Frames in the block (`frames_per_block`, fewer only for a last, partial block).
    public var frames: Int
    /// Presentation time of the block's first frame, in `source.time_base` units.
    public var pts: Int64
    /// Reconstruction MSE the encoder measured for this block (informative).
    public var mse: Float

    /// All fields.
    public init(kept: Int, frames: Int, pts: Int64, mse: Float) {
        self.kept = kept
        self.frames = frames
        self.pts = pts
        self.mse = mse
    }
}

/// The kept tokens of every block of a chunk (§6), in block order.
public enum ChunkTokens: Sendable, Equatable {
    /// FSQ indices: per block, `kept` indices in `0 ..< Π L_d` (§6.1).
    case fsq([[Int32]])
    /// VAE latents: per block, `kept × vae_bottleneck_dim` values, token-major (§6.2). Stored as
    /// binary16, so a read-back value equals `Float16Bits.round` of the written one.
    case vae([[Float]])

    /// Number of blocks.
    public var blockCount: Int {
        switch self {
        case .fsq(let b): return b.count
        case .vae(let b): return b.count
        }
    }
}

/// A run of consecutive blocks that starts with an empty context (§5): it decodes on its own.
public struct Chunk: Sendable, Equatable {
    /// Index of the chunk's first block in the stream (0-based).
    public var firstBlock: Int
    /// The block table, one entry per block.
    public var blocks: [BlockRecord]
    /// The tokens, one array per block, `blocks[k].kept` tokens each.
    public var tokens: ChunkTokens

    /// All fields. The writer checks them against the header.
    public init(firstBlock: Int, blocks: [BlockRecord], tokens: ChunkTokens) {
        self.firstBlock = firstBlock
        self.blocks = blocks
        self.tokens = tokens
    }

    /// Blocks `firstBlock ..< firstBlock + blocks.count`.
    public var blockRange: Range<Int> { firstBlock..<(firstBlock + blocks.count) }
}

/// Where a chunk lies in the file (§7 `INDX` entry), known from the index or from a scan.
public struct IndexEntry: Sendable, Equatable {
    /// File offset of the chunk record (its `type` field).
    public var offset: Int
    /// As in the chunk.
    public var firstBlock: Int
    /// As in the chunk.
    public var blockCount: Int
    /// `pts` of the chunk's first block.
    public var firstPts: Int64

    /// All fields.
    public init(offset: Int, firstBlock: Int, blockCount: Int, firstPts: Int64) {
        self.offset = offset
        self.firstBlock = firstBlock
        self.blockCount = blockCount
        self.firstPts = firstPts
    }

    /// Blocks the chunk holds.
    public var blockRange: Range<Int> { firstBlock..<(firstBlock + blockCount) }
}
