/// Reads records front to back (§3, §7), checking each CRC, and resynchronises after damage: after a
/// record whose CRC fails (or whose length is absurd or runs past the end), it looks for the next
/// place where a record of a known type with a valid CRC starts, first right after the damaged
/// record's declared end, then byte by byte. A CRC-32 match by chance at a wrong place is about
/// 2^-32 per candidate of a known type, so damage in one chunk does not lose the chunks after it.
///
/// Works on any `ByteSource`, streams included (it releases bytes it has passed). Not thread-safe.
/// Cost: one read and one CRC per record; resynchronisation reads forward in 64 KiB windows.
struct RecordScanner {
    /// What the scan met next.
    enum Event {
        /// A complete record whose CRC holds.
        case record(RawRecord)
        /// A damaged record; the scan goes on at the next valid record (if any).
        case damage(FormatError)
        /// The data ends at `offset`; `truncated` when it ends inside a record, `cutRecord` that
        /// record's type when its header was read.
        case end(offset: Int, truncated: FormatError?, cutRecord: [UInt8]?)
    }

    private let source: ByteSource
    /// Offset of the next record.
    private(set) var position: Int
    private var finished = false
    /// An event to return on the next call (the end, after a last damage).
    private var queued: Event?
    /// Known: no valid record starts at or after this offset (saves repeated searches).
    private var nothingValidFrom = Int.max

    /// A scan starting at `offset` (just past the preamble or a known record).
    init(source: ByteSource, offset: Int) {
        self.source = source
        position = offset
    }

    /// The next event, or nil after `.end`. Throws only I/O errors.
    mutating func next() throws(FormatError) -> Event? {
        if let event = queued {
            queued = nil
            finished = true
            return event
        }
        if finished { return nil }
        let file = source.name
        let start = position
        let head = try source.read(at: start, count: 8)
        if head.isEmpty {
            finished = true
            return .end(offset: start, truncated: nil, cutRecord: nil)
        }
        let typeName = printableType(head.prefix(4))
        if head.count < 8 {
            finished = true
            return .end(offset: start, truncated: .truncated(file: file, offset: start, what: "inside a record header"),
                        cutRecord: nil)
        }
        let length = Int(head.leU32(at: 4))
        if length > EtokFormat.maxPayloadLength {
            let damage = FormatError.badRecord(file: file, record: typeName, offset: start,
                                               message: "length \(length) exceeds 2^30")
            return try resync(after: start, declaredEnd: nil, damage: damage, incomplete: nil)
        }
        let total = EtokFormat.recordOverhead + length
        let bytes = try source.read(at: start, count: total)
        if bytes.count < total {
            let cut = FormatError.truncated(file: file, offset: start,
                                            what: "inside \(article(typeName)) \(typeName) record of \(total) bytes")
            let damage = FormatError.badRecord(file: file, record: typeName, offset: start,
                                               message: "length \(length) runs past the end of the data")
            return try resync(after: start, declaredEnd: nil, damage: damage, incomplete: cut, cutRecord: Array(head[0..<4]))
        }
        if !RecordType.crcHolds(bytes) {
            let damage = FormatError.badCRC(file: file, record: typeName, offset: start)
            return try resync(after: start, declaredEnd: start + total, damage: damage, incomplete: nil)
        }
        position = start + total
        source.release(before: position)
        return .record(RawRecord(offset: start, type: Array(bytes[0..<4]), payload: Array(bytes[8..<(8 + length)])))
    }

    /// After damage at `start`: continue at the next valid record. If none is found, a record that
    /// ran past the end (`incomplete`) means the data is truncated at `start`; a complete but damaged
    /// record is passed over (the scan goes on at its declared end); an absurd length ends the scan.
    /// Every path either moves `position` forward or ends, so a scan always terminates.
    private mutating func resync(after start: Int, declaredEnd: Int?, damage: FormatError,
                                 incomplete: FormatError?, cutRecord: [UInt8]? = nil) throws(FormatError) -> Event {
        if let end = declaredEnd, try validRecord(at: end) {
            position = end
            return .damage(damage)
        }
        if let found = try findRecord(from: start + 1) {
            position = found
            source.release(before: position)
            return .damage(damage)
        }
        if let cut = incomplete {
            finished = true
            return .end(offset: start, truncated: cut, cutRecord: cutRecord)
        }
        if let end = declaredEnd {
            position = end
        } else {
            queued = .end(offset: start, truncated: nil, cutRecord: nil)
        }
        return .damage(damage)
    }

    /// Whether a complete record of a known type with a valid CRC starts at `offset`.
    private func validRecord(at offset: Int) throws(FormatError) -> Bool {
        let head = try source.read(at: offset, count: 8)
        guard head.count == 8, RecordType.known.contains(Array(head[0..<4])) else { return false }
        let length = Int(head.leU32(at: 4))
        guard length <= EtokFormat.maxPayloadLength else { return false }
        let bytes = try source.read(at: offset, count: EtokFormat.recordOverhead + length)
        return bytes.count == EtokFormat.recordOverhead + length && RecordType.crcHolds(bytes)
    }

    /// Size of the windows searched for a record start.
    static let window = 1 << 16

    /// The first offset at or after `from` where a valid record of a known type starts.
    private mutating func findRecord(from: Int) throws(FormatError) -> Int? {
        if from >= nothingValidFrom { return nil }
        var p = from
        while true {
            let w = try source.read(at: p, count: RecordScanner.window + 3)
            if w.count < 4 {
                nothingValidFrom = from
                return nil
            }
            for i in 0...(w.count - 4) where w[i] == 0x48 || w[i] == 0x43 || w[i] == 0x49 || w[i] == 0x54 {
                // 'H', 'C', 'I', 'T': the first letters of the known types.
                if RecordType.known.contains(where: { $0[0] == w[i] && $0[1] == w[i + 1] && $0[2] == w[i + 2] && $0[3] == w[i + 3] }),
                   try validRecord(at: p + i) {
                    return p + i
                }
            }
            if w.count < RecordScanner.window + 3 {
                nothingValidFrom = from
                return nil
            }
            p += RecordScanner.window
        }
    }
}

/// "an" before a record type read as a word starting with a vowel ("an INDX"), "a" otherwise.
func article(_ typeName: String) -> String {
    typeName.first.map { "AEIOUaeiou".contains($0) } == true ? "an" : "a"
}
