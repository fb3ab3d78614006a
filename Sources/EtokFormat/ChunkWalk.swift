/// Where a chunk or a damaged range lies in the stream, so that a selection (frames, times) can say
/// whether it needs it. A value type; `Sendable`.
public struct StreamSpan: Sendable, Equatable {
    /// The first block.
    public var firstBlock: Int
    /// One past the last block; nil when the span runs to the end of the stream.
    public var endBlock: Int?
    /// The span starts at or after this pts (nil: at the start of the stream).
    public var startPts: Int64?
    /// The span ends before this pts (nil: at the end of the stream).
    public var endPts: Int64?

    /// All fields.
    public init(firstBlock: Int, endBlock: Int?, startPts: Int64?, endPts: Int64?) {
        self.firstBlock = firstBlock
        self.endBlock = endBlock
        self.startPts = startPts
        self.endPts = endPts
    }
}

/// Walks a stream's chunks in block order and says, in between, which blocks are lost and why
/// (§7 "Damage"): the one place that turns a reader's health into `DamagedRange`s, so that every
/// command reports damage the same way.
///
/// Over a file (`EtokReader`) it reads the chunks a selection wants (`wants`, asked once per chunk
/// and per damaged range, with its `StreamSpan`); a chunk that fails to read (bad CRC, bad token
/// data) is a damaged range of its own blocks, and the damage the reader's scan noted between two
/// readable chunks, or after the last one, is a range too (a gap in the blocks, a truncated end).
/// Over a pipe (`EtokStreamReader`) it yields every chunk and finds the same ranges as the data
/// arrives. Either way the steps come in stream order and a caller decides what a range means:
/// `decode` and `export` stop at the first one unless asked to skip damage.
///
/// Usage: call `next()` until it returns nil; `damage` holds the ranges returned so far.
/// Not thread-safe: one owner. Memory: one chunk at a time (plus the plan: one entry per chunk).
public final class ChunkWalk {
    /// What the walk met next.
    public enum Step: Sendable, Equatable {
        /// A chunk read whole, its CRC and token data checked.
        case chunk(Chunk)
        /// Blocks that cannot be read, and why.
        case damaged(DamagedRange)
    }

    private enum Planned {
        case read(Int)
        case damaged(DamagedRange)
    }

    private let file: String
    private let wants: (StreamSpan) -> Bool
    // File mode.
    private let reader: EtokReader?
    private var plan: [Planned] = []
    private var cursor = 0
    // Stream mode.
    private let stream: EtokStreamReader?
    private var nextBlock = 0
    private var lastPts: Int64?
    private var damageSeen = 0
    private var queued: Step?
    private var ended = false

    /// The damaged ranges returned so far, in stream order.
    public private(set) var damage: [DamagedRange] = []

    /// Walks the readable chunks of `reader`, with the damage in `health` (default: what opening
    /// the file found; pass `reader.verify()` to include damage the index hid).
    public init(reader: EtokReader, health: EtokHealth? = nil, wants: @escaping (StreamSpan) -> Bool = { _ in true }) {
        self.reader = reader
        stream = nil
        file = reader.fileName
        self.wants = wants
        plan = ChunkWalk.plan(entries: reader.chunks, health: health ?? reader.health, file: file)
            .filter { wants($0.span) }.map(\.item)
    }

    /// Walks a stream front to back; every chunk is yielded (`wants` filters damaged ranges only).
    public init(stream: EtokStreamReader, wants: @escaping (StreamSpan) -> Bool = { _ in true }) {
        self.stream = stream
        reader = nil
        file = stream.fileName
        self.wants = wants
    }

    /// The next chunk or damaged range, or nil at the end.
    /// - Throws: `FormatError.io` only (damage is a step).
    public func next() throws(FormatError) -> Step? {
        let step: Step?
        if let reader {
            guard cursor < plan.count else { return nil }
            defer { cursor += 1 }
            switch plan[cursor] {
            case .damaged(let range):
                step = .damaged(range)
            case .read(let i):
                do {
                    step = .chunk(try reader.chunk(at: i))
                } catch {
                    if case .io = error { throw error }
                    let e = reader.chunks[i]
                    step = .damaged(DamagedRange(file: file, firstBlock: e.firstBlock,
                                                 endBlock: e.firstBlock + e.blockCount, reason: error))
                }
            }
        } else {
            step = try nextFromStream()
        }
        if case .damaged(let range)? = step { damage.append(range) }
        return step
    }

    // MARK: Stream mode

    private func nextFromStream() throws(FormatError) -> Step? {
        guard let stream else { return nil }
        while true {
            if let step = queued {
                queued = nil
                return step
            }
            if ended { return nil }
            if let chunk = try stream.next() {
                let errors = newErrors(stream.damageSoFar)
                let first = chunk.firstBlock
                let previous = (nextBlock, lastPts)
                nextBlock = chunk.firstBlock + chunk.blocks.count
                lastPts = chunk.blocks.last?.pts
                guard first > previous.0 || !errors.isEmpty else { return .chunk(chunk) }
                let range = DamagedRange(file: file, firstBlock: previous.0, endBlock: first,
                                         reason: errors.first ?? .missingBlocks(file: file, from: previous.0, to: first))
                let span = StreamSpan(firstBlock: previous.0, endBlock: first, startPts: previous.1, endPts: chunk.blocks.first?.pts)
                if wants(span) {
                    queued = .chunk(chunk)
                    return .damaged(range)
                }
                return .chunk(chunk)
            }
            ended = true
            let health = stream.health
            let errors = newErrors(health.damage) + (health.truncation.map { [$0] } ?? [])
            if let range = ChunkWalk.trailing(errors, from: nextBlock, health: health, file: file),
               wants(StreamSpan(firstBlock: nextBlock, endBlock: nil, startPts: lastPts, endPts: nil)) {
                return .damaged(range)
            }
            return nil
        }
    }

    /// The errors noted since the last call (missing blocks are left out: the gap says them).
    private func newErrors(_ all: [FormatError]) -> [FormatError] {
        defer { damageSeen = all.count }
        guard damageSeen < all.count else { return [] }
        return all[damageSeen...].filter { if case .missingBlocks = $0 { return false } else { return true } }
    }

    // MARK: File mode

    /// Every chunk to read and every damaged range between them, in stream order, with its span.
    private static func plan(entries: [IndexEntry], health: EtokHealth, file: String) -> [(item: Planned, span: StreamSpan)] {
        // Damage at a chunk's own offset is found again when that chunk is read; missing blocks
        // show as the gaps between chunks.
        let atChunks = Set(entries.map(\.offset))
        var errors = (health.damage + (health.truncation.map { [$0] } ?? [])).filter { error in
            if case .missingBlocks = error { return false }
            return error.offset.map { !atChunks.contains($0) } ?? true
        }
        errors.sort { ($0.offset ?? Int.max) < ($1.offset ?? Int.max) }
        var out: [(item: Planned, span: StreamSpan)] = []
        var pending = errors[...]
        var expected = 0
        var previousPts: Int64?
        for (i, e) in entries.enumerated() {
            var here: [FormatError] = []
            while let error = pending.first, (error.offset ?? Int.max) < e.offset {
                here.append(error)
                pending = pending.dropFirst()
            }
            if e.firstBlock > expected || !here.isEmpty {
                let range = DamagedRange(file: file, firstBlock: expected, endBlock: max(expected, e.firstBlock),
                                         reason: here.first ?? .missingBlocks(file: file, from: expected, to: e.firstBlock))
                out.append((.damaged(range), StreamSpan(firstBlock: expected, endBlock: max(expected, e.firstBlock),
                                                        startPts: previousPts, endPts: e.firstPts)))
            }
            let nextPts = i + 1 < entries.count ? entries[i + 1].firstPts : nil
            out.append((.read(i), StreamSpan(firstBlock: e.firstBlock, endBlock: e.firstBlock + e.blockCount,
                                             startPts: e.firstPts, endPts: nextPts)))
            expected = e.firstBlock + e.blockCount
            previousPts = e.firstPts
        }
        if let range = trailing(Array(pending), from: expected, health: health, file: file) {
            out.append((.damaged(range), StreamSpan(firstBlock: expected, endBlock: nil, startPts: previousPts, endPts: nil)))
        }
        return out
    }

    /// The range for the damage after the last readable chunk, if any: every block from `from` on
    /// when blocks may be lost (a cut before the index, a damaged chunk), none otherwise (damage
    /// confined to the index or the TAIL).
    private static func trailing(_ errors: [FormatError], from: Int, health: EtokHealth, file: String) -> DamagedRange? {
        guard !errors.isEmpty else { return nil }
        func loses(_ error: FormatError) -> Bool {
            if case .truncated = error { return !health.reachedIndex }
            return error.mayLoseBlocks
        }
        let losing = errors.first(where: loses)
        return DamagedRange(file: file, firstBlock: from, endBlock: losing == nil ? from : nil, reason: losing ?? errors[0])
    }
}
