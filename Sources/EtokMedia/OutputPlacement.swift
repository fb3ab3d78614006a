#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Where an output's bytes go until it is complete: a hidden temporary file next to the final
/// name, renamed over it by `commit()` and deleted by `discard()`, so that a cut-off file never
/// sits under the final name. Standard output (`-`), devices and FIFOs are written in place.
///
/// Not thread-safe: owned by one writer, which may hand it to another thread (a pipeline's sink)
/// but uses it from one thread at a time. Dropped without `commit()`, it discards the temporary file.
public final class OutputPlacement: @unchecked Sendable {
    /// The output as the user named it ("stdout" for `-`), for messages.
    public let file: String
    /// The final path (nil for stdout).
    public let finalPath: String?
    /// Where bytes are written now: the temporary file, or the final path when in place.
    public let writePath: String?
    /// True when there is no temporary file (stdout, a device, a FIFO).
    public var inPlace: Bool { writePath == finalPath }
    private var settled = false

    /// Checks the final name (exists without `overwrite`, a directory, missing folder, no
    /// permission, the same file as `input`) and creates the temporary file, so such problems
    /// show before any work.
    public init(path: String, overwrite: Bool, input: String? = nil) throws {
        if path == "-" {
            file = "stdout"
            finalPath = nil
            writePath = nil
            return
        }
        file = path
        finalPath = path
        var st = stat()
        if stat(path, &st) == 0 {
            let type = st.st_mode & S_IFMT
            if type == S_IFDIR { throw MediaError.cannotCreateOutput(file: path, message: "it is a directory") }
            if type != S_IFREG {   // /dev/null, a FIFO: write straight into it
                writePath = path
                return
            }
            if let input, OutputPlacement.isSameFile(input, path) {
                throw MediaError.invalidArgument(file: path, message: "is the input file too; name another output")
            }
            if !overwrite { throw MediaError.outputExists(file: path) }
        }
        let slash = path.lastIndex(of: "/")
        let folder = slash.map { String(path[...$0]) } ?? ""
        let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
        let temp = "\(folder).\(name).part-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            let reason = errno == ENOENT ? "no folder \(folder.isEmpty ? "." : folder)" : String(cString: strerror(errno))
            throw MediaError.cannotCreateOutput(file: path, message: reason)
        }
        close(fd)
        writePath = temp
        Self.pending.withLock { _ = $0.insert(temp) }
    }

    /// Temporary files of placements neither committed nor discarded yet (process-wide).
    private static let pending = Mutex<Set<String>>([])

    /// Removes every temporary file not yet committed or discarded: for a process about to exit on
    /// a signal before its run could clean up (Ctrl-C while an input is still being probed).
    public static func discardPending() {
        for path in pending.withLock({ p -> Set<String> in defer { p.removeAll() }; return p }) { unlink(path) }
    }

    deinit { discard() }

    /// True when `a` and `b` name one existing file (same device and inode: symbolic and hard
    /// links included). `-` (a pipe) is never the same file as anything.
    public static func isSameFile(_ a: String, _ b: String) -> Bool {
        guard a != "-", b != "-" else { return false }
        var sa = stat(), sb = stat()
        guard stat(a, &sa) == 0, stat(b, &sb) == 0 else { return false }
        return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino
    }

    /// True when the outputs `a` and `b` would land on one file, whether it exists yet or not:
    /// the same file, or the same name in the same folder once links and `.`/`..` are resolved.
    public static func isSameDestination(_ a: String, _ b: String) -> Bool {
        guard a != "-", b != "-" else { return false }
        if isSameFile(a, b) { return true }
        func resolved(_ path: String) -> String? {
            let slash = path.lastIndex(of: "/")
            let folder = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
            let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
            guard let real = realpath(folder, nil) else { return nil }
            defer { free(real) }
            return String(cString: real) + "/" + name
        }
        guard let ra = resolved(a), let rb = resolved(b) else { return false }
        return ra == rb
    }

    /// Makes the output final: renames the temporary file over the final name.
    public func commit() throws {
        guard !settled else { return }
        settled = true
        guard let finalPath, let writePath, writePath != finalPath else { return }
        Self.pending.withLock { _ = $0.remove(writePath) }
        if rename(writePath, finalPath) != 0 {
            let message = String(cString: strerror(errno))
            unlink(writePath)
            throw MediaError.writeFailed(file: file, message: message)
        }
    }

    /// Removes the temporary file (nothing to remove when writing in place).
    public func discard() {
        guard !settled else { return }
        settled = true
        if let writePath, writePath != finalPath {
            Self.pending.withLock { _ = $0.remove(writePath) }
            unlink(writePath)
        }
    }
}

/// A POSIX file descriptor written with complete writes: retries short writes and EINTR, and turns
/// EPIPE into `MediaError.outputClosed` and other failures (ENOSPC...) into `.writeFailed`.
/// SIGPIPE must be ignored by the process for EPIPE to arrive as an error (the command does so).
public final class ByteSink {
    public let file: String
    private(set) var fd: Int32
    private let ownsDescriptor: Bool

    /// Opens `placement`'s write path, or standard output when it has none.
    public init(_ placement: OutputPlacement) throws {
        file = placement.file
        guard let path = placement.writePath else {
            fd = STDOUT_FILENO
            ownsDescriptor = false
            return
        }
        let flags = O_WRONLY | O_CLOEXEC | (placement.inPlace ? 0 : O_TRUNC)
        fd = open(path, flags)
        guard fd >= 0 else { throw MediaError.cannotCreateOutput(file: file, message: String(cString: strerror(errno))) }
        ownsDescriptor = true
    }

    deinit { if ownsDescriptor && fd >= 0 { Glibc.close(fd) } }

    /// Writes all of `bytes`.
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard var next = bytes.baseAddress else { return }
        var left = bytes.count
        while left > 0 {
            let n = Glibc.write(fd, next, left)
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EPIPE { throw MediaError.outputClosed(file: file) }
                throw MediaError.writeFailed(file: file, message: String(cString: strerror(errno)))
            }
            next += n
            left -= n
        }
    }

    /// Writes all of `bytes`.
    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    /// Closes the descriptor (a no-op for stdout); a failing close (late ENOSPC) is an error.
    public func close() throws {
        guard ownsDescriptor, fd >= 0 else { return }
        let status = Glibc.close(fd)
        fd = -1
        if status != 0 { throw MediaError.writeFailed(file: file, message: String(cString: strerror(errno))) }
    }
}
