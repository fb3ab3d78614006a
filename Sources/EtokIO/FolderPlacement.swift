#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Several files written into one folder as a whole (an npy export, `etok model run`'s arrays):
/// the folder is created if missing (its parent must exist, unless `createParents`), each file
/// goes through its own `OutputPlacement` (a temporary name, checked for `-y` up front), and
/// `commit()` moves them all into place. On `discard()` (or an error) the temporary files go, and
/// so does the folder if this placement created it. (A failure between two commits, which only a
/// vanishing folder or a file appearing meanwhile could cause, leaves the files committed so far.)
///
/// Not thread-safe: one owner.
public final class FolderPlacement {
    /// The folder as the user named it.
    public let folder: String
    /// The files' placements, in the order of the names given.
    public let files: [OutputPlacement]
    private var created: [String] = []

    /// Checks the folder (not a file) and every name in it, creating the folder (and its missing
    /// parents with `createParents`) and the temporary files.
    public init(folder: String, names: [String], overwrite: Bool, createParents: Bool = false) throws(OutputError) {
        self.folder = folder
        var st = stat()
        if stat(folder, &st) == 0 {
            guard st.st_mode & S_IFMT == S_IFDIR else { throw .cannotCreate(file: folder, message: "not a folder") }
        } else {
            created = try Self.makeFolder(folder, parents: createParents)
        }
        var placements: [OutputPlacement] = []
        do {
            let base = folder.hasSuffix("/") ? folder : folder + "/"
            for name in names { placements.append(try OutputPlacement(path: base + name, overwrite: overwrite)) }
        } catch {
            for p in placements { p.discard() }
            for made in created.reversed() { rmdir(made) }
            throw error
        }
        files = placements
    }

    deinit { discard() }

    /// Creates `folder` (and with `parents` its missing ancestors); returns what it created, outermost first.
    private static func makeFolder(_ folder: String, parents: Bool) throws(OutputError) -> [String] {
        var missing: [String] = []
        var path = folder
        while path.hasSuffix("/") && path.count > 1 { path.removeLast() }
        var st = stat()
        while !path.isEmpty && stat(path, &st) != 0 {
            missing.append(path)
            guard parents, let slash = path.lastIndex(of: "/") else { break }
            path = String(path[..<slash])
        }
        var made: [String] = []
        for dir in missing.reversed() {
            if mkdir(dir, 0o755) != 0 && errno != EEXIST {
                let code = errno
                for m in made.reversed() { rmdir(m) }
                let parent = OutputPlacement.split(dir).folder
                throw .cannotCreate(file: folder, message: code == ENOENT ? "no folder \(parent.isEmpty ? "." : parent)"
                                                                          : systemMessage(code))
            }
            made.append(dir)
        }
        return made
    }

    /// Writes every file whole (`contents` in the order of the names) and commits them all.
    public func writeWhole(_ contents: [[UInt8]]) throws(OutputError) {
        precondition(contents.count == files.count, "one content per file")
        do {
            for (placement, bytes) in zip(files, contents) {
                let sink = try FileSink(placement)
                try sink.write(bytes)
                try sink.close()
            }
            for placement in files { try placement.commit() }
            created = []
        } catch {
            discard()
            throw error
        }
    }

    /// Removes the temporary files, and the folder if this placement created it.
    public func discard() {
        for p in files { p.discard() }
        for made in created.reversed() { rmdir(made) }
        created = []
    }
}
