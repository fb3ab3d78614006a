// FSQ: the fast kernel against the double-precision reference on random input, and the facts
// the official definition implies (masked token index, code range).
import XCTest
@testable import EtokTensor

final class FSQKernelTests: XCTestCase {
    let levels = [8, 8, 8, 5, 5, 5]

    func testConstantsFollowTheOfficialDefinition() {
        let t = FSQLevel.table(levels: levels)
        XCTAssertEqual(t.map(\.basis), [1, 8, 64, 512, 2560, 12800])
        XCTAssertEqual(t.map(\.halfWidth), [4, 4, 4, 2, 2, 2])
        XCTAssertEqual(t[0].halfL, Float(7 * 0.999 / 2))
        XCTAssertEqual(t[0].offset, 0.5)
        XCTAssertEqual(t[3].offset, 0)
        XCTAssertEqual(t[3].shift, 0)
        XCTAssertEqual(Double(t[0].shift), tan(0.5 / (7 * 0.999 / 2)), accuracy: 1e-7)
    }

    func testZeroRowGetsTheMaskedIndex() {
        for k in Kernels.available + [Kernels.reference] {
            var codes = [Float](repeating: 9, count: 6)
            var idx: [Int32] = [0]
            k.fsq([Float](repeating: 0, count: 6), ldz: 6, rows: 1, levels: FSQLevel.table(levels: levels),
                  codes: &codes, ldc: 6, indices: &idx)
            XCTAssertEqual(idx, [32036], k.name)
            XCTAssertEqual(codes, [Float](repeating: 0, count: 6), k.name)
        }
    }

    func testFastFSQMatchesReferenceAwayFromRoundingTies() {
        var rng = SeededRandom(seed: 11)
        let rows = 500, dim = levels.count
        let table = FSQLevel.table(levels: levels)
        let z = rng.floats(rows * dim, -4, 4)
        var refCodes = [Float](repeating: 0, count: rows * dim), refIdx = [Int32](repeating: 0, count: rows)
        Kernels.reference.fsq(z, ldz: dim, rows: rows, levels: table, codes: &refCodes, ldc: dim, indices: &refIdx)
        var checked = 0
        for k in Kernels.available {
            var codes = [Float](repeating: 0, count: rows * dim), idx = [Int32](repeating: 0, count: rows)
            k.fsq(z, ldz: dim, rows: rows, levels: table, codes: &codes, ldc: dim, indices: &idx)
            for r in 0..<rows {
                // Skip rows where a bound value lies within 1e-5 of a .5 boundary (ties are a
                // matter of the last ulp of tanh, in any implementation).
                let nearTie = (0..<dim).contains { d in
                    let b = tanh(Double(z[r * dim + d]) + Double(table[d].shift)) * Double(table[d].halfL) - Double(table[d].offset)
                    return Swift.abs(b - b.rounded(.down) - 0.5) < 1e-5
                }
                if nearTie { continue }
                checked += 1
                XCTAssertEqual(idx[r], refIdx[r], "\(k.name) row \(r)")
                XCTAssertEqual(Array(codes[r * dim..<(r + 1) * dim]), Array(refCodes[r * dim..<(r + 1) * dim]),
                               "\(k.name) row \(r)")
            }
        }
        XCTAssertGreaterThan(checked, rows * Kernels.available.count * 9 / 10)
        // Codes lie in [-1, 1] and every digit is inside its level.
        XCTAssertTrue(refCodes.allSatisfy { $0 >= -1 && $0 <= 1 })
        XCTAssertTrue(refIdx.allSatisfy { $0 >= 0 && $0 < 64000 })
    }

    func testFSQHonoursRowStrides() {
        var rng = SeededRandom(seed: 12)
        let rows = 70, dim = 6, ldz = 9, ldc = 8
        let z = rng.floats(rows * ldz, -3, 3)
        let table = FSQLevel.table(levels: levels)
        var packed = [Float](repeating: 0, count: rows * dim)
        for r in 0..<rows { for d in 0..<dim { packed[r * dim + d] = z[r * ldz + d] } }
        var a = [Float](repeating: 0, count: rows * dim), ia = [Int32](repeating: 0, count: rows)
        var b = [Float](repeating: 7, count: rows * ldc), ib = [Int32](repeating: 0, count: rows)
        Kernels.best.fsq(packed, ldz: dim, rows: rows, levels: table, codes: &a, ldc: dim, indices: &ia)
        Kernels.best.fsq(z, ldz: ldz, rows: rows, levels: table, codes: &b, ldc: ldc, indices: &ib)
        XCTAssertEqual(ia, ib)
        for r in 0..<rows {
            XCTAssertEqual(Array(a[r * dim..<(r + 1) * dim]), Array(b[r * ldc..<r * ldc + dim]))
            XCTAssertEqual(b[r * ldc + dim], 7, "wrote past the codes row")
        }
    }
}
