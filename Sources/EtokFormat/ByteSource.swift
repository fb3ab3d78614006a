#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where a reader's bytes come from: a file (random access), memory, or a pipe (forward only).
///
/// `read(at:count:)` returns `count` bytes, or fewer only where the data ends. It allocates at most
/// what is really there, so a corrupted length cannot make it allocate gigabytes.
protocol ByteSource: AnyObject {
    /// File name for messages.
    var name: String { get }
    /// Total size when known up front (files, memory); nil for a stream.
    var size: Int? { get }
    /// Bytes `[offset, offset + count)`, fewer at the end of the data.
    func read(at offset: Int, count: Int) throws(FormatError) -> [UInt8]
    /// Tells a forward-only source that bytes before `offset` will not be asked for again.
    func release(before offset: Int)
}

/// The last `errno` as text.
func errnoMessage(_ code: Int32) -> String { String(cString: strerror(code)) }

/// A regular file read with `pread`: random access, safe to share between threads (no file
/// position). Owns its descriptor and closes it on deinit. Its size is fixed when opened.
final class FileSource: ByteSource, Sendable {
    let name: String
    let size: Int?
    private let fd: Int32

    /// Opens `path` read-only.
    init(path: String) throws(FormatError) {
        name = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw FormatError.io(file: path, call: "open", code: errno, message: errnoMessage(errno)) }
        var st = stat()
        if fstat(fd, &st) != 0 {
            let code = errno
            close(fd)
            throw FormatError.io(file: path, call: "fstat", code: code, message: errnoMessage(code))
        }
        if st.st_mode & S_IFMT == S_IFDIR {
            close(fd)
            throw FormatError.io(file: path, call: "open", code: EISDIR, message: "is a directory, not an .etok file")
        }
        self.fd = fd
        size = Int(st.st_size)
    }

    deinit { close(fd) }

    func read(at offset: Int, count: Int) throws(FormatError) -> [UInt8] {
        let n = max(0, min(count, (size ?? 0) - offset))
        if n == 0 || offset < 0 { return [] }
        var out = [UInt8](repeating: 0, count: n)
        var done = 0
        var failure: Int32 = 0
        out.withUnsafeMutableBytes { buf in
            while done < n {
                let r = pread(fd, buf.baseAddress! + done, n - done, off_t(offset + done))
                if r < 0 {
                    if errno == EINTR { continue }
                    failure = errno
                    return
                }
                if r == 0 { return }  // the file shrank since it was opened
                done += r
            }
        }
        if failure != 0 { throw FormatError.io(file: name, call: "pread", code: failure, message: errnoMessage(failure)) }
        return done == n ? out : Array(out[0..<done])
    }

    func release(before offset: Int) {}
}

/// Bytes already in memory (tests, fuzzing, small files). Immutable; `Sendable`.
final class MemorySource: ByteSource, Sendable {
    let name: String
    let bytes: [UInt8]
    var size: Int? { bytes.count }

    init(_ bytes: [UInt8], name: String) {
        self.bytes = bytes
        self.name = name
    }

    func read(at offset: Int, count: Int) throws(FormatError) -> [UInt8] {
        guard offset >= 0, offset < bytes.count, count > 0 else { return [] }
        return Array(bytes[offset..<min(bytes.count, offset + min(count, bytes.count))])
    }

    func release(before offset: Int) {}
}

/// A forward-only source over a descriptor (a pipe, stdin) or over bytes fed in order. Buffers from
/// the oldest byte not yet released; the buffer grows only with data really read, and the scanner
/// asks for at most one record within its type's limit (`RecordLimits`) or one search window before
/// it releases, so memory is bounded by the header, not by the input or its length fields. Not
/// thread-safe: one reader owns it.
final class StreamSource: ByteSource {
    let name: String
    var size: Int? { nil }
    private let fd: Int32?
    private var pending: [UInt8]?  // bytes to serve when there is no descriptor
    private var pendingOffset = 0
    private var buffer: [UInt8] = []
    private var base = 0  // file offset of buffer[0]
    private var atEnd = false
    /// Bytes read per `read(2)` call.
    static let readSize = 1 << 16

    /// Reads `fd` front to back; does not close it.
    init(fd: Int32, name: String) {
        self.fd = fd
        self.name = name
    }

    /// Serves `bytes` as if they came from a pipe (tests, fuzzing).
    init(bytes: [UInt8], name: String) {
        fd = nil
        pending = bytes
        self.name = name
    }

    private func fill(upTo end: Int) throws(FormatError) {
        while base + buffer.count < end, !atEnd {
            if let p = pending {
                // Feed in pieces, like a pipe would.
                let n = min(p.count - pendingOffset, StreamSource.readSize)
                buffer.append(contentsOf: p[pendingOffset..<(pendingOffset + n)])
                pendingOffset += n
                if pendingOffset == p.count { atEnd = true }
                continue
            }
            guard let fd else { atEnd = true; return }
            var chunk = [UInt8](repeating: 0, count: StreamSource.readSize)
            let r = chunk.withUnsafeMutableBytes { systemRead(fd, $0.baseAddress!, StreamSource.readSize) }
            if r < 0 {
                if errno == EINTR { continue }
                let code = errno
                throw FormatError.io(file: name, call: "read", code: code, message: errnoMessage(code))
            }
            if r == 0 { atEnd = true } else { buffer.append(contentsOf: chunk[0..<r]) }
        }
        peakBuffered = max(peakBuffered, buffer.count)
    }

    /// The most bytes the buffer has held at once (for tests of bounded memory).
    private(set) var peakBuffered = 0

    func read(at offset: Int, count: Int) throws(FormatError) -> [UInt8] {
        guard count > 0, offset >= base else { return [] }
        let (end, overflow) = offset.addingReportingOverflow(count)
        try fill(upTo: overflow ? Int.max : end)
        let lo = offset - base
        let hi = min(buffer.count, lo + min(count, buffer.count))
        return lo < hi ? Array(buffer[lo..<hi]) : []
    }

    /// Bytes taken from the descriptor (or the fed bytes) so far.
    var bytesRead: Int { base + buffer.count }

    /// Reads to the end of the data, keeping nothing new (`bytesRead` is then the total size).
    func drain() throws(FormatError) {
        while !atEnd {
            let end = bytesRead + StreamSource.readSize
            try fill(upTo: end)
            release(before: bytesRead)
        }
    }

    func release(before offset: Int) {
        let drop = min(offset - base, buffer.count)
        // Drop in large steps so the copying stays linear overall.
        if drop > 0, drop >= buffer.count / 2 || drop >= 1 << 20 {
            buffer.removeFirst(drop)
            base += drop
        }
    }
}

/// `read(2)`, named apart from `ByteSource.read(at:count:)`.
private func systemRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
    read(fd, buffer, count)
}
