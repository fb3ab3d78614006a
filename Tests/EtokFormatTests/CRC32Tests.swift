import XCTest
@testable import EtokFormat

final class CRC32Tests: XCTestCase {
    /// A bit-at-a-time CRC-32 straight from the definition: the independent reference.
    private func bitwiseCRC(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes {
            c ^= UInt32(b)
            for _ in 0..<8 { c = (c >> 1) ^ (0xEDB8_8320 & (0 &- (c & 1))) }
        }
        return ~c
    }

    func testCheckValueMatchesSpec() {
        XCTAssertEqual(CRC32.checksum(Array("123456789".utf8)), 0xCBF4_3926)
    }

    func testKnownVectorsMatchZlib() {
        // Values from Python's zlib.crc32.
        XCTAssertEqual(CRC32.checksum([UInt8]()), 0)
        XCTAssertEqual(CRC32.checksum(Array("a".utf8)), 0xE8B7_BE43)
        XCTAssertEqual(CRC32.checksum(Array("abc".utf8)), 0x3524_41C2)
        XCTAssertEqual(CRC32.checksum(Array("The quick brown fox jumps over the lazy dog".utf8)), 0x414F_A339)
        let ramp = (0..<1024).map { UInt8($0 & 0xFF) }
        XCTAssertEqual(CRC32.checksum(ramp), 0xB70B_4C26)
    }

    func testTableCRCEqualsBitwiseReferenceOnRandomData() {
        var rng = SeededRandom(seed: 7)
        for length in [1, 2, 3, 15, 16, 17, 255, 1000, 4099] {
            let data = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
            XCTAssertEqual(CRC32.checksum(data), bitwiseCRC(data), "length \(length)")
        }
    }

    func testIncrementalUpdatesEqualOneShot() {
        var rng = SeededRandom(seed: 8)
        let data = (0..<777).map { _ in UInt8.random(in: 0...255, using: &rng) }
        var crc = CRC32()
        crc.update(data[0..<100])
        data[100..<500].withUnsafeBytes { crc.update($0) }
        crc.update(data[500...])
        XCTAssertEqual(crc.value, CRC32.checksum(data))
    }
}
