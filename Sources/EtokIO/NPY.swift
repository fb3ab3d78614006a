// NPY: the one reader and writer of NumPy .npy arrays in etok (format versions 1.0, 2.0 and 3.0
// read; 1.0 written). Format: magic "\x93NUMPY", major and minor version bytes, a header length
// (2 bytes little-endian in v1, 4 bytes in v2/v3), then a Python dict literal
// {'descr': '<f4', 'fortran_order': False, 'shape': (L, D), } padded with spaces to a multiple of
// 64 bytes and ending in '\n', then the raw data, C order.
//
// Dtypes: little-endian signed and unsigned integers of 1, 2, 4 and 8 bytes, and floats of 2, 4
// and 8 bytes: what the engine exchanges (float32 patches, uint8 frames, int32 codes), what
// `etok export` writes (int32, int64, float32, float64) and what NumPy and PyTorch users hand
// `etok import`. Each array keeps its dtype: read then written, the bytes are the same.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Why an .npy file was refused. `description`: "<file>: <problem>".
public enum NPYError: Error, CustomStringConvertible, Equatable, Sendable {
    case unreadable(file: String, message: String)
    case badFormat(file: String, message: String)
    case unsupported(file: String, message: String)

    public var description: String {
        switch self {
        case let .unreadable(file, m): return "\(file): cannot read: \(m)"
        case let .badFormat(file, m): return "\(file): not a valid .npy file: \(m)"
        case let .unsupported(file, m): return "\(file): unsupported .npy array: \(m)"
        }
    }
}

/// An n-dimensional array as .npy files hold it: a shape and C-order values of one dtype.
public struct NPYArray: Equatable, Sendable {
    /// The values, by dtype (float16 as its IEEE binary16 bit patterns).
    public enum Values: Equatable, Sendable {
        case int8([Int8]), int16([Int16]), int32([Int32]), int64([Int64])
        case uint8([UInt8]), uint16([UInt16]), uint32([UInt32]), uint64([UInt64])
        case float16Bits([UInt16]), float32([Float]), float64([Double])
    }

    public var shape: [Int]
    public var values: Values

    /// An array; the value count must equal the product of the shape.
    public init(shape: [Int], values: Values) {
        self.shape = shape
        self.values = values
    }

    public init(shape: [Int], floats: [Float]) { self.init(shape: shape, values: .float32(floats)) }
    public init(shape: [Int], int32: [Int32]) { self.init(shape: shape, values: .int32(int32)) }
    public init(shape: [Int], uint8: [UInt8]) { self.init(shape: shape, values: .uint8(uint8)) }
    /// A 1-D float64 array.
    public init(doubles: [Double]) { self.init(shape: [doubles.count], values: .float64(doubles)) }
    /// A 1-D int64 array.
    public init(int64: [Int64]) { self.init(shape: [int64.count], values: .int64(int64)) }

    /// The float32 values, or nil for another dtype.
    public var floats: [Float]? { if case let .float32(v) = values { return v } else { return nil } }
    /// The int32 values, or nil.
    public var int32: [Int32]? { if case let .int32(v) = values { return v } else { return nil } }
    /// The uint8 values, or nil.
    public var uint8: [UInt8]? { if case let .uint8(v) = values { return v } else { return nil } }

    /// Any integer dtype's values as Int64 (uint64 above Int64.max clamped), or nil for floats.
    public var integers: [Int64]? {
        switch values {
        case let .int8(v): return v.map(Int64.init)
        case let .int16(v): return v.map(Int64.init)
        case let .int32(v): return v.map(Int64.init)
        case let .int64(v): return v
        case let .uint8(v): return v.map(Int64.init)
        case let .uint16(v): return v.map(Int64.init)
        case let .uint32(v): return v.map(Int64.init)
        case let .uint64(v): return v.map { Int64(clamping: $0) }
        case .float16Bits, .float32, .float64: return nil
        }
    }

    /// The dtype descriptor as written ("<f4", "<i8", "|u1").
    public var descr: String {
        switch values {
        case .int8: return "|i1"
        case .int16: return "<i2"
        case .int32: return "<i4"
        case .int64: return "<i8"
        case .uint8: return "|u1"
        case .uint16: return "<u2"
        case .uint32: return "<u4"
        case .uint64: return "<u8"
        case .float16Bits: return "<f2"
        case .float32: return "<f4"
        case .float64: return "<f8"
        }
    }

    /// The number of values.
    public var count: Int {
        switch values {
        case let .int8(v): return v.count
        case let .int16(v): return v.count
        case let .int32(v): return v.count
        case let .int64(v): return v.count
        case let .uint8(v): return v.count
        case let .uint16(v), let .float16Bits(v): return v.count
        case let .uint32(v): return v.count
        case let .uint64(v): return v.count
        case let .float32(v): return v.count
        case let .float64(v): return v.count
        }
    }

    // MARK: Reading

    /// Reads `path` (v1.0 to v3.0, any dtype above, C order).
    public static func read(path: String) throws(NPYError) -> NPYArray {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw .unreadable(file: path, message: readFailure(path, error))
        }
        return try parse([UInt8](data), file: path)
    }

    /// Parses .npy bytes (`file` names them in errors). The shape is checked against the data
    /// before anything is allocated, so a header's claim cannot cost memory.
    public static func parse(_ bytes: [UInt8], file: String) throws(NPYError) -> NPYArray {
        let head = try NPYHeader.parse(bytes, file: file)
        let shape = head.shape, start = head.dataOffset
        if head.fortranOrder && shape.count > 1 {
            throw .unsupported(file: file, message: "Fortran order (save a C-order array: numpy.ascontiguousarray)")
        }
        // '<' little-endian, '|' not applicable (one byte); '=' native is little-endian on every
        // platform etok runs on.
        let order = head.descr.first, kind = head.descr.dropFirst().first, size = Int(head.descr.dropFirst(2))
        guard head.descr.count >= 3, let kind, let size, order == "<" || order == "|" || order == "=",
              let values = Self.decoder(kind: kind, size: size) else {
            throw .unsupported(file: file, message: "dtype \(head.descr) (etok reads little-endian integers of 1 to 8 "
                               + "bytes and float16/32/64)")
        }
        var count = 1
        for n in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: n)
            guard !overflow, product <= bytes.count else {
                throw .badFormat(file: file, message: "shape \(shape) does not fit the file")
            }
            count = product
        }
        guard bytes.count - start == count * size else {
            throw .badFormat(file: file, message: "data is \(bytes.count - start) bytes, shape \(shape) of "
                             + "\(head.descr) needs \(count * size)")
        }
        return NPYArray(shape: shape, values: bytes.withUnsafeBytes { values($0, start, count) })
    }

    /// How to load `count` values of one dtype from `raw` at `start` (nil: a dtype etok does not read).
    private static func decoder(kind: Character, size: Int) -> ((UnsafeRawBufferPointer, Int, Int) -> Values)? {
        switch (kind, size) {
        case ("i", 1): return { .int8(load($0, $1, $2)) }
        case ("i", 2): return { .int16(load($0, $1, $2)) }
        case ("i", 4): return { .int32(load($0, $1, $2)) }
        case ("i", 8): return { .int64(load($0, $1, $2)) }
        case ("u", 1): return { .uint8(load($0, $1, $2)) }
        case ("u", 2): return { .uint16(load($0, $1, $2)) }
        case ("u", 4): return { .uint32(load($0, $1, $2)) }
        case ("u", 8): return { .uint64(load($0, $1, $2)) }
        case ("f", 2): return { .float16Bits(load($0, $1, $2)) }
        case ("f", 4): return { .float32((load($0, $1, $2) as [UInt32]).map(Float.init(bitPattern:))) }
        case ("f", 8): return { .float64((load($0, $1, $2) as [UInt64]).map(Double.init(bitPattern:))) }
        default: return nil
        }
    }

    /// `count` little-endian values of `T` from `raw` at byte `start` (unaligned).
    private static func load<T: FixedWidthInteger>(_ raw: UnsafeRawBufferPointer, _ start: Int, _ count: Int) -> [T] {
        let size = MemoryLayout<T>.size
        return (0..<count).map { T(littleEndian: raw.loadUnaligned(fromByteOffset: start + $0 * size, as: T.self)) }
    }

    // MARK: Writing

    /// The .npy v1.0 bytes of this array.
    public func encoded() -> [UInt8] {
        let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shapeText), }"
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var out: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0]
        let n = header.utf8.count
        out += [UInt8(n & 0xFF), UInt8(n >> 8)]
        out += Array(header.utf8)
        switch values {
        case let .int8(v): Self.store(v, &out)
        case let .int16(v): Self.store(v, &out)
        case let .int32(v): Self.store(v, &out)
        case let .int64(v): Self.store(v, &out)
        case let .uint8(v): out += v
        case let .uint16(v), let .float16Bits(v): Self.store(v, &out)
        case let .uint32(v): Self.store(v, &out)
        case let .uint64(v): Self.store(v, &out)
        case let .float32(v): Self.store(v.map(\.bitPattern), &out)
        case let .float64(v): Self.store(v.map(\.bitPattern), &out)
        }
        return out
    }

    /// Appends `values` little-endian.
    private static func store<T: FixedWidthInteger>(_ values: [T], _ out: inout [UInt8]) {
        out.reserveCapacity(out.count + values.count * MemoryLayout<T>.size)
        for v in values { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
    }

    /// Writes the array to `path` whole (a temporary file moved into place), so a failed write
    /// never leaves a partial file under the final name.
    public func write(path: String, overwrite: Bool) throws(OutputError) {
        precondition(count == shape.reduce(1, *), "\(count) values do not fill shape \(shape)")
        try OutputPlacement(path: path, overwrite: overwrite).writeWhole(encoded())
    }
}

/// The system's words for why Foundation could not read `path`.
func readFailure(_ path: String, _ error: any Error) -> String {
    let ns = error as NSError
    if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
        return systemMessage(Int32(underlying.code))
    }
    return ns.localizedDescription
}

/// The header of an .npy file (format versions 1 to 3): the dtype descriptor, the shape, the
/// order, and where the data starts.
public struct NPYHeader: Sendable, Equatable {
    /// The dtype descriptor as written ("<f4", "<i8", "|u1").
    public var descr: String
    /// The array's shape (empty for a scalar).
    public var shape: [Int]
    /// True for a Fortran-order (column-major) array.
    public var fortranOrder: Bool
    /// Offset of the first data byte.
    public var dataOffset: Int

    /// Reads the magic, version, header length and header dictionary of `bytes`.
    /// - Throws: `NPYError.badFormat` or `.unsupported` naming `file`.
    public static func parse(_ bytes: [UInt8], file: String) throws(NPYError) -> NPYHeader {
        func bad(_ m: String) -> NPYError { .badFormat(file: file, message: m) }
        guard bytes.count >= 10, bytes[0] == 0x93, Array(bytes[1..<6]) == Array("NUMPY".utf8) else {
            throw bad("no NUMPY magic")
        }
        let headerLength: Int, headerStart: Int
        switch bytes[6] {
        case 1:
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw bad("truncated header length") }
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            headerStart = 12
        default:
            throw NPYError.unsupported(file: file, message: "format version \(bytes[6]).\(bytes[7])")
        }
        guard headerStart + headerLength <= bytes.count else { throw bad("header runs past the end of the file") }
        let header = String(decoding: bytes[headerStart..<(headerStart + headerLength)], as: UTF8.self)
        guard let descr = field("descr", in: header).flatMap(quoted) else { throw bad("header has no descr") }
        guard let fortran = field("fortran_order", in: header) else { throw bad("header has no fortran_order") }
        guard let shapeText = field("shape", in: header), let shape = tuple(shapeText) else {
            throw bad("header has no valid shape")
        }
        return NPYHeader(descr: descr, shape: shape, fortranOrder: fortran.hasPrefix("True"),
                         dataOffset: headerStart + headerLength)
    }

    /// The text after "'key':" up to the next top-level comma (tuples kept whole).
    private static func field(_ key: String, in header: String) -> String? {
        guard let r = header.range(of: "'\(key)':") else { return nil }
        var depth = 0, out = ""
        for ch in header[r.upperBound...] {
            if ch == "(" { depth += 1 }
            if ch == ")" { depth -= 1 }
            if (ch == "," && depth == 0) || ch == "}" { break }
            out.append(ch)
        }
        return out.trimmingCharacters(in: .whitespaces)
    }

    private static func quoted(_ s: String) -> String? {
        guard s.count >= 2, let q = s.first, q == "'" || q == "\"", s.last == q else { return nil }
        return String(s.dropFirst().dropLast())
    }

    private static func tuple(_ s: String) -> [Int]? {
        guard s.hasPrefix("("), s.hasSuffix(")") else { return nil }
        let parts = s.dropFirst().dropLast().split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
        let values = parts.compactMap { Int($0) }
        guard values.count == parts.count, values.allSatisfy({ $0 >= 0 }) else { return nil }
        return values
    }
}
