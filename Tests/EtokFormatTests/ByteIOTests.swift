import XCTest
@testable import EtokFormat

final class ByteIOTests: XCTestCase {
    func testValuesAreLittleEndianAndRoundTrip() {
        var w = ByteWriter()
        w.u16(0x0102)
        w.u32(0x0304_0506)
        w.u64(0x0708_090A_0B0C_0D0E)
        w.i64(-2)
        w.f32(-1.5)
        XCTAssertEqual(Array(w.bytes[0..<6]), [0x02, 0x01, 0x06, 0x05, 0x04, 0x03])
        XCTAssertEqual(Array(w.bytes[6..<14]), [0x0E, 0x0D, 0x0C, 0x0B, 0x0A, 0x09, 0x08, 0x07])
        var r = ByteReader(w.bytes)
        XCTAssertEqual(r.u16(), 0x0102)
        XCTAssertEqual(r.u32(), 0x0304_0506)
        XCTAssertEqual(r.u64(), 0x0708_090A_0B0C_0D0E)
        XCTAssertEqual(r.i64(), -2)
        XCTAssertEqual(r.f32(), -1.5)
        XCTAssertTrue(r.isExactlyAtEnd)
    }

    func testReadPastEndSetsStickyFlagAndReturnsZero() {
        var r = ByteReader([1, 2, 3])
        XCTAssertEqual(r.u16(), 0x0201)
        XCTAssertFalse(r.overrun)
        XCTAssertEqual(r.u32(), 0)  // only one byte left
        XCTAssertTrue(r.overrun)
        XCTAssertEqual(r.u8(), 0)  // stays failed even though a byte remains
        XCTAssertTrue(r.overrun)
        XCTAssertEqual(r.remaining, 0)
        XCTAssertFalse(r.isExactlyAtEnd)
    }

    func testNegativeAndHugeCountsOverrunInsteadOfTrapping() {
        var r = ByteReader([1, 2, 3])
        XCTAssertTrue(r.raw(-1).isEmpty)
        XCTAssertTrue(r.overrun)
        var r2 = ByteReader([1, 2, 3])
        r2.skip(Int.max)
        XCTAssertTrue(r2.overrun)
    }
}
