#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where an `EtokWriter` puts its bytes. The writer only appends: it never seeks, so a sink can be a
/// pipe or stdout.
public protocol EtokByteSink: AnyObject {
    /// Name for messages (the file name, or `-` for stdout).
    var name: String { get }
    /// Appends all of `bytes`, or throws. On return the bytes are out of the process (in the kernel
    /// for a descriptor), so a crash right after loses nothing written.
    func write(_ bytes: [UInt8]) throws(FormatError)
}

/// A sink over a file descriptor, written with `write(2)` (no user-space buffering): retries short
/// writes and `EINTR`. Optionally `fsync`s after each write for durability against power loss (a
/// killed process needs no fsync: the kernel already holds what was written).
///
/// Writing to a closed pipe raises SIGPIPE unless the program ignores it (the CLI should); with it
/// ignored, the error comes back as `FormatError.io` (`EPIPE`). Not thread-safe: one writer owns it.
public final class FileDescriptorSink: EtokByteSink {
    /// The file name for messages (`-` for stdout).
    public let name: String
    private let fd: Int32
    private let closeOnDeinit: Bool
    private let syncEachWrite: Bool

    /// Wraps an open descriptor (for example 1 for stdout). `closeOnDeinit` hands its ownership over.
    public init(fd: Int32, name: String, closeOnDeinit: Bool = false, syncEachWrite: Bool = false) {
        self.fd = fd
        self.name = name
        self.closeOnDeinit = closeOnDeinit
        self.syncEachWrite = syncEachWrite
    }

    /// Creates (or truncates) the file at `path` with mode 0644 and owns its descriptor.
    public convenience init(creating path: String, syncEachWrite: Bool = false) throws(FormatError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if fd < 0 { throw FormatError.io(file: path, call: "open", code: errno, message: errnoMessage(errno)) }
        self.init(fd: fd, name: path, closeOnDeinit: true, syncEachWrite: syncEachWrite)
    }

    deinit { if closeOnDeinit { close(fd) } }

    /// Writes all of `bytes` with `write(2)` (and `fsync` when asked).
    /// - Throws: `FormatError.io` naming the call and errno.
    public func write(_ bytes: [UInt8]) throws(FormatError) {
        var done = 0
        var failure: Int32 = 0
        bytes.withUnsafeBytes { buf in
            while done < buf.count {
                let r = systemWrite(fd, buf.baseAddress! + done, buf.count - done)
                if r < 0 {
                    if errno == EINTR { continue }
                    failure = errno
                    return
                }
                done += r
            }
        }
        if failure != 0 { throw FormatError.io(file: name, call: "write", code: failure, message: errnoMessage(failure)) }
        if syncEachWrite, fsync(fd) != 0, errno != EINVAL {  // EINVAL: pipes cannot be synced
            let code = errno
            throw FormatError.io(file: name, call: "fsync", code: code, message: errnoMessage(code))
        }
    }
}

/// `write(2)`, named apart from `EtokByteSink.write(_:)`.
private func systemWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
    write(fd, buffer, count)
}

/// A sink that collects bytes in memory (tests, small outputs). Not thread-safe.
public final class MemorySink: EtokByteSink {
    /// The name for messages.
    public let name: String
    /// Everything written so far.
    public private(set) var bytes: [UInt8] = []

    /// An empty sink named `name`.
    public init(name: String = "<memory>") { self.name = name }

    /// Appends `bytes`; never fails.
    public func write(_ bytes: [UInt8]) throws(FormatError) { self.bytes += bytes }
}
