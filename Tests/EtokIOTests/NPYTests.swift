import EtokIO
import Foundation
import XCTest

final class NPYTests: XCTestCase {
    /// One array of every dtype the codec reads and writes; each keeps its dtype and bytes.
    static let arrays: [NPYArray] = [
        NPYArray(shape: [2, 3], floats: [1, -2, 3.5, 0, .infinity, -0.0]),
        NPYArray(shape: [4], int32: [0, -1, 32036, .max]),
        NPYArray(shape: [1, 2, 2, 3], uint8: Array(0..<12)),
        NPYArray(shape: [0, 5], floats: []),
        NPYArray(doubles: [0.04, -1.5, 1e300]),
        NPYArray(int64: [5, -2, .min]),
        NPYArray(shape: [2], values: .int8([-128, 127])),
        NPYArray(shape: [2], values: .int16([-3, 7])),
        NPYArray(shape: [1, 2], values: .uint16([0, 65535])),
        NPYArray(shape: [1], values: .uint32([4_000_000_000])),
        NPYArray(shape: [2], values: .uint64([1, .max])),
        NPYArray(shape: [1, 2], values: .float16Bits([0x3C00, 0xC100])),
    ]

    func testEveryDTypeRoundTripsThroughAFileAndAVersion2Header() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("etok-npy-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        for (i, a) in Self.arrays.enumerated() {
            let path = dir.appendingPathComponent("a\(i).npy").path
            try a.write(path: path, overwrite: false)
            XCTAssertEqual(try NPYArray.read(path: path), a)
            let bytes = a.encoded()
            let headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            XCTAssertEqual((10 + headerLength) % 64, 0, "header must pad to 64")
            let v2 = Array(bytes.prefix(6)) + [2, 0, UInt8(headerLength & 0xFF), UInt8(headerLength >> 8), 0, 0]
                + Array(bytes.suffix(from: 10))
            XCTAssertEqual(try NPYArray.parse(v2, file: "v2"), a)
        }
        XCTAssertEqual(NPYArray(shape: [2], values: .uint64([1, .max])).integers, [1, .max], "clamped to Int64")
        XCTAssertNil(NPYArray(doubles: [1]).integers)
    }

    /// The exact bytes NumPy writes for `numpy.save(f, numpy.array([1.5, -2], dtype='<f8'))`.
    func testHeaderIsNumPysOwn() {
        let bytes = NPYArray(doubles: [1.5, -2]).encoded()
        let header = String(decoding: bytes[10..<(bytes.count - 16)], as: UTF8.self)
        XCTAssertEqual(header, "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }"
                       + String(repeating: " ", count: 60) + "\n")
        XCTAssertEqual(Array(bytes.prefix(10)), [0x93] + Array("NUMPY".utf8) + [1, 0, 118, 0])
        XCTAssertEqual(Array(bytes.suffix(16)), [0, 0, 0, 0, 0, 0, 0xF8, 0x3F, 0, 0, 0, 0, 0, 0, 0, 0xC0])
    }

    func testMalformedArraysAreRefusedBeforeAnythingIsAllocated() {
        XCTAssertThrowsError(try NPYArray.parse(Array("nope".utf8), file: "n")) { XCTAssertTrue("\($0)".hasPrefix("n: ")) }
        var truncated = Self.arrays[0].encoded()
        truncated.removeLast()
        XCTAssertThrowsError(try NPYArray.parse(truncated, file: "t"))
        var big = [UInt8](NPYArray(shape: [4], int32: [0, 1, 2, 3]).encoded())
        let at = big.firstIndex(of: UInt8(ascii: "("))! + 1   // shape (4,) → (9,), a count the data cannot hold
        big[at] = UInt8(ascii: "9")
        XCTAssertThrowsError(try NPYArray.parse(big, file: "s")) { XCTAssertTrue("\($0)".contains("needs 36"), "\($0)") }
        var bigEndian = [UInt8](NPYArray(shape: [1], int32: [1]).encoded())
        bigEndian[bigEndian.firstIndex(of: UInt8(ascii: "<"))!] = UInt8(ascii: ">")
        XCTAssertThrowsError(try NPYArray.parse(bigEndian, file: "b")) { XCTAssertTrue("\($0)".contains(">i4"), "\($0)") }
        XCTAssertThrowsError(try NPYArray.read(path: "/nonexistent/x.npy")) {
            guard case .unreadable? = $0 as? NPYError else { return XCTFail("\($0)") }
        }
    }
}
