/// What a reader found out about a file's integrity (§7): complete or truncated, and every damaged
/// record or inconsistency, each as a `FormatError` naming where.
///
/// A value type; `Sendable`. `EtokReader.health` describes what opening the file checked;
/// `EtokReader.verify()` checks every record and every chunk's token data.
public struct EtokHealth: Sendable, Equatable, CustomStringConvertible {
    /// Set when the file ends inside a record, or ends without a `TAIL` (killed writer, cut download,
    /// or a stream still being written): a `FormatError.truncated` naming the offset.
    public var truncation: FormatError?
    /// Damaged records (`badCRC`, `badRecord`), chunks whose fields or token data are out of range,
    /// missing blocks, an index that disagrees with the chunks, data after `TAIL`.
    public var damage: [FormatError]
    /// Whether a valid `TAIL` and `INDX` were found and agree with the chunks.
    public var hasValidIndex: Bool
    /// Whether every chunk record was read and its CRC checked (a scan or `verify()`), as opposed to
    /// located through the index only.
    public var chunksChecked: Bool
    /// Whether the data reached the end of the chunks: an `INDX` or `TAIL` record was met, whole,
    /// damaged or cut short. The writer appends them after the last chunk, so a truncation after
    /// that point lost no block. True when the chunks were located through the index.
    public var reachedIndex: Bool
    /// Offset of the intact `INDX` record a scan met, if any. The writer appends nothing but `TAIL`
    /// after it, so damage past it (a stray record, junk bytes) loses no block.
    public var indexOffset: Int?

    /// All fields.
    public init(truncation: FormatError? = nil, damage: [FormatError] = [], hasValidIndex: Bool,
                chunksChecked: Bool, reachedIndex: Bool? = nil, indexOffset: Int? = nil) {
        self.truncation = truncation
        self.damage = damage
        self.hasValidIndex = hasValidIndex
        self.chunksChecked = chunksChecked
        self.reachedIndex = reachedIndex ?? hasValidIndex
        self.indexOffset = indexOffset
    }

    /// Offset where the file is truncated, if it is.
    public var truncatedAt: Int? {
        if case .truncated(_, let offset, _)? = truncation { return offset }
        return nil
    }

    /// Whether the file is truncated.
    public var isTruncated: Bool { truncation != nil }

    /// Records whose CRC failed.
    public var crcFailures: [FormatError] {
        damage.filter { if case .badCRC = $0.head { return true } else { return false } }
    }

    /// Complete, with a valid index, and nothing damaged (as far as checked: see `chunksChecked`).
    public var isComplete: Bool { truncation == nil && damage.isEmpty && hasValidIndex }

    /// One line without the file name (the caller names it): "complete", or the problems joined by
    /// "; " ("truncated at offset N (…); bad checksum (CRC) in CHNK record at offset M").
    public var description: String {
        var parts: [String] = []
        if let t = truncation { parts.append(t.problem) }
        parts += damage.map(\.problem)
        if parts.isEmpty { return hasValidIndex ? "complete" : "no index" }
        return parts.joined(separator: "; ")
    }
}

/// Collects the results of a front-to-back scan (§7 "Truncation and streams"): the readable chunks
/// in block order, and the damage. Shared by `EtokReader` (opening a file without an index, `verify()`) and `ChunkWalk`.
struct ScanAccumulator {
    let file: String
    let header: EtokHeader
    /// Chunks whose record is intact and whose summary is in range, in stream order.
    private(set) var entries: [IndexEntry] = []
    /// The damage in stream order; adjacent damage (no intact record between) is one entry, a
    /// `FormatError.damageRun`, so garbage of any length costs one entry (§7).
    private(set) var damage: [FormatError] = []
    /// Whether the last thing met was damage: the next damage then joins its run.
    private var runOpen = false
    /// The block the next chunk should start at.
    private(set) var nextBlock = 0
    private var index: (offset: Int, entries: [IndexEntry])?
    private var tail: (offset: Int, indexOffset: Int)?
    /// Set once `TAIL` was seen: nothing may follow it.
    private(set) var sawTail = false
    /// Set once an `INDX` or `TAIL` record was met, even damaged (see `EtokHealth.reachedIndex`).
    private var reachedIndex = false

    init(file: String, header: EtokHeader) {
        self.file = file
        self.header = header
    }

    /// Records damage found by the caller or the scan (a chunk whose token data does not decode, a
    /// record whose CRC fails).
    mutating func note(_ error: FormatError) {
        addDamage(error)
        if case .badCRC(_, let record, _) = error, record == "INDX" || record == "TAIL" { reachedIndex = true }
        if case .badRecord(_, let record, _, _) = error, record == "INDX" || record == "TAIL" { reachedIndex = true }
    }

    /// Adds damage, joining the open run if the last thing met was damage too.
    private mutating func addDamage(_ error: FormatError) {
        if runOpen, let last = damage.last {
            damage[damage.count - 1] = last.merging(error)
        } else {
            damage.append(error)
            runOpen = true
        }
    }

    /// Takes one intact record. Returns the chunk's entry if it is a chunk to read, nil otherwise.
    mutating func accept(_ record: RawRecord) -> IndexEntry? {
        if sawTail {
            addDamage(.trailingData(file: file, offset: record.offset))
            return nil
        }
        if record.type == RecordType.index || record.type == RecordType.tail { reachedIndex = true }
        switch record.type {
        case RecordType.chunk:
            let s: ChunkCodec.Summary
            do {
                s = try ChunkCodec.summary(record.payload, header: header, offset: record.offset, file: file)
            } catch {
                addDamage(error)
                return nil
            }
            return place(IndexEntry(offset: record.offset, firstBlock: s.firstBlock, blockCount: s.blockCount,
                                    firstPts: s.firstPts))
        case RecordType.index:
            if index != nil {
                addDamage(.badRecord(file: file, record: "INDX", offset: record.offset, message: "second index"))
            } else {
                do {
                    index = (record.offset, try IndexCodec.parse(record.payload, header: header, offset: record.offset, file: file))
                    runOpen = false
                } catch {
                    addDamage(error)
                }
            }
        case RecordType.tail:
            sawTail = true
            if record.payload.count == 8 {
                tail = (record.offset, Int(clamping: record.payload.leU64(at: 0)))
                runOpen = false
            } else {
                addDamage(.badRecord(file: file, record: "TAIL", offset: record.offset,
                                     message: "payload of \(record.payload.count) bytes, expected 8"))
            }
        case RecordType.head:
            addDamage(.badRecord(file: file, record: "HEAD", offset: record.offset, message: "a second HEAD"))
        default:
            runOpen = false  // a future record type: skipped (§3)
        }
        return nil
    }

    /// Adds a chunk in stream order, noting missing blocks before it; refuses one that overlaps.
    private mutating func place(_ e: IndexEntry) -> IndexEntry? {
        if e.firstBlock < nextBlock {
            addDamage(.chunkOutOfRange(file: file, offset: e.offset,
                                       message: "first_block \(e.firstBlock) overlaps earlier chunks (expected \(nextBlock))"))
            return nil
        }
        runOpen = false
        if e.firstBlock > nextBlock {
            damage.append(.missingBlocks(file: file, from: nextBlock, to: e.firstBlock))
        }
        nextBlock = e.firstBlock + e.blockCount
        entries.append(e)
        return e
    }

    /// Drops the last chunk accepted (its content turned out to be damaged): its blocks are missing.
    mutating func dropLast() {
        guard let e = entries.popLast() else { return }
        nextBlock = e.firstBlock
    }

    /// The health once the scan ended at `endOffset` (`truncation` when it ended inside a record,
    /// `cutRecord` the type of that record when known).
    func health(endOffset: Int, truncation: FormatError?, cutRecord: [UInt8]? = nil, chunksChecked: Bool) -> EtokHealth {
        var damage = self.damage
        var cut = truncation
        var validIndex = false
        let endsWithDamagedTail = damage.last.map { last -> Bool in
            switch last.head {
            case .badCRC(_, "TAIL", _), .badRecord(_, "TAIL", _, _): return true
            default: return false
            }
        } ?? false
        // A last record that is a damaged TAIL: the file is whole, its TAIL is not (reported as damage).
        if cut == nil, !sawTail, !endsWithDamagedTail {
            cut = .truncated(file: file, offset: endOffset, what: "no TAIL record: the writer did not finish")
        }
        if let tail {
            if let index {
                if tail.indexOffset != index.offset {
                    damage.append(.badIndex(file: file, offset: tail.offset,
                                            message: "TAIL points at \(tail.indexOffset), INDX is at \(index.offset)"))
                } else if let problem = IndexCodec.disagreement(index: index.entries, scanned: entries) {
                    damage.append(.badIndex(file: file, offset: index.offset, message: problem))
                } else {
                    validIndex = true
                }
            } else if !damage.contains(where: { if case .badCRC(_, "INDX", _) = $0.head { return true } else { return false } }) {
                damage.append(.badIndex(file: file, offset: tail.offset, message: "TAIL without an INDX"))
            }
        }
        let cutInIndex = cutRecord == RecordType.index || cutRecord == RecordType.tail
        return EtokHealth(truncation: cut, damage: damage, hasValidIndex: validIndex, chunksChecked: chunksChecked,
                          reachedIndex: reachedIndex || cutInIndex, indexOffset: index?.offset)
    }
}
