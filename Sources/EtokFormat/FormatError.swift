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
    /// Repeat blocks at a chunk's start (§5) show the last frame of stream block `block`, which
    /// the reader does not have (its chunk was damaged or dropped).
    case repeatsMissingFrame(file: String, block: Int)
    /// No chunk with this position in the reader's chunk list (`count` chunks are readable).
    case noSuchChunk(file: String, index: Int, count: Int)
    /// The caller asked the writer to write something the format cannot hold.
    case invalidInput(file: String, message: String)
    /// A reader met damage (`range`, the first of `others + 1` damaged ranges) it was not asked to
    /// skip, or nothing but damage: what `decode` and `export` throw. `hint` (may be empty) says
    /// what to do about it.
    indirect case damaged(DamagedRange, others: Int, hint: String)
    /// Adjacent damage, stored as one entry (§7): `first` (the first problem that may lose blocks,
    /// else the first one), then `more` problems up to the one at `lastOffset`, with no intact record
    /// between them. A stretch of garbage costs one entry, whatever its length.
    indirect case damageRun(FormatError, more: Int, lastOffset: Int)

    /// The file name the error is about.
    public var file: String {
        switch self {
        case .io(let f, _, _, _), .badSignature(let f), .unsupportedVersion(let f, _, _),
             .truncated(let f, _, _), .badCRC(let f, _, _), .badRecord(let f, _, _, _),
             .badHeader(let f, _, _), .chunkOutOfRange(let f, _, _), .tokenDataOverrun(let f, _, _),
             .badIndex(let f, _, _), .trailingData(let f, _), .missingBlocks(let f, _, _),
             .noSuchBlock(let f, _), .repeatsMissingFrame(let f, _), .noSuchChunk(let f, _, _), .invalidInput(let f, _):
            return f
        case .damaged(let range, _, _):
            return range.file
        case .damageRun(let first, _, _):
            return first.file
        }
    }

    /// The problem itself: the first of a damage run, any other error as it is.
    public var head: FormatError {
        if case .damageRun(let first, _, _) = self { return first }
        return self
    }

    /// This damage with `next`, met right after it with no intact record between, as one run.
    func merging(_ next: FormatError) -> FormatError {
        var first = self, more = 0
        if case .damageRun(let f, let m, _) = self { (first, more) = (f, m) }
        if !first.mayLoseBlocks, next.head.mayLoseBlocks { first = next.head }
        var nextMore = 0
        if case .damageRun(_, let m, _) = next { nextMore = m }
        let last: Int
        if case .damageRun(_, _, let l) = next { last = l } else { last = next.offset ?? offset ?? 0 }
        return .damageRun(first, more: more + 1 + nextMore, lastOffset: last)
    }

    /// The byte offset the problem is at, when it has one (not for missing blocks, a missing block
    /// or chunk, or a refused write).
    public var offset: Int? {
        switch self {
        case .truncated(_, let o, _), .badCRC(_, _, let o), .badRecord(_, _, let o, _), .chunkOutOfRange(_, let o, _),
             .tokenDataOverrun(_, let o, _), .badIndex(_, let o, _), .trailingData(_, let o):
            return o
        case .damaged(let range, _, _):
            return range.reason.offset
        case .damageRun(let first, _, _):
            return first.offset
        default:
            return nil
        }
    }

    /// Whether the problem may have lost blocks: damage in a chunk or in a record of unknown type,
    /// missing blocks, a truncation (the reader decides whether chunks could have followed). Damage
    /// confined to `HEAD`, `INDX` or `TAIL` loses none.
    public var mayLoseBlocks: Bool {
        switch self {
        case .badCRC(_, let record, _), .badRecord(_, let record, _, _):
            return !["HEAD", "INDX", "TAIL"].contains(record)
        case .badIndex, .trailingData, .invalidInput, .noSuchChunk, .io, .badSignature, .unsupportedVersion, .badHeader:
            return false
        case .damageRun(let first, _, _):
            return first.mayLoseBlocks
        default:
            return true
        }
    }

    /// One line: the file, then the problem.
    public var description: String {
        if case .damaged(let range, let others, let hint) = self {
            var line = range.description
            if others > 0 { line += " (and \(others) more damaged \(others == 1 ? "range" : "ranges"))" }
            return hint.isEmpty ? line : line + "; " + hint
        }
        return "\(file): \(problem)"
    }

    /// The problem without the file name ("bad checksum in CHNK record at offset 1392").
    public var problem: String {
        switch self {
        case .io(_, let call, let code, let message):
            return "\(call) failed: \(message) (errno \(code))"
        case .badSignature:
            return "not an .etok file (bad signature)"
        case .unsupportedVersion(_, let major, let minor):
            return "unsupported .etok version \(major).\(minor) (this reader knows major \(EtokFormat.majorVersion))"
        case .truncated(_, let offset, let what):
            return "truncated at offset \(offset) (\(what))"
        case .badCRC(_, let record, let offset):
            return "bad checksum (CRC) in \(record) record at offset \(offset)"
        case .badRecord(_, let record, let offset, let message):
            return "bad \(record) record at offset \(offset): \(message)"
        case .badHeader(_, let key, let message):
            return "bad header JSON: key \(key): \(message)"
        case .chunkOutOfRange(_, let offset, let message):
            return "chunk at offset \(offset): field out of range: \(message)"
        case .tokenDataOverrun(_, let offset, let message):
            return "chunk at offset \(offset): bad token data: \(message)"
        case .badIndex(_, let offset, let message):
            return "index at offset \(offset) unusable: \(message)"
        case .trailingData(_, let offset):
            return "unexpected data after TAIL at offset \(offset)"
        case .missingBlocks(_, let from, let to):
            return "\(BlockRangeText.blocks(from, to)) missing (damaged or absent chunk)"
        case .noSuchBlock(_, let block):
            return "no readable block \(block)"
        case .repeatsMissingFrame(_, let block):
            return "repeat blocks of block \(block)'s last frame, which is lost"
        case .noSuchChunk(_, let index, let count):
            return "no chunk \(index) (\(count) readable \(count == 1 ? "chunk" : "chunks"))"
        case .invalidInput(_, let message):
            return "cannot write: \(message)"
        case .damaged(let range, _, _):
            return range.problem
        case .damageRun(let first, let more, let last):
            return "\(first.problem), and \(more) more \(more == 1 ? "problem" : "problems") up to offset \(last)"
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
