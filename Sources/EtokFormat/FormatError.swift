/// Everything that can be wrong with an `.etok` file or with a request to read or write one.
///
/// Every case names the file; `description` is one line naming the file and the problem, with the
/// byte offset where it applies. A reader either throws one of these (nothing usable: bad signature,
/// unknown major version, damaged header) or lists them in `EtokHealth.damage` and goes on with what
/// is intact. `Equatable` so tests can compare them.
public enum FormatError: Error, CustomStringConvertible, Equatable, Sendable {
    /// A system call on the file failed (`call` is its name, `code` its errno).
    case io(file: String, call: String, code: Int32, message: String)
    /// The first 8 bytes are not the `.etok` signature (§2).
    case badSignature(file: String)
    /// The file's major version is not one this reader knows (§2).
    case unsupportedVersion(file: String, major: Int, minor: Int)
    /// The file ends at `offset`, in the middle of `what` (a record, the preamble) or before `TAIL`.
    case truncated(file: String, offset: Int, what: String)
    /// The CRC of the record `record` (its type, printable) starting at `offset` does not hold (§3).
    case badCRC(file: String, record: String, offset: Int)
    /// The record at `offset` is framed wrongly: absurd length, wrong place, wrong size (§3).
    case badRecord(file: String, record: String, offset: Int, message: String)
    /// The `HEAD` JSON is unusable: `key` is the dotted path of the offending key (§4).
    case badHeader(file: String, key: String, message: String)
    /// A `CHNK` record's fields are out of range (§5): its CRC holds, its content does not.
    case chunkOutOfRange(file: String, offset: Int, message: String)
    /// The token data of the `CHNK` at `offset` is inconsistent with its block table (§6).
    case tokenDataOverrun(file: String, offset: Int, message: String)
    /// The `INDX`/`TAIL` pair is unusable or disagrees with the chunks (§7).
    case badIndex(file: String, offset: Int, message: String)
    /// Bytes follow the `TAIL` record, which must be last (§7).
    case trailingData(file: String, offset: Int)
    /// Blocks `from ..< to` are missing from the stream (a damaged chunk was dropped).
    case missingBlocks(file: String, from: Int, to: Int)
    /// No block with this index is readable in the file.
    case noSuchBlock(file: String, block: Int)
    /// No chunk with this position in the reader's chunk list (`count` chunks are readable).
    case noSuchChunk(file: String, index: Int, count: Int)
    /// The caller asked the writer to write something the format cannot hold.
    case invalidInput(file: String, message: String)

    /// The file name the error is about.
    public var file: String {
        switch self {
        case .io(let f, _, _, _), .badSignature(let f), .unsupportedVersion(let f, _, _),
             .truncated(let f, _, _), .badCRC(let f, _, _), .badRecord(let f, _, _, _),
             .badHeader(let f, _, _), .chunkOutOfRange(let f, _, _), .tokenDataOverrun(let f, _, _),
             .badIndex(let f, _, _), .trailingData(let f, _), .missingBlocks(let f, _, _),
             .noSuchBlock(let f, _), .noSuchChunk(let f, _, _), .invalidInput(let f, _):
            return f
        }
    }

    /// One line: the file, then the problem.
    public var description: String {
        switch self {
        case .io(let f, let call, let code, let message):
            return "\(f): \(call) failed: \(message) (errno \(code))"
        case .badSignature(let f):
            return "\(f): not an .etok file (bad signature)"
        case .unsupportedVersion(let f, let major, let minor):
            return "\(f): unsupported .etok version \(major).\(minor) (this reader knows major \(EtokFormat.majorVersion))"
        case .truncated(let f, let offset, let what):
            return "\(f): truncated at offset \(offset) (\(what))"
        case .badCRC(let f, let record, let offset):
            return "\(f): bad CRC in \(record) record at offset \(offset)"
        case .badRecord(let f, let record, let offset, let message):
            return "\(f): bad \(record) record at offset \(offset): \(message)"
        case .badHeader(let f, let key, let message):
            return "\(f): bad header JSON: key \(key): \(message)"
        case .chunkOutOfRange(let f, let offset, let message):
            return "\(f): chunk at offset \(offset): field out of range: \(message)"
        case .tokenDataOverrun(let f, let offset, let message):
            return "\(f): chunk at offset \(offset): bad token data: \(message)"
        case .badIndex(let f, let offset, let message):
            return "\(f): index at offset \(offset) unusable: \(message)"
        case .trailingData(let f, let offset):
            return "\(f): unexpected data after TAIL at offset \(offset)"
        case .missingBlocks(let f, let from, let to):
            return "\(f): blocks \(from)..<\(to) missing (damaged or absent chunk)"
        case .noSuchBlock(let f, let block):
            return "\(f): no readable block \(block)"
        case .noSuchChunk(let f, let index, let count):
            return "\(f): no chunk \(index) (\(count) readable chunks)"
        case .invalidInput(let f, let message):
            return "\(f): cannot write: \(message)"
        }
    }
}

/// A record type as printable text for messages: ASCII letters as is, other bytes as `\xNN`.
func printableType(_ bytes: ArraySlice<UInt8>) -> String {
    var s = ""
    for b in bytes {
        if (0x20...0x7E).contains(b), b != 0x5C { s.append(Character(UnicodeScalar(b))) } else {
            s += "\\x" + String(b, radix: 16, uppercase: true).leftPadded(to: 2)
        }
    }
    return s
}

extension String {
    func leftPadded(to n: Int) -> String { count >= n ? self : String(repeating: "0", count: n - count) + self }
}
