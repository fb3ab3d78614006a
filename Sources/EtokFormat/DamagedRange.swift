/// A run of blocks a reader could not read, and why (§7 "Damage"): what `etok decode` and
/// `etok export` refuse by default and skip, with one warning each, under `--skip-damaged`.
///
/// Found by `ChunkWalk`. A range may lose no block at all (damage confined to the index or the
/// `TAIL`), a known run of blocks (a damaged chunk, a gap between readable chunks), or every
/// block from `firstBlock` on when the data stops there and how many blocks followed is unknown
/// (a truncated file). A value type; `Sendable`.
public struct DamagedRange: Sendable, Equatable, CustomStringConvertible {
    /// The file name used in messages.
    public var file: String
    /// The first block lost (or, when none is lost, the block the damage lies before).
    public var firstBlock: Int
    /// One past the last block lost; nil when every block from `firstBlock` on may be lost (the data
    /// stops there). Equal to `firstBlock` when no block is lost.
    public var endBlock: Int?
    /// Why: the first problem found there (bad checksum, truncation, bad token data...).
    public var reason: FormatError

    /// All fields.
    public init(file: String, firstBlock: Int, endBlock: Int?, reason: FormatError) {
        self.file = file
        self.firstBlock = firstBlock
        self.endBlock = endBlock
        self.reason = reason
    }

    /// Whether blocks are (or may be) lost.
    public var losesBlocks: Bool { endBlock.map { $0 > firstBlock } ?? true }

    /// The blocks as a user reads them: "block 7", "blocks 12–15", "blocks 36 onwards", "no blocks".
    public var blocksText: String {
        guard let end = endBlock else { return "blocks \(firstBlock) onwards" }
        return end > firstBlock ? BlockRangeText.blocks(firstBlock, end) : "no blocks"
    }

    /// What is lost and why, without the file name: "blocks 12–15 unreadable: bad checksum (CRC) in
    /// CHNK record at offset 1392".
    public var problem: String {
        losesBlocks ? "\(blocksText) unreadable: \(reason.problem)" : "\(reason.problem) (no blocks lost)"
    }

    /// One line: the file, then the problem.
    public var description: String { "\(file): \(problem)" }
}

/// Block ranges in messages, without Swift's range syntax.
public enum BlockRangeText {
    /// Blocks `from ..< to`: "block 7" or "blocks 12–15" (an en dash, both ends included).
    public static func blocks(_ from: Int, _ to: Int) -> String {
        to - from == 1 ? "block \(from)" : "blocks \(from)–\(to - 1)"
    }

    /// "1 block", "3 blocks": a count with its noun in the right number.
    public static func count(_ n: Int, _ singular: String, _ plural: String? = nil) -> String {
        "\(n) \(n == 1 ? singular : plural ?? singular + "s")"
    }
}
