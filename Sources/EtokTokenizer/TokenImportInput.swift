import EtokFormat
import EtokIO
import EtokMedia
import Foundation

/// A token sequence read for `etok import`: JSON lines or an npy folder as `etok export` writes
/// them, each block already checked on its own against the model (kept count, token count, FSQ
/// indices in the codebook, VAE values that binary16 holds). What depends on neighbouring blocks
/// (increasing block numbers and times) is checked by `TokenImport`.
public struct ImportedSequence: Sendable {
    /// The input as messages name it ("stdin" for `-`).
    public var file: String
    /// The blocks in input order.
    public var blocks: [ImportedBlock]
    /// The files that messages about each field name.
    public var files: ImportFiles

    /// Reads `path`: a folder is an npy export, anything else (`-` for stdin) JSON lines.
    /// - Throws: `MediaError.fileNotFound` for a missing path, `TokenImportError` for an input
    ///   that is not a token sequence the model can decode, `NPYError` for an unreadable array.
    public static func read(path: String, model: EtokHeader.Model) throws -> ImportedSequence {
        let rules = ImportRules(model: model)
        if path == "-" { return try jsonLines(LineReader(fd: STDIN_FILENO, file: "stdin"), rules: rules) }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw MediaError.fileNotFound(file: path)
        }
        if isDirectory.boolValue { return try npyFolder(path, rules: rules) }
        if path.lowercased().hasSuffix(".npy") {
            throw TokenImportError.badInput(file: path, message: "give the folder that holds lengths.npy and tokens.npy "
                                            + "(as etok export --format npy writes it), not one .npy file")
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw MediaError.unreadableInput(file: path) }
        defer { close(fd) }
        return try jsonLines(LineReader(fd: fd, file: path), rules: rules)
    }

    // MARK: JSON lines

    /// One object per line, as `etok export --format jsonl` writes: `tokens` (required), `kept`,
    /// `block`, `time`, `frames` (optional); other keys are ignored, blank lines skipped. Read line
    /// by line: memory holds one line (at most `ImportRules.maxLineBytes`) and the blocks parsed.
    static func jsonLines(_ reader: LineReader, rules: ImportRules) throws -> ImportedSequence {
        let file = reader.file
        let files = ImportFiles(kept: file, tokens: file, time: file, block: file, frames: file, chunk: file)
        var blocks: [ImportedBlock] = []
        var number = 0
        let decoder = JSONDecoder()
        while var line = try reader.next(limit: ImportRules.maxLineBytes) {
            number += 1
            if number == 1 {
                if line.starts(with: [0x50, 0x4B, 0x03, 0x04]) || line.starts(with: [0x1F, 0x8B]) {
                    throw TokenImportError.badInput(file: file, message: "is a zip/npz or gzip archive: etok import reads JSON "
                                                    + "lines or a folder of .npy files (unpack it first, or save with numpy.save)")
                }
                if line.starts(with: EtokFormat.signature.prefix { $0 != 0x0A }) {   // the line ends inside it
                    throw TokenImportError.badInput(file: file, message: "is already an .etok stream: etok decode reads it")
                }
                if line.starts(with: [0xEF, 0xBB, 0xBF]) { line.removeFirst(3) }   // a UTF-8 byte order mark
            }
            guard line.contains(where: { ![0x20, 0x09, 0x0D].contains($0) }) else { continue }
            let location = "line \(number)"
            let parsed: JSONLine
            do {
                parsed = try decoder.decode(JSONLine.self, from: Data(line))
            } catch let problem as LineProblem {
                throw TokenImportError.badBlock(file: file, location: location, message: problem.message)
            } catch {
                throw TokenImportError.badBlock(file: file, location: location,
                                                message: "malformed JSON (etok import reads one object per line, as etok export writes)")
            }
            if parsed.nested && rules.bottleneck == .fsq {
                throw TokenImportError.badBlock(file: file, location: location, message: "\"tokens\" holds lists, but this "
                    + "model's tokens are single FSQ indices: combine digits d_i as Σ d_i · Π_{j<i} L_j (etok info --json "
                    + "lists fsq_quant_levels L)")
            }
            blocks.append(try rules.block(location: location, files: files, kept: parsed.kept, values: .numbers(parsed.tokens),
                                          frames: parsed.frames, block: parsed.block.map(Int64.init), time: parsed.time,
                                          chunk: parsed.chunk.map(Int64.init)))
        }
        return ImportedSequence(file: file, blocks: blocks, files: files)
    }

    // MARK: npy folder

    /// The folder `etok export --format npy` writes: `lengths.npy` and `tokens.npy` (required),
    /// `pts.npy` (seconds), `blocks.npy` and `frames.npy` (frames per block, for a last partial
    /// block of a multi-frame model) optional.
    static func npyFolder(_ folder: String, rules: ImportRules) throws -> ImportedSequence {
        let dir = URL(fileURLWithPath: folder)
        func file(_ name: String) -> String { dir.appendingPathComponent(name).path }
        func exists(_ name: String) -> Bool { FileManager.default.fileExists(atPath: file(name)) }
        for name in ["lengths.npy", "tokens.npy"] where !exists(name) {
            throw TokenImportError.badInput(file: folder, message: "no \(name): an npy token folder holds lengths.npy and "
                                            + "tokens.npy (pts.npy and blocks.npy optional), as etok export --format npy writes")
        }
        let lengthsFile = file("lengths.npy"), tokensFile = file("tokens.npy")
        let ptsFile = file("pts.npy"), blocksFile = file("blocks.npy"), chunksFile = file("chunks.npy")
        let lengths = try NPYArray.read(path: lengthsFile).importIntegers(file: lengthsFile, oneDimensional: true, what: "kept tokens per block")
        let numbers = try exists("blocks.npy")
            ? NPYArray.read(path: blocksFile).importIntegers(file: blocksFile, oneDimensional: true, what: "block numbers") : nil
        let times = try exists("pts.npy") ? NPYArray.read(path: ptsFile).importNumbers(file: ptsFile, oneDimensional: true) : nil
        let chunkIDs = try exists("chunks.npy")
            ? NPYArray.read(path: chunksFile).importIntegers(file: chunksFile, oneDimensional: true, what: "chunk of each block") : nil
        let framesFile = file("frames.npy")
        let frames = try exists("frames.npy")
            ? NPYArray.read(path: framesFile).importIntegers(file: framesFile, oneDimensional: true, what: "frames per block") : nil
        for (name, count) in [(blocksFile, numbers?.count), (ptsFile, times?.count), (framesFile, frames?.count),
                              (chunksFile, chunkIDs?.count)] {
            if let count, count != lengths.count {
                throw TokenImportError.badInput(file: name, message: "has \(count) entries, lengths.npy \(lengths.count): one per block in both")
            }
        }
        let tokenArray = try NPYArray.read(path: tokensFile)
        let values: ImportedValues
        if rules.bottleneck == .fsq {
            values = .integers(try tokenArray.importIntegers(file: tokensFile, oneDimensional: true, what: "FSQ indices"))
        } else {
            if tokenArray.shape.count == 2 && tokenArray.shape[1] != rules.valuesPerToken {
                throw NPYError.badFormat(file: tokensFile, message: "shape \(tokenArray.shape): the model's VAE tokens have "
                                         + "\(rules.valuesPerToken) values (vae_bottleneck_dim), so (N, \(rules.valuesPerToken))")
            }
            values = .numbers(try tokenArray.importNumbers(file: tokensFile, oneDimensional: false))
        }
        let files = ImportFiles(kept: lengthsFile, tokens: tokensFile, time: ptsFile, block: blocksFile, frames: framesFile,
                                chunk: chunksFile)
        func location(_ i: Int) -> String { numbers.map { "entry \(i) (block \($0[i]))" } ?? "entry \(i)" }
        // Every kept count is checked before the counts are added up and slice the tokens.
        for (i, length) in lengths.enumerated() {
            _ = try rules.keptCount(Int(clamping: length), location: location(i), file: lengthsFile)
        }
        let framesPerBlock = try frames?.enumerated().map { (i: Int, n: Int64) -> Int in
            guard n >= 1 && n <= Int64(rules.framesPerBlock) else {
                throw TokenImportError.badBlock(file: framesFile, location: location(i),
                                                message: "frames \(n) outside 1…\(rules.framesPerBlock) (the model's frames_per_block)")
            }
            return Int(n)
        }
        let total = lengths.reduce(0) { $0 + Int($1) }
        if total * rules.valuesPerToken != values.count {
            throw TokenImportError.badInput(file: tokensFile, message: "holds \(values.count / rules.valuesPerToken) tokens, "
                                            + "but lengths.npy adds up to \(total)")
        }
        var blocks: [ImportedBlock] = []
        blocks.reserveCapacity(lengths.count)
        var offset = 0
        for (i, length) in lengths.enumerated() {
            let count = Int(length) * rules.valuesPerToken
            blocks.append(try rules.block(location: location(i), files: files, kept: Int(length),
                                          values: values.slice(offset..<(offset + count)), frames: framesPerBlock?[i],
                                          block: numbers?[i], time: times?[i], chunk: chunkIDs?[i]))
            offset += count
        }
        return ImportedSequence(file: folder, blocks: blocks, files: files)
    }
}

/// One block of an imported sequence, checked against the model on its own.
public struct ImportedBlock: Sendable, Equatable {
    /// Where it is in the input, for messages: `line N` (JSON lines, 1-based) or `block N` (npy).
    public var location: String
    /// The block number the input gave, if any (`etok export` writes the block's index in its
    /// stream, so gaps show where damaged blocks were skipped).
    public var block: Int?
    /// The time the input gave, in seconds, if any.
    public var time: Double?
    /// The chunk the input put it in, if any (`etok export` names a chunk by its first block): the
    /// model's context resets where the value changes.
    public var chunk: Int64?
    /// Kept tokens (`min_toks` … `max_toks`).
    public var kept: Int
    /// Frames the block stands for, if the input said (1 … `frames_per_block`).
    public var frames: Int?
    /// The kept tokens.
    public var tokens: BlockTokens
}

/// The files that messages about each field of a block name: the JSON lines file for all of
/// them, or the npy folder's `lengths.npy`, `tokens.npy`, `pts.npy`, `blocks.npy` and `frames.npy`.
public struct ImportFiles: Sendable, Equatable {
    /// Kept counts.
    public var kept: String
    /// Tokens.
    public var tokens: String
    /// Times.
    public var time: String
    /// Block numbers.
    public var block: String
    /// Frames per block.
    public var frames: String
    /// Chunks.
    public var chunk: String
}

/// Token values as an input holds them, before they are checked against the model.
enum ImportedValues {
    case integers([Int64])
    case numbers([Double])

    var count: Int {
        switch self {
        case .integers(let v): return v.count
        case .numbers(let v): return v.count
        }
    }

    func slice(_ range: Range<Int>) -> ImportedValues {
        switch self {
        case .integers(let v): return .integers(Array(v[range]))
        case .numbers(let v): return .numbers(Array(v[range]))
        }
    }
}

/// The model facts a block is checked against, and the checks (messages name the model's key).
struct ImportRules {
    var minToks: Int
    var maxToks: Int
    var framesPerBlock: Int
    var bottleneck: EtokHeader.Bottleneck
    /// Π `fsq_quant_levels` (FSQ).
    var codebookSize: Int
    /// 1 for FSQ, `vae_bottleneck_dim` for VAE.
    var valuesPerToken: Int

    init(model: EtokHeader.Model) {
        minToks = model.minToks
        maxToks = model.maxToks
        framesPerBlock = model.framesPerBlock
        bottleneck = model.bottleneck
        codebookSize = (model.fsqQuantLevels ?? []).reduce(1, *)
        valuesPerToken = model.bottleneck == .fsq ? 1 : max(1, model.vaeBottleneckDim ?? 1)
    }

    /// Longest JSON line accepted, in bytes. A block of 256 tokens of 64 VAE values each, written
    /// at full float precision, is under 0.5 MB; a longer line is not a block, and parsing it would
    /// cost about 30 times its size.
    static let maxLineBytes = 4 << 20
    /// Largest block number accepted (as a stream's `first_block`, §5), so arithmetic never overflows.
    static let maxBlockNumber = 1 << 40
    /// Largest |time| accepted, in seconds (about 31 years): its pts fits any time base etok writes.
    static let maxSeconds = 1e9
    /// Largest magnitude binary16 holds (§6.2 stores VAE latents as f16).
    static let maxHalf = 65504.0

    /// `min_toks` … `max_toks`, or 0: a repeat block (docs/etok-format.md §5), which
    /// `TokenImport` allows anywhere but at a chunk's start.
    func keptCount(_ kept: Int, location: String, file: String, implied: Bool = false) throws -> Int {
        guard kept == 0 || (kept >= minToks && kept <= maxToks) else {
            let what = implied ? BlockRangeText.count(kept, "token") : "kept \(kept)"
            throw TokenImportError.badBlock(file: file, location: location,
                                            message: "\(what) outside \(minToks)…\(maxToks) (the model's min_toks…max_toks)")
        }
        return kept
    }

    func blockNumber(_ n: Int64, location: String, file: String) throws -> Int {
        guard n >= 0 && n <= Int64(Self.maxBlockNumber) else {
            throw TokenImportError.badBlock(file: file, location: location, message: "block number \(n) outside 0…2^40")
        }
        return Int(n)
    }

    /// Checks one block's fields and tokens; `kept` nil means "as many as there are tokens".
    func block(location: String, files: ImportFiles, kept: Int?, values: ImportedValues, frames: Int?,
               block: Int64?, time: Double?, chunk: Int64? = nil) throws -> ImportedBlock {
        func bad(_ file: String, _ message: String) -> TokenImportError {
            .badBlock(file: file, location: location, message: message)
        }
        let keptFile = files.kept, tokensFile = files.tokens
        let per = valuesPerToken
        if values.count % per != 0 {
            throw bad(tokensFile, "\(values.count) values are not whole tokens of \(per) (the model's vae_bottleneck_dim)")
        }
        let count = values.count / per
        let kept = try keptCount(kept ?? count, location: location, file: kept == nil ? tokensFile : keptFile,
                                 implied: kept == nil)
        if count != kept {
            throw bad(tokensFile, per == 1 ? "\(count) tokens, but kept is \(kept)"
                                           : "\(count) tokens (\(values.count) values), but kept is \(kept)")
        }
        if let frames, frames < 1 || frames > framesPerBlock {
            throw bad(files.frames, "frames \(frames) outside 1…\(framesPerBlock) (the model's frames_per_block)")
        }
        if let time, !(time.isFinite && abs(time) <= Self.maxSeconds) {
            throw bad(files.time, "time \(time) s is out of range")
        }
        let number = try block.map { try blockNumber($0, location: location, file: files.block) }
        let tokens: BlockTokens
        switch bottleneck {
        case .fsq:
            let top = codebookSize - 1
            func outside(_ i: Int, _ v: String) -> TokenImportError {
                bad(tokensFile, "token \(i): FSQ index \(v) outside 0…\(top) (the model's codebook, the product of fsq_quant_levels)")
            }
            var indices = [Int32](repeating: 0, count: count)
            switch values {
            case .integers(let v):
                for (i, x) in v.enumerated() {
                    guard x >= 0 && x <= Int64(top) else { throw outside(i, "\(x)") }
                    indices[i] = Int32(x)
                }
            case .numbers(let v):
                for (i, x) in v.enumerated() {
                    guard x == x.rounded() else { throw bad(tokensFile, "token \(i): \(x) is not an FSQ index (a whole number)") }
                    guard x >= 0 && x <= Double(top) else { throw outside(i, abs(x) < 1e15 ? "\(Int64(x))" : "\(x)") }
                    indices[i] = Int32(x)
                }
            }
            tokens = .fsq(indices)
        case .vae:
            let v: [Double]
            switch values {
            case .integers(let i): v = i.map(Double.init)
            case .numbers(let n): v = n
            }
            if let i = v.firstIndex(where: { !($0.isFinite && abs($0) <= Self.maxHalf) }) {
                throw bad(tokensFile, "value \(i) (\(v[i])) does not fit binary16, how .etok stores VAE latents (|x| ≤ 65504)")
            }
            tokens = .vae(v.map { Float($0) })
        }
        return ImportedBlock(location: location, block: number, time: time, chunk: chunk, kept: kept, frames: frames,
                             tokens: tokens)
    }
}

/// The lines of a file or pipe, read with `read(2)` in 64 KiB pieces: memory holds one line and
/// one piece, whatever the input's size. Not thread-safe.
final class LineReader {
    /// The input as messages name it ("stdin" for the pipe).
    let file: String
    private let fd: Int32
    private var buffer: [UInt8] = []
    private var start = 0
    private var ended = false
    private var number = 0

    init(fd: Int32, file: String) {
        self.fd = fd
        self.file = file
    }

    /// The next line without its newline, or nil at the end.
    /// - Throws: `TokenImportError.badBlock` for a line longer than `limit` bytes (nothing more of
    ///   it is kept); `MediaError.unreadableInput` when reading fails.
    func next(limit: Int) throws -> [UInt8]? {
        number += 1
        var searched = start
        while true {
            if let end = buffer[searched...].firstIndex(of: 0x0A) {
                let line = Array(buffer[start..<end])
                start = end + 1
                return line
            }
            if buffer.count - start > limit {
                throw TokenImportError.badBlock(file: file, location: "line \(number)", message: "longer than \(limit >> 20) MiB: "
                    + "not a block as etok export writes one (one JSON object per line)")
            }
            if ended {
                guard start < buffer.count else { return nil }
                let line = Array(buffer[start...])
                start = buffer.count
                return line
            }
            buffer.removeFirst(start)
            start = 0
            searched = buffer.count
            let piece = 1 << 16
            buffer.reserveCapacity(buffer.count + piece)
            var chunk = [UInt8](repeating: 0, count: piece)
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, piece) }
            if n < 0 {
                if errno == EINTR { continue }
                throw MediaError.unreadableInput(file: file)
            }
            if n == 0 { ended = true } else { buffer += chunk[0..<n] }
        }
    }
}

/// A problem with one JSON line that decoding found (the message, without file and line).
private struct LineProblem: Error {
    var message: String
}

/// One line of `etok export --format jsonl`: `{"block":..,"time":..,"kept":..,"tokens":[...]}`.
private struct JSONLine: Decodable {
    var block: Int?
    var chunk: Int?
    var time: Double?
    var kept: Int?
    var frames: Int?
    /// True when `tokens` came as one list per token (VAE latents; refused for FSQ models).
    var nested = false
    /// A flat list (FSQ indices; VAE values token after token), or VAE values as one list per token.
    var tokens: [Double]

    enum Key: String, CodingKey { case block, chunk, time, kept, frames, tokens }

    init(from decoder: Decoder) throws {
        let c: KeyedDecodingContainer<Key>
        do { c = try decoder.container(keyedBy: Key.self) } catch {
            throw LineProblem(message: "not a JSON object (etok import reads one object per line, as etok export writes)")
        }
        func whole(_ key: Key) throws -> Int? {
            do { return try c.decodeIfPresent(Int.self, forKey: key) } catch {
                throw LineProblem(message: "\"\(key.rawValue)\" is not a whole number")
            }
        }
        block = try whole(.block)
        chunk = try whole(.chunk)
        kept = try whole(.kept)
        frames = try whole(.frames)
        do { time = try c.decodeIfPresent(Double.self, forKey: .time) } catch {
            throw LineProblem(message: "\"time\" is not a number of seconds")
        }
        guard c.contains(.tokens), (try? c.decodeNil(forKey: .tokens)) == false else {
            throw LineProblem(message: "no \"tokens\" list")
        }
        if let flat = try? c.decode([Double].self, forKey: .tokens) {
            tokens = flat
        } else if let nested = try? c.decode([[Double]].self, forKey: .tokens) {
            tokens = nested.flatMap { $0 }
            self.nested = true
        } else {
            throw LineProblem(message: "\"tokens\" is not a list of numbers")
        }
    }
}

/// What an import takes from an .npy array (any dtype the codec reads: integers of 1 to 8 bytes,
/// float16/32/64): integers exactly, numbers as Double (which holds every float32 and float16).
extension NPYArray {
    /// The values as integers; a float array is refused (what it should hold says why).
    func importIntegers(file: String, oneDimensional: Bool, what: String) throws -> [Int64] {
        try checkImportShape(file: file, oneDimensional)
        guard let v = integers else {
            throw NPYError.unsupported(file: file, message: "holds floats; \(what) are integers (int32 or int64)")
        }
        return v
    }

    /// The values as numbers (integers converted).
    func importNumbers(file: String, oneDimensional: Bool) throws -> [Double] {
        try checkImportShape(file: file, oneDimensional)
        switch values {
        case .float16Bits(let v): return v.map { Double(Float16Bits.float($0)) }
        case .float32(let v): return v.map(Double.init)
        case .float64(let v): return v
        default: return (integers ?? []).map(Double.init)
        }
    }

    private func checkImportShape(file: String, _ oneDimensional: Bool) throws {
        if oneDimensional && shape.count != 1 {
            throw NPYError.badFormat(file: file, message: "shape \(shape): expected one dimension, one entry per block")
        }
        if shape.count > 2 {
            throw NPYError.badFormat(file: file, message: "shape \(shape): expected (N,) or (N, dim)")
        }
    }
}
