#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where a writer's bytes go: a file, stdout, a pipe, memory. Writers only append (they never
/// seek), so any sink can be a pipe.
public protocol ByteSink: AnyObject {
    /// The output as messages name it (the file name, or `stdout`).
    var name: String { get }
    /// Appends all of `bytes`, or throws. On return the bytes are out of the process (in the kernel
    /// for a descriptor), so a crash right after loses nothing written.
    func write(_ bytes: UnsafeRawBufferPointer) throws(OutputError)
}

extension ByteSink {
    /// Appends all of `bytes`.
    public func write(_ bytes: [UInt8]) throws(OutputError) {
        var failure: OutputError?
        bytes.withUnsafeBytes { buffer in
            do throws(OutputError) { try write(buffer) } catch { failure = error }
        }
        if let failure { throw failure }
    }
}

/// A sink over a file descriptor, written with `write(2)` (no user-space buffering): retries short
/// writes and `EINTR`; EPIPE is `OutputError.closed`, other failures (ENOSPC...) `.writeFailed`.
/// Optionally `fsync`s after each write for durability against power loss (a killed process needs
/// no fsync: the kernel already holds what was written).
///
/// SIGPIPE must be ignored by the process for EPIPE to arrive as an error (the command does so).
/// Not thread-safe: one writer owns it.
public final class FileSink: ByteSink {
    public let name: String
    private var fd: Int32
    private let ownsDescriptor: Bool
    private let syncEachWrite: Bool

    /// Opens `placement`'s write path (its temporary file, or the device or FIFO it names), or
    /// standard output when it has none.
    public init(_ placement: OutputPlacement, syncEachWrite: Bool = false) throws(OutputError) {
        name = placement.file
        self.syncEachWrite = syncEachWrite
        guard let path = placement.writePath else {
            fd = STDOUT_FILENO
            ownsDescriptor = false
            return
        }
        let flags = O_WRONLY | O_CLOEXEC | (placement.inPlace ? 0 : O_TRUNC)
        fd = open(path, flags)
        guard fd >= 0 else { throw .cannotCreate(file: placement.file, message: systemMessage(errno)) }
        ownsDescriptor = true
    }

    /// Wraps an open descriptor (a pipe in a test, say); `owning` hands its closing over.
    public init(fd: Int32, name: String, owning: Bool = false, syncEachWrite: Bool = false) {
        self.fd = fd
        self.name = name
        ownsDescriptor = owning
        self.syncEachWrite = syncEachWrite
    }

    deinit { if ownsDescriptor && fd >= 0 { Self.systemClose(fd) } }

    public func write(_ bytes: UnsafeRawBufferPointer) throws(OutputError) {
        guard var next = bytes.baseAddress else { return }
        var left = bytes.count
        while left > 0 {
            let n = Self.systemWrite(fd, next, left)
            if n < 0 {
                if errno == EINTR { continue }
                throw .writing(name, code: errno)
            }
            next += n
            left -= n
        }
        if syncEachWrite, fsync(fd) != 0, errno != EINVAL {  // EINVAL: pipes cannot be synced
            throw .writing(name, code: errno)
        }
    }

    /// Closes the descriptor (a no-op for one it does not own); a failing close (a late ENOSPC on
    /// some file systems) is an error.
    public func close() throws(OutputError) {
        guard ownsDescriptor, fd >= 0 else { return }
        let status = Self.systemClose(fd)
        fd = -1
        if status != 0 { throw .writing(name, code: errno) }
    }

    private static func systemWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
        #if canImport(Glibc)
        Glibc.write(fd, buffer, count)
        #else
        Darwin.write(fd, buffer, count)
        #endif
    }

    @discardableResult
    private static func systemClose(_ fd: Int32) -> Int32 {
        #if canImport(Glibc)
        Glibc.close(fd)
        #else
        Darwin.close(fd)
        #endif
    }
}

/// A sink that collects bytes in memory (tests, small outputs). Not thread-safe.
public final class MemorySink: ByteSink {
    public let name: String
    /// Everything written so far.
    public private(set) var bytes: [UInt8] = []

    /// An empty sink named `name`.
    public init(name: String = "<memory>") { self.name = name }

    /// Appends `bytes`; never fails.
    public func write(_ bytes: UnsafeRawBufferPointer) throws(OutputError) { self.bytes += bytes }
}

extension OutputPlacement {
    /// Writes all of `bytes` to this output, closes it and commits it (a JSON report, a plot, one
    /// .npy array): the whole output at once, or nothing under the final name.
    public func writeWhole(_ bytes: [UInt8]) throws(OutputError) {
        do {
            let sink = try FileSink(self)
            try sink.write(bytes)
            try sink.close()
            try commit()
        } catch {
            discard()
            throw error
        }
    }
}
