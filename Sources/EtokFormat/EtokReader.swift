/// Reads an `.etok` file with random access (§2-§7).
///
/// Opening reads the preamble and `HEAD` (fatal errors throw), then locates the chunks: from the
/// `TAIL` and `INDX` records when the file ends with a valid `TAIL` (reading only the last 20 bytes
/// and the index), otherwise by scanning every record front to back (checking CRCs, skipping damaged
/// and unknown records). `chunks` lists the chunks found, in block order; `health` says what was
/// found wrong. Every `chunk(at:)` re-checks the record's CRC and every field, so it never returns
/// tokens that differ from what the writer wrote: it throws instead.
///
/// Immutable after opening and reads with `pread`, so one reader may serve several threads (decode
/// chunks in parallel). Memory: the index (about 40 bytes per chunk); chunks are read on demand.
/// Reading a stream in order, with its damage, is `ChunkSource`'s job (which uses this reader for
/// files); `health` here is only what opening saw (the index hides what lies between records).
public final class EtokReader: Sendable {
    /// The file name used in messages.
    public let fileName: String
    /// The parsed `HEAD` (§4).
    public let header: EtokHeader
    /// The file's major version (always `EtokFormat.majorVersion`).
    public let majorVersion: Int
    /// The file's minor version (any; newer minors only add what this reader may skip).
    public let minorVersion: Int
    /// The readable chunks in block order (from the index, or found by the scan).
    public let chunks: [IndexEntry]
    /// What opening found (`health.chunksChecked` is false when the index was used: `verify()`
    /// checks every chunk).
    public let health: EtokHealth
    /// Whether the chunks were located through the index (§7) rather than by a scan.
    public let usedIndex: Bool
    /// Offset just past the `HEAD` record.
    let headEnd: Int
    let source: any ByteSource & Sendable

    /// Opens the file at `path`.
    /// - Throws: `FormatError` when there is nothing usable (I/O, bad signature, unknown major
    ///   version, damaged or missing header); damage after the header goes to `health` instead.
    public convenience init(path: String) throws(FormatError) {
        try self.init(source: FileSource(path: path))
    }

    /// Reads a file already in memory (tests, fuzzing).
    public convenience init(bytes: [UInt8], name: String) throws(FormatError) {
        try self.init(source: MemorySource(bytes, name: name))
    }

    init(source: any ByteSource & Sendable) throws(FormatError) {
        self.source = source
        fileName = source.name
        let pre = try Preamble.read(from: source)
        header = pre.header
        majorVersion = pre.major
        minorVersion = pre.minor
        headEnd = pre.headEnd
        if let indexed = try EtokReader.locateThroughIndex(source: source, header: header, headEnd: headEnd) {
            chunks = indexed
            usedIndex = true
            health = EtokHealth(hasValidIndex: true, chunksChecked: false)
        } else {
            let scan = try EtokReader.scan(source: source, header: header, headEnd: headEnd)
            chunks = scan.entries
            usedIndex = false
            health = scan.health
        }
    }

    /// Reads the last 20 bytes; if they are a valid `TAIL`, reads and checks the `INDX` it points at.
    /// Returns nil when there is no usable index (the caller scans; the scan reports why).
    private static func locateThroughIndex(source: ByteSource, header: EtokHeader,
                                           headEnd: Int) throws(FormatError) -> [IndexEntry]? {
        guard let size = source.size, size >= headEnd + EtokFormat.tailSize + EtokFormat.recordOverhead + 4 else { return nil }
        let tailAt = size - EtokFormat.tailSize
        let tail = try source.read(at: tailAt, count: EtokFormat.tailSize)
        guard tail.count == EtokFormat.tailSize, Array(tail[0..<4]) == RecordType.tail, tail.leU32(at: 4) == 8,
              RecordType.crcHolds(tail) else { return nil }
        let indexAt = tail.leU64(at: 8)
        guard indexAt >= UInt64(headEnd), indexAt <= UInt64(tailAt - EtokFormat.recordOverhead - 4) else { return nil }
        let at = Int(indexAt)
        // The INDX record must end at or before TAIL; check its header before reading it.
        let indexHead = try source.read(at: at, count: 8)
        guard indexHead.count == 8, Array(indexHead[0..<4]) == RecordType.index else { return nil }
        let length = Int(indexHead.leU32(at: 4))
        let total = EtokFormat.recordOverhead + length
        let limit = RecordLimits(header: header).maxPayload(type: RecordType.index[...], offset: at, headEnd: headEnd)
        guard length <= limit, at + total <= tailAt else { return nil }
        let record = try source.read(at: at, count: total)
        guard record.count == total, RecordType.crcHolds(record) else { return nil }
        let entries = try? IndexCodec.parse(Array(record[8..<(record.count - 4)]), header: header, offset: at,
                                            file: source.name)
        guard let entries, entries.allSatisfy({ $0.offset >= headEnd }) else { return nil }
        return entries
    }

    /// Scans every record after `HEAD` (§7 "Truncation and streams") to locate the chunks of a file
    /// without a usable index (their token data is checked when they are read).
    static func scan(source: ByteSource, header: EtokHeader, headEnd: Int) throws(FormatError) -> (entries: [IndexEntry], health: EtokHealth) {
        var scanner = RecordScanner(source: source, header: header, headEnd: headEnd)
        var acc = ScanAccumulator(file: source.name, header: header)
        while let event = try scanner.next() {
            switch event {
            case .record(let record):
                _ = acc.accept(record)
            case .damage(let error):
                acc.note(error)
            case .end(let offset, let truncation, let cutRecord):
                let health = acc.health(endOffset: offset, truncation: truncation, cutRecord: cutRecord, chunksChecked: true)
                return (acc.entries, health)
            }
        }
        // `next()` always ends with `.end`; this is not reached.
        return (acc.entries, acc.health(endOffset: scanner.position, truncation: nil, chunksChecked: true))
    }

    /// Checks the whole file: every record's CRC, every chunk's fields and token data, the index
    /// against the chunks. Returns the full health, what a `ChunkSource` walk of the file ends with.
    /// Cost: reads and decodes the whole file.
    /// - Throws: only `FormatError.io`.
    public func verify() throws(FormatError) -> EtokHealth {
        let walk = ChunkWalk(source: source, header: header, headEnd: headEnd, entries: chunks, wants: { _ in true })
        while try walk.next() != nil {}
        return walk.health
    }

    /// Number of blocks in the readable chunks.
    public var blockCount: Int { chunks.reduce(0) { $0 + $1.blockCount } }

    /// The block after the last readable one (blocks below it may be missing; see `health`).
    public var endBlock: Int { chunks.last.map { $0.firstBlock + $0.blockCount } ?? 0 }

    /// Position in `chunks` of the chunk holding block `block`, or nil (binary search on the index).
    public func chunkIndex(containingBlock block: Int) -> Int? {
        var lo = 0
        var hi = chunks.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if chunks[mid].firstBlock + chunks[mid].blockCount <= block { lo = mid + 1 } else { hi = mid }
        }
        return lo < chunks.count && chunks[lo].blockRange.contains(block) ? lo : nil
    }

    /// Reads, checks and decodes the chunk `chunks[i]` (§5, §6).
    /// - Throws: `FormatError` naming the damage (bad CRC, fields out of range, token data overrun,
    ///   an index entry that does not match the chunk), or `.noSuchChunk` for a bad `i`.
    public func chunk(at i: Int) throws(FormatError) -> Chunk {
        guard chunks.indices.contains(i) else { throw FormatError.noSuchChunk(file: fileName, index: i, count: chunks.count) }
        let e = chunks[i]
        let head = try source.read(at: e.offset, count: 8)
        if head.count < 8 { throw FormatError.truncated(file: fileName, offset: e.offset, what: "inside a CHNK record") }
        if Array(head[0..<4]) != RecordType.chunk {
            throw FormatError.badIndex(file: fileName, offset: e.offset,
                                       message: "entry points at a \(printableType(head[0..<4])) record, not CHNK")
        }
        let length = Int(head.leU32(at: 4))
        let limit = RecordLimits(header: header).chunk
        if length > limit {
            throw FormatError.badRecord(file: fileName, record: "CHNK", offset: e.offset,
                                        message: "length \(length) is more than a CHNK record may hold here (\(limit))")
        }
        let bytes = try source.read(at: e.offset, count: EtokFormat.recordOverhead + length)
        if bytes.count < EtokFormat.recordOverhead + length {
            throw FormatError.truncated(file: fileName, offset: e.offset, what: "inside a CHNK record")
        }
        if !RecordType.crcHolds(bytes) { throw FormatError.badCRC(file: fileName, record: "CHNK", offset: e.offset) }
        let chunk = try ChunkCodec.parse(Array(bytes[8..<(8 + length)]), header: header, offset: e.offset, file: fileName)
        if chunk.firstBlock != e.firstBlock || chunk.blocks.count != e.blockCount || chunk.blocks[0].pts != e.firstPts {
            throw FormatError.badIndex(file: fileName, offset: e.offset,
                                       message: "index says \(BlockRangeText.blocks(e.firstBlock, e.firstBlock + e.blockCount)), the chunk holds \(BlockRangeText.blocks(chunk.firstBlock, chunk.firstBlock + chunk.blocks.count))")
        }
        return chunk
    }

    /// The chunk holding block `block` (seeking with the index when there is one).
    /// - Throws: `.noSuchBlock` when no readable chunk holds it; damage as `chunk(at:)`.
    public func chunk(containingBlock block: Int) throws(FormatError) -> Chunk {
        guard let i = chunkIndex(containingBlock: block) else { throw FormatError.noSuchBlock(file: fileName, block: block) }
        return try chunk(at: i)
    }
}
