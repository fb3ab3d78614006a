#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Where an output's bytes go until it is complete: a hidden temporary file next to the final
/// name, moved to it by `commit()` and deleted by `discard()`, so that a cut-off file never sits
/// under the final name. Standard output (`-`), devices and FIFOs are written in place.
///
/// The final name is checked when the placement is made (before any work) and again at the
/// commit: without `overwrite`, a file that appeared under the name meanwhile (another run, another
/// program) is never replaced (`OutputError.appeared`); the commit is a hard link, which fails
/// when the name is taken, then an unlink of the temporary name.
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
    private let overwrite: Bool
    private var settled = false

    /// Checks the final name (exists without `overwrite`, a directory, missing folder, no
    /// permission, one of the files the run reads) and creates the temporary file, so such problems
    /// show before any work.
    /// - Parameter reads: files the run reads, with their role for the message ("input", "model"):
    ///   the output may be none of them, even with `overwrite`.
    public init(path: String, overwrite: Bool, reads: [(file: String, role: String)] = []) throws(OutputError) {
        self.overwrite = overwrite
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
            if type == S_IFDIR { throw .cannotCreate(file: path, message: "it is a directory") }
            if type != S_IFREG {   // /dev/null, a FIFO: write straight into it
                writePath = path
                return
            }
            if let read = reads.first(where: { Self.isSameFile($0.file, path) }) {
                throw .isInput(file: path, role: read.role)
            }
            if !overwrite { throw .exists(file: path) }
        }
        let (folder, name) = Self.split(path)
        let temp = "\(folder).\(name).part-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            let reason = errno == ENOENT ? "no folder \(folder.isEmpty ? "." : folder)" : systemMessage(errno)
            throw .cannotCreate(file: path, message: reason)
        }
        close(fd)
        writePath = temp
        Self.pending.withLock { _ = $0.insert(temp) }
    }

    /// The folder part of `path` (with its trailing slash, empty for a bare name) and the name.
    static func split(_ path: String) -> (folder: String, name: String) {
        let slash = path.lastIndex(of: "/")
        return (slash.map { String(path[...$0]) } ?? "", slash.map { String(path[path.index(after: $0)...]) } ?? path)
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

    /// Makes the output final. With `overwrite`, the temporary file is renamed over the final name;
    /// without, it is linked to it (which fails if the name was taken meanwhile: nothing replaced,
    /// the temporary file removed, `OutputError.appeared`) and then unlinked.
    public func commit() throws(OutputError) {
        guard !settled else { return }
        settled = true
        guard let finalPath, let writePath, writePath != finalPath else { return }
        Self.pending.withLock { _ = $0.remove(writePath) }
        defer { unlink(writePath) }   // after a link, or a failure; a no-op after a rename
        if overwrite {
            if rename(writePath, finalPath) != 0 { throw .writeFailed(file: file, message: systemMessage(errno)) }
            return
        }
        if link(writePath, finalPath) == 0 { return }
        let code = errno
        if code == EEXIST { throw .appeared(file: file) }
        guard [EPERM, ENOTSUP, EOPNOTSUPP, EMLINK].contains(code) else {
            throw .writeFailed(file: file, message: systemMessage(code))
        }
        // A file system without hard links (some FUSE and FAT mounts): check, then rename; a name
        // taken in between is replaced (the only window left, microseconds wide).
        var st = stat()
        if lstat(finalPath, &st) == 0 { throw .appeared(file: file) }
        if rename(writePath, finalPath) != 0 { throw .writeFailed(file: file, message: systemMessage(errno)) }
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
