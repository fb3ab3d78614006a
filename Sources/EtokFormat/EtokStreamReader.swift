/// Reads an `.etok` stream front to back (§7 "Truncation and streams"): stdin, a pipe, or a file
/// still being written. Yields every intact chunk in order; skips damaged and unknown records
/// (noting the damage) and resynchronises after them; never seeks.
///
/// Usage: create it (reads the preamble and `HEAD`), call `next()` until it returns nil, then read
/// `health`. Memory: one record at a time, more only while resynchronising after damage (bounded
/// by the input read, never by a length field).
///
/// Not thread-safe: one owner.
public final class EtokStreamReader {
    /// The file name used in messages (`-` for stdin).
    public let fileName: String
    /// The parsed `HEAD` (§4).
    public let header: EtokHeader
    /// The file's minor version.
    public let minorVersion: Int
    private let source: StreamSource
    private var scanner: RecordScanner
    private var acc: ScanAccumulator
    private var finalHealth: EtokHealth?

    /// Reads from descriptor `fd` (not closed by the reader), for example 0 for stdin.
    /// - Throws: `FormatError` when the preamble or header is unusable.
    public convenience init(fileDescriptor fd: Int32, name: String) throws(FormatError) {
        try self.init(source: StreamSource(fd: fd, name: name))
    }

    /// Reads `bytes` as if they arrived through a pipe (tests, fuzzing).
    public convenience init(bytes: [UInt8], name: String) throws(FormatError) {
        try self.init(source: StreamSource(bytes: bytes, name: name))
    }

    init(source: StreamSource) throws(FormatError) {
        self.source = source
        fileName = source.name
        let pre = try Preamble.read(from: source)
        header = pre.header
        minorVersion = pre.minor
        scanner = RecordScanner(source: source, offset: pre.headEnd)
        acc = ScanAccumulator(file: source.name, header: pre.header)
    }

    /// The next intact chunk, or nil at the end of the stream. Damaged chunks are skipped and noted
    /// in `health`; their blocks show as missing.
    /// - Throws: only `FormatError.io`.
    public func next() throws(FormatError) -> Chunk? {
        while finalHealth == nil, let event = try scanner.next() {
            switch event {
            case .record(let record):
                guard acc.accept(record) != nil else { continue }
                do {
                    return try ChunkCodec.parse(record.payload, header: header, offset: record.offset, file: fileName)
                } catch {
                    acc.note(error)
                    acc.dropLast()
                }
            case .damage(let error):
                acc.note(error)
            case .end(let offset, let truncation, let cutRecord):
                finalHealth = acc.health(endOffset: offset, truncation: truncation, cutRecord: cutRecord, chunksChecked: true)
            }
        }
        return nil
    }

    /// The damage noted so far, in the order met (`health.damage` adds what only the end can tell).
    public var damageSoFar: [FormatError] { acc.damage }

    /// Bytes read from the stream so far: once `next()` has returned nil, after `readToEnd()`, the
    /// stream's whole size.
    public var bytesRead: Int { source.bytesRead }

    /// Reads and drops whatever follows (after damage that ended the scan early), so that
    /// `bytesRead` is the stream's size and the writer of a pipe does not get SIGPIPE.
    /// - Throws: only `FormatError.io`.
    public func readToEnd() throws(FormatError) {
        try source.drain()
    }

    /// The stream's health: final once `next()` has returned nil; before that, what was seen so far.
    public var health: EtokHealth {
        finalHealth ?? acc.health(endOffset: scanner.position, truncation: nil, chunksChecked: true)
    }
}
