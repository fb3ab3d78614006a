// FloatBuffer: zeroed, aligned, and (issue 15) large buffers cost memory only where written, so
// context caches sized for the whole context and pass workspaces do not count as resident.
import EtokTensor
import Foundation
import XCTest

final class FloatBufferTests: XCTestCase {
    /// Resident set of this process in MiB (VmRSS).
    func residentMiB() throws -> Double {
        let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
        let line = try XCTUnwrap(status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") })
        return try XCTUnwrap(Double(line.split(separator: " ").dropFirst().first ?? "")) / 1024
    }

    func testLargeBufferIsZeroAndResidentOnlyWhereWritten() throws {
        let before = try residentMiB()
        let count = 64 << 20  // 256 MiB of floats
        let buffer = FloatBuffer(count: count)
        XCTAssertEqual(Int(bitPattern: buffer.base) % 64, 0, "64-byte aligned")
        for i in stride(from: 0, to: count, by: count / 16) { XCTAssertEqual(buffer.base[i], 0) }
        let allocated = try residentMiB()
        XCTAssertLessThan(allocated - before, 32, "allocating 256 MiB made nothing resident")
        (buffer.base + count / 2).update(repeating: 1, count: 4 << 20)  // write 16 MiB
        let written = try residentMiB()
        XCTAssertGreaterThan(written - allocated, 12, "written pages are resident")
        XCTAssertLessThan(written - before, 64, "and only those")
        XCTAssertEqual(buffer.base[count / 2], 1)
        XCTAssertEqual(buffer.base[count - 1], 0)
        buffer.zero()
        XCTAssertEqual(buffer.base[count / 2], 0)
    }

    func testSmallBufferIsZeroAndAligned() {
        for count in [0, 1, 17, 1000] {
            let buffer = FloatBuffer(count: count)
            XCTAssertEqual(Int(bitPattern: buffer.base) % 64, 0)
            XCTAssertTrue((0..<count).allSatisfy { buffer.base[$0] == 0 })
        }
    }
}
