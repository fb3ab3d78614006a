// NPY: reader and writer for NumPy .npy arrays (format versions 1.0, 2.0 and 3.0 read; 1.0
// written), for the dtypes the engine exchanges: float32, int32 and uint8, little-endian,
// C order. Format: magic "\x93NUMPY", major and minor version bytes, a header length (2 bytes
// little-endian in v1, 4 bytes in v2/v3), then a Python dict literal
// {'descr': '<f4', 'fortran_order': False, 'shape': (L, D), } padded with spaces to a multiple
// of 64 bytes and ending in '\n', then the raw data.
import Foundation

/// Why an .npy file was refused. `description`: "<file>: <problem>".
public enum NPYError: Error, CustomStringConvertible, Equatable {
    case unreadable(file: String, message: String)
    case badFormat(file: String, message: String)
    case unsupported(file: String, message: String)
    case writeFailed(file: String, message: String)

    public var description: String {
        switch self {
        case let .unreadable(file, m): return "\(file): cannot read: \(m)"
        case let .badFormat(file, m): return "\(file): not a valid .npy file: \(m)"
        case let .unsupported(file, m): return "\(file): unsupported .npy array: \(m)"
        case let .writeFailed(file, m): return "\(file): cannot write: \(m)"
        }
    }
}

/// An n-dimensional array as .npy files hold it: a shape and C-order values of one dtype.
public struct NPYArray: Equatable, Sendable {
    /// The values, by dtype.
    public enum Values: Equatable, Sendable {
        case float32([Float])
        case int32([Int32])
        case uint8([UInt8])
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

    /// The float32 values, or nil for another dtype.
    public var floats: [Float]? { if case let .float32(v) = values { return v } else { return nil } }
    /// The int32 values, or nil.
    public var int32: [Int32]? { if case let .int32(v) = values { return v } else { return nil } }
    /// The uint8 values, or nil.
    public var uint8: [UInt8]? { if case let .uint8(v) = values { return v } else { return nil } }

    /// The dtype descriptor ("<f4", "<i4", "|u1").
    public var descr: String {
        switch values {
        case .float32: return "<f4"
        case .int32: return "<i4"
        case .uint8: return "|u1"
        }
    }

    var itemSize: Int { descr == "|u1" ? 1 : 4 }
    var count: Int {
        switch values {
        case let .float32(v): return v.count
        case let .int32(v): return v.count
        case let .uint8(v): return v.count
        }
    }

    /// Reads `path` (v1.0, v2.0 or v3.0; '<f4', '<i4' or '|u1'; C order).
    public static func read(path: String) throws -> NPYArray {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw NPYError.unreadable(file: path, message: error.localizedDescription)
        }
        return try parse(data, file: path)
    }

    /// Parses .npy bytes (`file` names them in errors).
    public static func parse(_ data: Data, file: String) throws -> NPYArray {
        let bytes = [UInt8](data)
        func bad(_ m: String) -> NPYError { .badFormat(file: file, message: m) }
        let head = try NPYHeader.parse(bytes, file: file)
        if head.fortranOrder { throw NPYError.unsupported(file: file, message: "Fortran order") }
        let descr = head.descr, shape = head.shape, start = head.dataOffset
        guard ["<f4", "<i4", "|u1", "<u1"].contains(descr) else {
            throw NPYError.unsupported(file: file, message: "dtype \(descr) (etok reads <f4, <i4 and |u1)")
        }
        let item = descr.hasSuffix("1") ? 1 : 4
        var count = 1
        for n in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: n)
            guard !overflow, product <= bytes.count else { throw bad("shape \(shape) does not fit the file") }
            count = product
        }
        guard bytes.count - start == count * item else {
            throw bad("data is \(bytes.count - start) bytes, shape \(shape) of \(descr) needs \(count * item)")
        }
        func load32(_ i: Int) -> UInt32 {
            let o = start + 4 * i
            return UInt32(bytes[o]) | UInt32(bytes[o + 1]) << 8 | UInt32(bytes[o + 2]) << 16 | UInt32(bytes[o + 3]) << 24
        }
        switch descr {
        case "<f4": return NPYArray(shape: shape, floats: (0..<count).map { Float(bitPattern: load32($0)) })
        case "<i4": return NPYArray(shape: shape, int32: (0..<count).map { Int32(bitPattern: load32($0)) })
        case "|u1", "<u1": return NPYArray(shape: shape, uint8: Array(bytes[start..<(start + count)]))
        default: throw NPYError.unsupported(file: file, message: "dtype \(descr) (etok reads <f4, <i4 and |u1)")
        }
    }

    /// The .npy v1.0 bytes of this array.
    public func encoded() -> Data {
        let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shapeText), }"
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var out = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
        let n = header.utf8.count
        out.append(contentsOf: [UInt8(n & 0xFF), UInt8(n >> 8)])
        out.append(contentsOf: Array(header.utf8))
        switch values {
        case let .float32(v): for x in v { withUnsafeBytes(of: x.bitPattern.littleEndian) { out.append(contentsOf: $0) } }
        case let .int32(v): for x in v { withUnsafeBytes(of: x.littleEndian) { out.append(contentsOf: $0) } }
        case let .uint8(v): out.append(contentsOf: v)
        }
        return out
    }

    /// Writes the array to `path` atomically (a temporary file renamed into place), so a
    /// failed write never leaves a partial file under the final name.
    public func write(path: String) throws {
        guard count == shape.reduce(1, *) else {
            throw NPYError.writeFailed(file: path, message: "\(count) values do not fill shape \(shape)")
        }
        do { try encoded().write(to: URL(fileURLWithPath: path), options: [.atomic]) } catch {
            throw NPYError.writeFailed(file: path, message: error.localizedDescription)
        }
    }
}

/// The header of an .npy file (format versions 1 to 3): the dtype descriptor, the shape, the
/// order, and where the data starts. What `NPYArray.parse` and etok import's wider reader share.
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
    public static func parse(_ bytes: [UInt8], file: String) throws -> NPYHeader {
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
