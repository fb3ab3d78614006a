import EtokIO
import Foundation

/// Writes samples into a row of POSIX ustar archives (`shard-000000.tar`, `shard-000001.tar`, ...)
/// in one folder, starting a new one before a sample would take a shard past `shardSize` bytes
/// (a sample bigger than that gets a shard of its own): the WebDataset layout, where a sample is
/// the members that share a key (`KEY.tokens.npy`, `KEY.json`).
///
/// Format (POSIX.1-1988 ustar): per member a 512-byte header (name, mode 0644, uid/gid 0, size
/// in octal, mtime 0 so the bytes depend on the data only, checksum, type '0', magic "ustar\0"
/// version "00"), then the data padded with zeros to a multiple of 512; two zero blocks end the
/// archive. Names are at most 100 bytes (the header's `name` field; `prefix` is not used).
///
/// Each shard is written through an `OutputPlacement` (a temporary name, moved into place when
/// it is closed), so a killed export never leaves a shard that looks whole. Not thread-safe.
public final class TarShardWriter {
    /// What one finished shard holds.
    public struct Shard: Sendable, Codable, Equatable {
        public var file: String
        public var bytes: Int
        public var keys: [String]
    }

    public static let blockSize = 512
    public let folder: String
    public let shardSize: Int
    private let overwrite: Bool
    private var placement: OutputPlacement?
    private var sink: FileSink?
    private var bytes = 0
    private var keys: [String] = []
    /// The shards finished so far, in order.
    public private(set) var shards: [Shard] = []

    /// Shards of at most `shardSize` bytes (unless one sample is bigger) in `folder`, which must exist.
    public init(folder: String, shardSize: Int, overwrite: Bool) {
        self.folder = folder.hasSuffix("/") ? folder : folder + "/"
        self.shardSize = shardSize
        self.overwrite = overwrite
    }

    deinit { placement?.discard() }

    /// The name of shard `n`.
    public static func shardName(_ n: Int) -> String { String(format: "shard-%06d.tar", n) }

    /// The bytes a sample's members take in a shard (headers and padding included).
    public static func archivedSize(_ members: [(name: String, data: [UInt8])]) -> Int {
        members.reduce(0) { $0 + blockSize + padded($1.data.count) }
    }

    /// Adds one sample: its members, in the order given, all in the same shard.
    public func add(key: String, members: [(name: String, data: [UInt8])]) throws {
        let size = Self.archivedSize(members)
        if sink != nil && bytes + size + 2 * Self.blockSize > shardSize { try closeShard() }
        if sink == nil { try openShard() }
        guard let sink else { return }
        for member in members {
            try sink.write(try Self.header(name: member.name, size: member.data.count))
            try sink.write(member.data)
            let pad = Self.padded(member.data.count) - member.data.count
            if pad > 0 { try sink.write([UInt8](repeating: 0, count: pad)) }
        }
        bytes += size
        keys.append(key)
    }

    /// Closes the last shard; returns every shard written.
    public func finish() throws -> [Shard] {
        if sink != nil { try closeShard() }
        return shards
    }

    /// Removes the shard being written (after an error).
    public func discard() {
        placement?.discard()
        placement = nil
        sink = nil
    }

    private func openShard() throws {
        let p = try OutputPlacement(path: folder + Self.shardName(shards.count), overwrite: overwrite)
        placement = p
        sink = try FileSink(p)
        bytes = 0
        keys = []
    }

    private func closeShard() throws {
        guard let sink, let placement else { return }
        try sink.write([UInt8](repeating: 0, count: 2 * Self.blockSize))
        try sink.close()
        try placement.commit()
        shards.append(Shard(file: Self.shardName(shards.count), bytes: bytes + 2 * Self.blockSize, keys: keys))
        self.sink = nil
        self.placement = nil
    }

    static func padded(_ n: Int) -> Int { (n + blockSize - 1) / blockSize * blockSize }

    /// A ustar header for a regular file `name` of `size` bytes.
    static func header(name: String, size: Int) throws -> [UInt8] {
        let nameBytes = Array(name.utf8)
        guard !nameBytes.isEmpty, nameBytes.count <= 100 else {
            throw OutputError.writeFailed(file: name, message: "a tar member name must be 1 to 100 bytes")
        }
        guard size < 1 << 33 else { throw OutputError.writeFailed(file: name, message: "a tar member must be under 8 GiB") }
        var h = [UInt8](repeating: 0, count: blockSize)
        func put(_ bytes: [UInt8], at offset: Int) { for (k, b) in bytes.enumerated() { h[offset + k] = b } }
        func octal(_ value: Int, digits: Int) -> [UInt8] {
            let text = String(value, radix: 8)
            return Array((String(repeating: "0", count: max(0, digits - text.count)) + text).utf8) + [0]
        }
        put(nameBytes, at: 0)
        put(octal(0o644, digits: 7), at: 100)      // mode
        put(octal(0, digits: 7), at: 108)          // uid
        put(octal(0, digits: 7), at: 116)          // gid
        put(octal(size, digits: 11), at: 124)      // size
        put(octal(0, digits: 11), at: 136)         // mtime
        put(Array("        ".utf8), at: 148)       // checksum: spaces while summing
        h[156] = UInt8(ascii: "0")                 // regular file
        put(Array("ustar".utf8) + [0], at: 257)    // magic
        put(Array("00".utf8), at: 263)             // version
        let sum = h.reduce(0) { $0 + Int($1) }
        put(octal(sum, digits: 6) + [UInt8(ascii: " ")], at: 148)
        return h
    }
}
