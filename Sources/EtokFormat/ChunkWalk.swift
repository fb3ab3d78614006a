/// Where a chunk or a damaged range lies in the stream, so that a selection (frames, times) can say
/// whether it needs it. A value type; `Sendable`.
public struct StreamSpan: Sendable, Equatable {
    /// The first block.
    public var firstBlock: Int
    /// One past the last block; nil when the span runs to the end of the stream.
    public var endBlock: Int?
    /// The span starts at or after this pts (nil: at the start of the stream).
    public var startPts: Int64?
    /// The span ends before this pts (nil: at the end of the stream, or not known yet).
    public var endPts: Int64?

    /// All fields.
    public init(firstBlock: Int, endBlock: Int?, startPts: Int64?, endPts: Int64?) {
        self.firstBlock = firstBlock
        self.endBlock = endBlock
        self.startPts = startPts
        self.endPts = endPts
    }
}

/// Walks a stream's records front to back (`RecordScanner`, resynchronising after damage) and says,
/// chunk by chunk, which blocks are readable and which are lost and why (§7 "Damage"): the one place
/// that turns what a scan finds into `DamagedRange`s, so that every command reports damage the same
/// way. Made by `ChunkSource.walk(wants:)`, for a file and a pipe alike.
///
/// `wants` is asked once per chunk and per damaged range, with its `StreamSpan`: a chunk it accepts
/// is decoded (token data checked) and yielded; one it refuses is only framed (CRC, block numbers)
/// and skipped; a damaged range it refuses is not reported. A chunk's span ends at the next chunk's
/// `pts` when the file's chunk list is known (`entries`), else it is open (`endPts` nil), so a time
/// selection over a pipe may decode one chunk more than it needs. Damage is a range of the blocks
/// between two readable chunks (a damaged chunk, a gap), or after the last one (a truncated end);
/// a chunk whose token data does not decode counts as missing.
///
/// Usage: call `next()` until it returns nil; `damage` holds the ranges returned so far, `health`
/// the whole stream's once the walk has ended. Not thread-safe: one owner. Memory: one record at a
/// time plus one entry per chunk read.
public final class ChunkWalk {
    /// What the walk met next.
    public enum Step: Sendable, Equatable {
        /// A chunk read whole, its CRC and token data checked.
        case chunk(Chunk)
        /// Blocks that cannot be read, and why.
        case damaged(DamagedRange)
    }

    private let file: String
    private let header: EtokHeader
    private let wants: (StreamSpan) -> Bool
    private var scanner: RecordScanner
    private var acc: ScanAccumulator
    /// The file's chunk list, for exact spans; nil for a pipe.
    private let entries: [IndexEntry]?
    /// Position in `entries` by chunk offset.
    private let entryAt: [Int: Int]
    private var nextBlock = 0
    private var lastPts: Int64?
    private var damageSeen = 0
    private var queued: Step?
    private var finalHealth: EtokHealth?

    /// The damaged ranges returned so far, in stream order.
    public private(set) var damage: [DamagedRange] = []

    init(source: any ByteSource, header: EtokHeader, headEnd: Int, entries: [IndexEntry]?,
         wants: @escaping (StreamSpan) -> Bool) {
        file = source.name
        self.header = header
        self.wants = wants
        self.entries = entries
        var at: [Int: Int] = [:]
        for (i, e) in (entries ?? []).enumerated() { at[e.offset] = i }
        entryAt = at
        scanner = RecordScanner(source: source, header: header, headEnd: headEnd)
        acc = ScanAccumulator(file: source.name, header: header)
    }

    /// The stream's health: final once `next()` has returned nil; before that, what was seen so far.
    public var health: EtokHealth {
        finalHealth ?? acc.health(endOffset: scanner.position, truncation: nil, chunksChecked: true)
    }

    /// The next chunk or damaged range, or nil at the end.
    /// - Throws: `FormatError.io` only (damage is a step).
    public func next() throws(FormatError) -> Step? {
        let step = try advance()
        if case .damaged(let range)? = step { damage.append(range) }
        return step
    }

    private func advance() throws(FormatError) -> Step? {
        if let step = queued {
            queued = nil
            return step
        }
        while finalHealth == nil, let event = try scanner.next() {
            switch event {
            case .record(let record):
                guard let entry = acc.accept(record) else { continue }
                var chunk: Chunk?
                if wants(span(of: entry)) {
                    do {
                        chunk = try ChunkCodec.parse(record.payload, header: header, offset: record.offset, file: file)
                    } catch {
                        // Its blocks show as missing at the next readable chunk, with this reason.
                        acc.note(error)
                        acc.dropLast()
                        continue
                    }
                }
                let errors = newErrors(acc.damage)
                let previous = (block: nextBlock, pts: lastPts)
                nextBlock = entry.firstBlock + entry.blockCount
                lastPts = entry.firstPts
                if entry.firstBlock > previous.block || !errors.isEmpty {
                    let range = DamagedRange(file: file, firstBlock: previous.block, endBlock: entry.firstBlock,
                                             reason: errors.first ?? .missingBlocks(file: file, from: previous.block, to: entry.firstBlock))
                    let gap = StreamSpan(firstBlock: previous.block, endBlock: entry.firstBlock, startPts: previous.pts,
                                         endPts: entry.firstPts)
                    if wants(gap) {
                        queued = chunk.map { .chunk($0) }
                        return .damaged(range)
                    }
                }
                if let chunk { return .chunk(chunk) }
            case .damage(let error):
                acc.note(error)
            case .end(let offset, let truncation, let cutRecord):
                let health = acc.health(endOffset: offset, truncation: truncation, cutRecord: cutRecord, chunksChecked: true)
                finalHealth = health
                let errors = newErrors(health.damage) + (health.truncation.map { [$0] } ?? [])
                if let range = ChunkWalk.trailing(errors, from: nextBlock, health: health, file: file),
                   wants(StreamSpan(firstBlock: nextBlock, endBlock: nil, startPts: lastPts, endPts: nil)) {
                    return .damaged(range)
                }
            }
        }
        return nil
    }

    /// A chunk's span: to the next chunk's `pts` when the file's chunk list says it, else open.
    private func span(of e: IndexEntry) -> StreamSpan {
        let next = entryAt[e.offset].flatMap { i in entries.flatMap { i + 1 < $0.count ? $0[i + 1].firstPts : nil } }
        return StreamSpan(firstBlock: e.firstBlock, endBlock: e.firstBlock + e.blockCount, startPts: e.firstPts, endPts: next)
    }

    /// The errors noted since the last call (missing blocks are left out: the gap says them).
    private func newErrors(_ all: [FormatError]) -> [FormatError] {
        defer { damageSeen = all.count }
        guard damageSeen < all.count else { return [] }
        return all[damageSeen...].filter { if case .missingBlocks = $0 { return false } else { return true } }
    }

    /// The range for the damage after the last readable chunk, if any: every block from `from` on
    /// when blocks may be lost (a cut before the index, a damaged chunk), none otherwise (damage
    /// confined to the index or the TAIL, or anything after an intact INDX).
    static func trailing(_ errors: [FormatError], from: Int, health: EtokHealth, file: String) -> DamagedRange? {
        guard !errors.isEmpty else { return nil }
        func loses(_ error: FormatError) -> Bool {
            if case .truncated = error { return !health.reachedIndex }
            if let index = health.indexOffset, let at = error.offset, at > index { return false }
            return error.mayLoseBlocks
        }
        let losing = errors.first(where: loses)
        return DamagedRange(file: file, firstBlock: from, endBlock: losing == nil ? from : nil, reason: losing ?? errors[0])
    }
}
