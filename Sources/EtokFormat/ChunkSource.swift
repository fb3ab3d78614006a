/// The one way to read an `.etok` stream's chunks in order (§7 "Truncation and streams",
/// "Damage"): from a file or from a pipe, the caller does not care which.
///
/// `ChunkSource.open(path)` reads the preamble and `HEAD` (fatal errors throw) from a file, or from
/// stdin for `-`; `walk(wants:)` then yields every chunk and every damaged range in stream order
/// (`ChunkWalk`). Both kinds of input go through the same front-to-back walk, so a file and the same
/// bytes on a pipe get the same chunks, the same damage and the same health: one verdict. What a file
/// adds is random access: its chunks are known before they are read (from the index, or from a scan
/// when there is none), so a selection's spans are exact and chunks it does not need are never
/// decoded; and it can be walked more than once (decode checks a file for damage before it creates
/// any output). A pipe is walked once.
///
/// Not thread-safe: one owner. Memory: what the walk holds (one record at a time, the chunk list).
public final class ChunkSource {
    /// The file name used in messages (`stdin` for `-`).
    public let fileName: String
    /// The parsed `HEAD` (§4).
    public let header: EtokHeader
    /// The file's minor version (§2).
    public let minorVersion: Int
    /// The chunks of a file, in block order, known before any is read (from the index when the file
    /// has a valid one, else from a scan); nil for a pipe.
    public var entries: [IndexEntry]? { reader?.chunks }
    /// The random-access reader of a file (seeking by block: `chunk(containingBlock:)`); nil for a pipe.
    public let reader: EtokReader?
    let stream: StreamSource?
    /// The file's or the pipe's bytes.
    private let bytes: any ByteSource
    private let headEnd: Int
    private var walked = false

    /// Opens `path`, or stdin for `-`.
    /// - Throws: `FormatError` when nothing is usable (I/O, bad signature, unknown major version,
    ///   damaged header); damage after the header is found by the walk.
    public static func open(_ path: String) throws(FormatError) -> ChunkSource {
        if path == "-" { return try ChunkSource(stream: StreamSource(fd: 0, name: "stdin")) }
        return ChunkSource(reader: try EtokReader(path: path))
    }

    /// Reads `bytes` as a file (`seekable`) or as if they arrived through a pipe (tests, fuzzing).
    public convenience init(bytes: [UInt8], name: String, seekable: Bool) throws(FormatError) {
        if seekable {
            self.init(reader: try EtokReader(bytes: bytes, name: name))
        } else {
            try self.init(stream: StreamSource(bytes: bytes, name: name))
        }
    }

    /// Reads descriptor `fd` front to back (not closed), for example a pipe.
    public convenience init(fileDescriptor fd: Int32, name: String) throws(FormatError) {
        try self.init(stream: StreamSource(fd: fd, name: name))
    }

    init(reader: EtokReader) {
        self.reader = reader
        stream = nil
        bytes = reader.source
        fileName = reader.fileName
        header = reader.header
        minorVersion = reader.minorVersion
        headEnd = reader.headEnd
    }

    init(stream: StreamSource) throws(FormatError) {
        let pre = try Preamble.read(from: stream)
        reader = nil
        self.stream = stream
        bytes = stream
        fileName = stream.name
        header = pre.header
        minorVersion = pre.minor
        headEnd = pre.headEnd
    }

    /// Whether the input is a file (random access, any number of walks) rather than a pipe.
    public var isSeekable: Bool { reader != nil }

    /// A walk over the whole stream, front to back, decoding the chunks `wants` accepts (asked once
    /// per chunk and per damaged range, with its `StreamSpan`). A file may be walked any number of
    /// times; a pipe only once (a second walk of a pipe is a programming error).
    public func walk(wants: @escaping (StreamSpan) -> Bool = { _ in true }) -> ChunkWalk {
        precondition(isSeekable || !walked, "a pipe is walked once")
        walked = true
        return ChunkWalk(source: bytes, header: header, headEnd: headEnd, entries: entries, wants: wants)
    }

    /// The file's size; for a pipe, the bytes read so far (all of them after `readToEnd()`).
    public var bytesRead: Int { stream?.bytesRead ?? bytes.size ?? 0 }

    /// For a pipe, reads and drops whatever the walk left unread (after damage that ended it early, or
    /// a walk stopped early), so that `bytesRead` is the stream's size and the writer of the pipe does
    /// not get SIGPIPE. Nothing for a file.
    /// - Throws: only `FormatError.io`.
    public func readToEnd() throws(FormatError) {
        try stream?.drain()
    }
}
