import Foundation

/// One input of a batch: the file to read, the key that names it (for shards and messages), and
/// where its output goes, relative to the batch's output folder.
public struct BatchItem: Sendable, Equatable {
    /// The input path as given (on the command line or in the manifest).
    public var input: String
    /// What the item is known by: the manifest's `key`, else the input path as given. Shards are
    /// chosen by its hash, so it must not change between runs.
    public var key: String
    /// The output path relative to the output folder (`BatchItem.outputPath(for:suffix:)` unless
    /// the manifest gave one).
    public var output: String

    public init(input: String, key: String? = nil, output: String? = nil, suffix: String = ".etok") {
        self.input = input
        self.key = key ?? input
        self.output = output ?? BatchItem.outputPath(for: input, suffix: suffix)
    }

    /// The output path (relative to the output folder) of the input `path`: the input's own
    /// relative path with `suffix` appended to its whole name (`clips/a.mp4` → `clips/a.mp4.etok`),
    /// so `a.mp4` and `a.mov` never meet. The mapping is one-to-one and needs no other item:
    /// - empty and `.` components are dropped (`./a//b.mp4` is `a/b.mp4`);
    /// - an absolute path starts with the component `@root` (`/data/a.mp4` → `@root/data/a.mp4.etok`);
    /// - each `..` becomes `@up` (`../x.mp4` → `@up/x.mp4.etok`);
    /// - a component of the input that starts with `@` gets one more (`@root` → `@@root`), so no
    ///   input's own names can meet the two above.
    public static func outputPath(for path: String, suffix: String = ".etok") -> String {
        var parts: [String] = path.hasPrefix("/") ? ["@root"] : []
        for component in path.split(separator: "/", omittingEmptySubsequences: true) {
            switch component {
            case ".": continue
            case "..": parts.append("@up")
            default: parts.append(component.hasPrefix("@") ? "@" + component : String(component))
            }
        }
        if parts.isEmpty { parts = ["@empty"] }
        parts[parts.count - 1] += suffix
        return parts.joined(separator: "/")
    }
}

/// Why a manifest or an item list was refused: names the line.
public struct ManifestError: Error, CustomStringConvertible, Sendable, Equatable {
    public var file: String
    public var line: Int
    public var problem: String
    public var description: String { line > 0 ? "\(file): line \(line): \(problem)" : "\(file): \(problem)" }
}

/// A batch's list of inputs: read from a manifest file (one path per line, or JSON lines with
/// `input` and optional `key` and `output`), or made from the command line's paths; and a shard's
/// share of it.
///
/// Manifest lines: blank lines and lines starting with `#` are skipped; a line starting with `{`
/// is a JSON object, any other line is a path (taken whole, spaces included). Two items with the
/// same key or the same output are refused, naming both lines: every shard reads the whole
/// manifest, so all of them refuse it alike.
public enum Manifest {
    /// Reads the manifest at `path` (`-`: stdin).
    public static func read(path: String, suffix: String = ".etok") throws -> [BatchItem] {
        let data: Data
        var isDirectory: ObjCBool = false
        if path != "-" && !FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            throw ManifestError(file: path, line: 0, problem: "no such manifest file")
        }
        if isDirectory.boolValue { throw ManifestError(file: path, line: 0, problem: "is a folder, not a manifest file") }
        do {
            data = path == "-" ? FileHandle.standardInput.readDataToEndOfFile()
                : try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw ManifestError(file: path, line: 0, problem: "cannot read it (\((error as NSError).localizedDescription))")
        }
        return try parse(String(decoding: data, as: UTF8.self), file: path == "-" ? "stdin" : path, suffix: suffix)
    }

    /// Parses a manifest's text (`file` names it in errors).
    public static func parse(_ text: String, file: String, suffix: String = ".etok") throws -> [BatchItem] {
        var items: [(item: BatchItem, line: Int)] = []
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.hasSuffix("\r") ? String(raw.dropLast()) : String(raw)
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            if trimmed.hasPrefix("{") {
                items.append((try jsonItem(trimmed, file: file, line: n + 1, suffix: suffix), n + 1))
            } else {
                items.append((BatchItem(input: line, suffix: suffix), n + 1))
            }
        }
        return try unique(items, file: file)
    }

    /// The items of the command line's `paths`, in order.
    public static func items(paths: [String], suffix: String = ".etok") throws -> [BatchItem] {
        try unique(paths.enumerated().map { (BatchItem(input: $1, suffix: suffix), $0 + 1) }, file: "command line")
    }

    private static func jsonItem(_ text: String, file: String, line: Int, suffix: String) throws -> BatchItem {
        let fail = { (problem: String) in ManifestError(file: file, line: line, problem: problem) }
        guard let object = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] else {
            throw fail("not a JSON object")
        }
        let known: Set<String> = ["input", "key", "output"]
        if let unknown = object.keys.sorted().first(where: { !known.contains($0) }) {
            throw fail("unknown field \"\(unknown)\" (fields: input, key, output)")
        }
        guard let input = object["input"] as? String, !input.isEmpty else { throw fail("no \"input\" path") }
        func field(_ name: String) throws -> String? {
            guard let value = object[name] else { return nil }
            guard let s = value as? String, !s.isEmpty else { throw fail("\"\(name)\" must be a non-empty string") }
            return s
        }
        let output = try field("output")
        if let output {
            let parts = output.split(separator: "/")
            if output.hasPrefix("/") || parts.contains("..") || parts.contains(".") {
                throw fail("\"output\" must be a relative path inside the output folder, without . or ..")
            }
        }
        return BatchItem(input: input, key: try field("key"), output: output, suffix: suffix)
    }

    private static func unique(_ items: [(item: BatchItem, line: Int)], file: String) throws -> [BatchItem] {
        var keys: [String: Int] = [:], outputs: [String: Int] = [:]
        for (item, line) in items {
            if let first = keys[item.key] {
                throw ManifestError(file: file, line: line, problem: "key \"\(item.key)\" is already item \(first)'s")
            }
            if let first = outputs[item.output] {
                throw ManifestError(file: file, line: line, problem: "output \"\(item.output)\" is already item \(first)'s")
            }
            keys[item.key] = line
            outputs[item.output] = line
        }
        return items.map(\.item)
    }
}

/// `--shard i/N`: the share of a batch that one of N jobs takes. An item belongs to shard
/// `fnv1a64(key) mod N`, so each item is in exactly one shard, the same in every run and on every
/// machine (no per-process seed, unlike Swift's `Hasher`), and adding items never moves others.
public struct ShardSpec: Sendable, Equatable, CustomStringConvertible {
    /// 0-based: 0..<count (a Slurm array 0-(N-1), a Kubernetes Indexed Job's completion index).
    public var index: Int
    public var count: Int

    public init(index: Int, count: Int) {
        self.index = index
        self.count = count
    }

    /// Parses `i/N` with 0 ≤ i < N; nil otherwise.
    public init?(parsing text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let i = Int(parts[0]), let n = Int(parts[1]), n >= 1, i >= 0, i < n else { return nil }
        self.init(index: i, count: n)
    }

    public var description: String { "\(index)/\(count)" }

    /// True when `key` belongs to this shard.
    public func contains(key: String) -> Bool {
        Int(ShardSpec.fnv1a64(key) % UInt64(count)) == index
    }

    /// This shard's items, in the batch's order.
    public func select(_ items: [BatchItem]) -> [BatchItem] { items.filter { contains(key: $0.key) } }

    /// FNV-1a, 64 bits, of the key's UTF-8 bytes (offset basis 0xcbf29ce484222325, prime 0x100000001b3).
    public static func fnv1a64(_ key: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in key.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        return hash
    }
}
