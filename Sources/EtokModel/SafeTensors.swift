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

/// One tensor's header entry.
public struct TensorEntry: Sendable, Equatable {
    /// Name as stored (official flax path joined by '/').
    public var name: String
    /// The dtype string as stored ("F32", "F16", "BF16", or anything else the file says).
    public var dtype: String
    public var shape: [Int]
    /// Byte range in the data section.
    public var begin: Int
    public var end: Int

    /// Number of values (product of the shape; 1 for a scalar).
    public var count: Int { shape.reduce(1, *) }
}

/// An opened safetensors file: header parsed and checked, bytes memory-mapped.
///
/// Owns the mapping (released with the value). Reading tensors is thread-safe (read-only).
public struct SafeTensorsFile {
    /// The path given at open (used in every error).
    public let path: String
    /// The "__metadata__" map (empty when absent).
    public let metadata: [String: String]
    /// Entries by name.
    public let entries: [String: TensorEntry]
    let data: Data
    let dataStart: Int

    /// Opens and validates `path`: header length, JSON, every entry's dtype string, shape and
    /// offsets (inside the data section, sized to the shape, not overlapping). Throws
    /// `ModelError.unreadable` or `.badHeader`.
    public init(path: String) throws {
        let bytes: Data
        do {
            bytes = try Data(contentsOf: URL(fileURLWithPath: path), options: [.alwaysMapped])
        } catch {
            throw ModelError.unreadable(file: path, message: "\(error.localizedDescription)")
        }
        try self.init(path: path, bytes: bytes)
    }

    /// Parses bytes already in memory (`path` only names them in errors).
    public init(path: String, bytes: Data) throws {
        self.path = path
        func bad(_ message: String) -> ModelError { .badHeader(file: path, message: message) }
        guard bytes.count >= 8 else { throw bad("file is \(bytes.count) bytes, shorter than the 8-byte length") }
        var length: UInt64 = 0
        for i in 0..<8 { length |= UInt64(bytes[bytes.startIndex + i]) << (8 * UInt64(i)) }
        guard length >= 2, length <= UInt64(bytes.count - 8), length <= 100_000_000 else {
            throw bad("header length \(length) does not fit a file of \(bytes.count) bytes")
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
            guard let e = value as? [String: Any],
                  let dtype = e["dtype"] as? String,
                  let shapeAny = e["shape"] as? [Any],
                  let offsets = e["data_offsets"] as? [Any], offsets.count == 2
            else { throw bad("entry \(name) lacks dtype, shape or data_offsets") }
            func nonNegative(_ v: Any) -> Int? { JSONNumber.integer(v).flatMap { $0 >= 0 ? $0 : nil } }
            let shape = shapeAny.compactMap(nonNegative)
            guard shape.count == shapeAny.count else { throw bad("entry \(name) has a bad shape") }
            guard let begin = nonNegative(offsets[0]), let end = nonNegative(offsets[1]),
                  begin <= end, end <= dataSize
            else { throw bad("entry \(name) has offsets outside the \(dataSize)-byte data section") }
            let entry = TensorEntry(name: name, dtype: dtype, shape: shape, begin: begin, end: end)
            if let known = StorageDType(rawValue: dtype), entry.count * known.size != end - begin {
                throw bad("entry \(name) holds \(end - begin) bytes, its shape \(shape) of \(dtype) needs \(entry.count * known.size)")
            }
            entries[name] = entry
        }
        let sorted = entries.values.sorted { ($0.begin, $0.end) < ($1.begin, $1.end) }
        for (a, b) in zip(sorted, sorted.dropFirst()) where b.begin < a.end && a.end > a.begin && b.end > b.begin {
            throw bad("entries \(a.name) and \(b.name) overlap")
        }
        self.metadata = metadata
        self.entries = entries
        self.data = bytes
        self.dataStart = 8 + Int(length)
    }

    /// Reads tensor `name` as float32 (converting F16/BF16 exactly). Throws `.missingTensor`
    /// or `.wrongDType`.
    public func floats(_ name: String) throws -> FloatBuffer {
        guard let entry = entries[name] else { throw ModelError.missingTensor(file: path, name: name) }
        guard let dtype = StorageDType(rawValue: entry.dtype) else {
            throw ModelError.wrongDType(file: path, name: name, dtype: entry.dtype)
        }
        let out = FloatBuffer(count: entry.count)
        data.withUnsafeBytes { raw in
            let src = raw.baseAddress! + dataStart + entry.begin
            HalfFloat.convert(src, dtype: dtype, count: entry.count, into: out.base)
        }
        return out
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
