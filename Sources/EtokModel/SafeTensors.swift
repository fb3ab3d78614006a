// SafeTensors: a strict reader of the safetensors format (8-byte little-endian header length,
// a JSON header, then the raw tensor bytes), converting F32/F16/BF16 storage to float32.
//
// Format facts: the header maps tensor names to {"dtype", "shape", "data_offsets": [begin, end]}
// (byte offsets into the data section that follows the header) and may hold "__metadata__", a
// string-to-string map. Data is little-endian, C order.
import EtokTensor
import Foundation

/// Storage dtypes etok converts (others are named in errors, never read).
public enum StorageDType: String, Sendable {
    case f32 = "F32"
    case f16 = "F16"
    case bf16 = "BF16"

    /// Bytes per value.
    public var size: Int { self == .f32 ? 4 : 2 }
}

/// One tensor's header entry, checked: its shape's element count and byte size do not
/// overflow, and its byte range lies inside the data section.
public struct TensorEntry: Sendable, Equatable {
    /// Name as stored (official flax path joined by '/').
    public let name: String
    /// The dtype string as stored ("F32", "F16", "BF16", or anything else the file says).
    public let dtype: String
    public let shape: [Int]
    /// Byte range in the data section.
    public let begin: Int
    public let end: Int
    /// Number of values (product of the shape; 1 for a scalar), computed with overflow checks.
    public let count: Int
}

/// An opened safetensors file: header parsed and checked, bytes memory-mapped.
///
/// Owns the mapping (released with the value). Reading tensors is thread-safe (read-only).
/// Everything the header claims is checked before anything sized by it is allocated: the
/// header length (at most `ModelLimits.headerBytes`), the JSON, every entry's shape (rank,
/// element count and byte size with overflow checks), offsets (inside the data section, sized
/// to shape × dtype, not overlapping, covering it with no hole); tensor values are checked to
/// be finite when read.
public struct SafeTensorsFile {
    /// The path given at open (used in every error).
    public let path: String
    /// The "__metadata__" map (empty when absent).
    public let metadata: [String: String]
    /// Entries by name.
    public let entries: [String: TensorEntry]
    let data: Data
    let dataStart: Int
    /// Whether `data` is a read-only file mapping whose pages `floats` may drop once read (so a
    /// load's peak is the converted weights plus one tensor's file pages, not both whole).
    private var dropsReadPages = false

    /// Opens and validates `path` (see the type's comment). Throws `ModelError.unreadable`
    /// when `path` is not a readable, non-empty regular file, `.badHeader` for the rest.
    public init(path: String) throws {
        try self.init(path: path, bytes: try MappedFile.map(path))
        dropsReadPages = true
    }

    /// Parses bytes already in memory (`path` only names them in errors).
    public init(path: String, bytes: Data) throws {
        self.path = path
        func bad(_ message: String) -> ModelError { .badHeader(file: path, message: message) }
        guard bytes.count >= 8 else { throw bad("file is \(bytes.count) bytes, shorter than the 8-byte length") }
        var length: UInt64 = 0
        for i in 0..<8 { length |= UInt64(bytes[bytes.startIndex + i]) << (8 * UInt64(i)) }
        guard length >= 2, length <= UInt64(bytes.count - 8) else {
            throw bad("header length \(length) does not fit a file of \(bytes.count) bytes")
        }
        guard length <= UInt64(ModelLimits.headerBytes) else {
            throw bad("header length \(length) is over etok's limit of \(ModelLimits.headerBytes) bytes")
        }
        let headerBytes = bytes.subdata(in: (bytes.startIndex + 8)..<(bytes.startIndex + 8 + Int(length)))
        guard let json = try? JSONSerialization.jsonObject(with: headerBytes),
              let header = json as? [String: Any]
        else { throw bad("header is not a JSON object") }
        let dataSize = bytes.count - 8 - Int(length)
        var metadata: [String: String] = [:]
        var entries: [String: TensorEntry] = [:]
        for (name, value) in header {
            if name == "__metadata__" {
                guard let m = value as? [String: Any] else { throw bad("__metadata__ is not an object") }
                for (k, v) in m {
                    guard let s = v as? String else { throw bad("__metadata__ value \(k) is not a string") }
                    metadata[k] = s
                }
                continue
            }
            entries[name] = try Self.entry(name, value, dataSize: dataSize, bad)
        }
        // Sorted by start, a non-empty entry overlaps an earlier one exactly when it starts
        // before the furthest end seen so far (empty entries own no bytes). As the format
        // requires, the entries cover the data section with no hole and nothing after them.
        var furthest: TensorEntry?
        for e in entries.values.sorted(by: { ($0.begin, $0.end, $0.name) < ($1.begin, $1.end, $1.name) }) where e.end > e.begin {
            if let f = furthest, e.begin < f.end { throw bad("entries \(f.name) and \(e.name) overlap") }
            if e.begin > furthest?.end ?? 0 {
                throw bad("data bytes \(furthest?.end ?? 0)..<\(e.begin) belong to no tensor (a hole before \(e.name))")
            }
            if e.end > furthest?.end ?? 0 { furthest = e }
        }
        if (furthest?.end ?? 0) != dataSize {
            throw bad("data bytes \(furthest?.end ?? 0)..<\(dataSize) belong to no tensor (trailing bytes)")
        }
        self.metadata = metadata
        self.entries = entries
        self.data = bytes
        self.dataStart = 8 + Int(length)
    }

    /// One header entry, checked (see the type's comment).
    static func entry(_ name: String, _ value: Any, dataSize: Int, _ bad: (String) -> ModelError) throws -> TensorEntry {
        guard let e = value as? [String: Any],
              let dtype = e["dtype"] as? String,
              let shapeAny = e["shape"] as? [Any],
              let offsets = e["data_offsets"] as? [Any], offsets.count == 2
        else { throw bad("entry \(name) lacks dtype, shape or data_offsets") }
        guard ModelLimits.tensorRank.contains(shapeAny.count) else {
            throw bad("entry \(name) has \(shapeAny.count) dimensions, at most \(ModelLimits.tensorRank.upperBound) make sense")
        }
        func nonNegative(_ v: Any) -> Int? {
            if case .value(let i)? = JSONNumber.integer(v), i >= 0 { return i }
            return nil
        }
        var shape: [Int] = []
        for d in shapeAny {
            guard let n = nonNegative(d) else { throw bad("entry \(name) has a bad shape dimension \(d)") }
            shape.append(n)
        }
        var count = 1
        for n in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: n)
            if overflow { throw bad("entry \(name): the element count of shape \(shape) overflows") }
            count = product
        }
        guard let begin = nonNegative(offsets[0]), let end = nonNegative(offsets[1]), begin <= end, end <= dataSize
        else { throw bad("entry \(name) has offsets \(offsets) outside the \(dataSize)-byte data section") }
        if let known = StorageDType(rawValue: dtype) {
            let (bytes, overflow) = count.multipliedReportingOverflow(by: known.size)
            if overflow { throw bad("entry \(name): the byte size of shape \(shape) of \(dtype) overflows") }
            if bytes != end - begin {
                throw bad("entry \(name) holds \(end - begin) bytes, its shape \(shape) of \(dtype) needs \(bytes)")
            }
        }
        return TensorEntry(name: name, dtype: dtype, shape: shape, begin: begin, end: end, count: count)
    }

    /// Reads tensor `name` as float32 (converting F16/BF16 exactly). Throws `.missingTensor`,
    /// `.wrongDType`, or `.nonFinite` for a NaN or infinite value (a broken model would
    /// otherwise decode to black frames that look like the model's limit).
    public func floats(_ name: String) throws -> FloatBuffer {
        guard let entry = entries[name] else { throw ModelError.missingTensor(file: path, name: name) }
        guard let dtype = StorageDType(rawValue: entry.dtype) else {
            throw ModelError.wrongDType(file: path, name: name, dtype: entry.dtype)
        }
        let out = FloatBuffer(count: entry.count)
        data.withUnsafeBytes { raw in
            let src = raw.baseAddress! + dataStart + entry.begin
            HalfFloat.convert(src, dtype: dtype, count: entry.count, into: out.base)
            if dropsReadPages {
                // Clean file pages: dropping them only means reading them again if asked.
                let page = Int(sysconf(Int32(_SC_PAGESIZE)))
                let start = Int(bitPattern: src) / page * page
                let end = Int(bitPattern: src + (entry.end - entry.begin))
                _ = madvise(UnsafeMutableRawPointer(bitPattern: start), end - start, MADV_DONTNEED)
            }
        }
        for i in 0..<entry.count where !out.base[i].isFinite {
            throw ModelError.nonFinite(file: path, name: name, index: i, value: out.base[i])
        }
        return out
    }
}

/// Maps a model file read-only, after checking it is a non-empty regular file (a FIFO, a
/// device or a folder given as a model gets a sentence saying so, not an errno from mmap).
enum MappedFile {
    static func map(_ path: String) throws -> Data {
        func fail(_ message: String) -> ModelError { .unreadable(file: path, message: message) }
        func reason() -> String { String(cString: strerror(errno)) }
        var st = stat()
        // stat before open: opening a FIFO would block until a writer comes.
        guard stat(path, &st) == 0 else {
            throw fail(errno == ENOENT ? "no such file" : "cannot read: \(reason())")
        }
        try kind(st, fail)
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw fail("cannot open: \(reason())") }
        defer { close(fd) }
        guard fstat(fd, &st) == 0 else { throw fail("cannot read: \(reason())") }
        try kind(st, fail)
        let size = Int(st.st_size)
        guard let base = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), base != MAP_FAILED else {
            throw fail("cannot map: \(reason())")
        }
        return Data(bytesNoCopy: base, count: size, deallocator: .custom { pointer, count in _ = munmap(pointer, count) })
    }

    /// Throws unless `st` is a non-empty regular file.
    private static func kind(_ st: stat, _ fail: (String) -> ModelError) throws {
        switch st.st_mode & S_IFMT {
        case S_IFREG: if st.st_size == 0 { throw fail("is empty (0 bytes); a model is a .safetensors file") }
        case S_IFDIR: throw fail("is a directory; give the model's .safetensors file")
        case S_IFCHR, S_IFBLK: throw fail("is a device, not a regular file; give the model's .safetensors file")
        case S_IFIFO: throw fail("is a pipe, not a regular file; a model must be a file etok can map")
        default: throw fail("is not a regular file; give the model's .safetensors file")
        }
    }
}

/// float16 / bfloat16 → float32 conversion (exact; little-endian storage).
public enum HalfFloat {
    /// Converts `count` stored values at `src` (any alignment) into `dst`.
    public static func convert(_ src: UnsafeRawPointer, dtype: StorageDType, count: Int,
                               into dst: UnsafeMutablePointer<Float>) {
        switch dtype {
        case .f32:
            for i in 0..<count { dst[i] = Float(bitPattern: UInt32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
        case .bf16:
            for i in 0..<count {
                let h = UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
                dst[i] = Float(bitPattern: UInt32(h) << 16)
            }
        case .f16:
            for i in 0..<count {
                dst[i] = halfToFloat(UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
            }
        }
    }

    /// IEEE binary16 bits → Float (subnormals, infinities and NaN included).
    public static func halfToFloat(_ h: UInt16) -> Float {
        let sign: Float = (h & 0x8000) != 0 ? -1 : 1
        let exponent = Int((h >> 10) & 0x1F)
        let mantissa = Float(h & 0x3FF)
        switch exponent {
        case 0: return sign * mantissa * 0x1p-24
        case 31: return mantissa == 0 ? sign * .infinity : .nan
        default: return sign * (1 + mantissa / 1024) * Float(sign: .plus, exponent: exponent - 15, significand: 1)
        }
    }
}
