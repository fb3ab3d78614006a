/// Reads records front to back (§3, §7), checking each CRC, and resynchronises after damage: after a
/// record whose CRC fails (or whose length is above its type's limit, `RecordLimits`, or runs past
/// the end), it looks for the next place where a record of a known type with a valid CRC starts,
/// first right after the damaged record's declared end, then byte by byte. A CRC-32 match by chance
/// at a wrong place is about 2^-32 per candidate of a known type, so damage in one chunk does not lose
/// the chunks after it. When no valid record follows, everything from the damage to the end of the
/// data is one damaged stretch and the scan ends there (truncated inside the damaged record when that
/// record ran past the end).
///
/// Works on any `ByteSource`, streams included. Memory: one record (at most its type's limit) or one
/// search window; the search releases the bytes it has passed, so garbage of any length costs no
/// more. Not thread-safe. Cost: one read and one CRC per record; resynchronisation reads forward in
/// 64 KiB windows.
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
    private let limits: RecordLimits
    /// Offset just past `HEAD`, where the records after it start.
    private let headEnd: Int
    /// Offset of the next record.
    private(set) var position: Int
    private var finished = false
    /// An event to return on the next call (the end, after a last damage).
    private var queued: Event?
    /// Known: no valid record starts at or after this offset (saves repeated searches).
    private var nothingValidFrom = Int.max
    /// Where the data ends, once a search has reached it.
    private var dataEnd: Int?

    /// A scan of the records after `HEAD`, which ends at `headEnd`.
    init(source: ByteSource, header: EtokHeader, headEnd: Int) {
        self.source = source
        limits = RecordLimits(header: header)
        self.headEnd = headEnd
        position = headEnd
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
        let limit = limits.maxPayload(type: head.prefix(4), offset: start, headEnd: headEnd)
        if length > limit {
            let damage = FormatError.badRecord(file: file, record: typeName, offset: start,
                                               message: "length \(length) is more than \(article(typeName)) \(typeName) record may hold here (\(limit))")
            // Not read: if nothing valid follows and the data ends before the declared end, the
            // data was cut inside this record, as when the length is within the limit.
            let total = EtokFormat.recordOverhead + length
            let cut = FormatError.truncated(file: file, offset: start,
                                            what: "inside \(article(typeName)) \(typeName) record of \(total) bytes")
            return try resync(after: start, declaredEnd: nil, damage: damage, incomplete: cut, cutRecord: Array(head[0..<4]),
                              incompleteIfDataEndsBefore: start + total)
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
    /// ran past the end (`incomplete`; for a record too long to read, one whose declared end
    /// `recordEnd` lies past the data) means the data is truncated at `start`; otherwise the damage
    /// runs to the end of the data, where the scan ends. Every path either moves `position` forward
    /// or ends, so a scan always terminates.
    private mutating func resync(after start: Int, declaredEnd: Int?, damage: FormatError,
                                 incomplete: FormatError?, cutRecord: [UInt8]? = nil,
                                 incompleteIfDataEndsBefore recordEnd: Int? = nil) throws(FormatError) -> Event {
        if let end = declaredEnd, try validRecord(at: end) {
            position = end
            return .damage(damage)
        }
        switch try findRecord(from: start + 1) {
        case .found(let offset):
            position = offset
            source.release(before: position)
            return .damage(damage)
        case .none(let dataEnd):
            if let cut = incomplete, dataEnd < recordEnd ?? Int.max {
                finished = true
                return .end(offset: start, truncated: cut, cutRecord: cutRecord)
            }
            position = dataEnd
            queued = .end(offset: dataEnd, truncated: nil, cutRecord: nil)
            return .damage(damage)
        }
    }

    /// Whether a complete record of a known type with a valid CRC, within its type's limit, starts at
    /// `offset`.
    private func validRecord(at offset: Int) throws(FormatError) -> Bool {
        let head = try source.read(at: offset, count: 8)
        guard head.count == 8, RecordType.known.contains(Array(head[0..<4])) else { return false }
        let length = Int(head.leU32(at: 4))
        guard length <= limits.maxPayload(type: head.prefix(4), offset: offset, headEnd: headEnd) else { return false }
        let bytes = try source.read(at: offset, count: EtokFormat.recordOverhead + length)
        return bytes.count == EtokFormat.recordOverhead + length && RecordType.crcHolds(bytes)
    }

    /// Size of the windows searched for a record start.
    static let window = 1 << 16

    /// The first position at or after `from` in `w` where the 4-byte name of a known record type
    /// starts, or nil. The hot loop of resynchronisation (it runs over every byte of garbage): one
    /// compare per byte against the first letters 'H', 'C', 'I', 'T' through a raw pointer, the
    /// whole type only where one matches.
    static func nextKnownType(in w: [UInt8], from: Int) -> Int? {
        guard w.count >= 4 else { return nil }
        return w.withUnsafeBufferPointer { b -> Int? in
            var i = from
            let last = b.count - 4
            while i <= last {
                let c = b[i]
                if c == 0x48 || c == 0x43 || c == 0x49 || c == 0x54,
                   RecordType.known.contains(where: { $0[0] == c && $0[1] == b[i + 1] && $0[2] == b[i + 2] && $0[3] == b[i + 3] }) {
                    return i
                }
                i += 1
            }
            return nil
        }
    }

    /// What a search for the next valid record found.
    private enum Search {
        /// A valid record starts here.
        case found(Int)
        /// None does; the data ends here.
        case none(dataEnd: Int)
    }

    /// The first offset at or after `from` where a valid record of a known type starts. Releases the
    /// bytes it has searched past (a stream does not keep them).
    private mutating func findRecord(from: Int) throws(FormatError) -> Search {
        if from >= nothingValidFrom { return .none(dataEnd: dataEnd ?? from) }
        var p = from
        while true {
            source.release(before: p)
            let w = try source.read(at: p, count: RecordScanner.window + 3)
            if w.count < 4 {
                nothingValidFrom = from
                dataEnd = p + w.count
                return .none(dataEnd: p + w.count)
            }
            var i = 0
            while let at = RecordScanner.nextKnownType(in: w, from: i) {
                if try validRecord(at: p + at) { return .found(p + at) }
                i = at + 1
            }
            if w.count < RecordScanner.window + 3 {
                nothingValidFrom = from
                dataEnd = p + w.count
                return .none(dataEnd: p + w.count)
            }
            p += RecordScanner.window
        }
    }
}

/// "an" before a record type read as a word starting with a vowel ("an INDX"), "a" otherwise.
func article(_ typeName: String) -> String {
    typeName.first.map { "AEIOUaeiou".contains($0) } == true ? "an" : "a"
}
