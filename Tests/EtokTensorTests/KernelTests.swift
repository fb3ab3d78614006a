// Every fast kernel path this CPU runs against the plain double-precision reference, and the
// paths against each other (they must be bit-identical: see ckernels.h).
import XCTest
@testable import EtokTensor

final class KernelTests: XCTestCase {
    let lengths = [1, 5, 16, 17, 31, 32, 33, 48, 100, 256, 1000]

    func testDispatcherOffersBaselineAndChoosesAnAvailablePath() {
        let names = Kernels.available.map(\.name)
        XCTAssertEqual(names.first, "baseline")
        XCTAssertTrue(names.contains(Kernels.best.name), "best \(Kernels.best.name) not in \(names)")
        XCTAssertEqual(Kernels.reference.name, "reference")
    }

    func testRMSNormMatchesReferenceOnEveryPath() {
        var rng = SeededRandom(seed: 1)
        for n in lengths {
            let rows = 3, ld = n + 3
            let x = rng.floats(rows * ld, -3, 3), w = rng.floats(n, 0.5, 1.5)
            let want = run(.reference, x: x, ld: ld, rows: rows, n: n, w: w)
            for k in Kernels.available {
                assertClose(run(k, x: x, ld: ld, rows: rows, n: n, w: w), want, rel: 1e-6, abs: 1e-7,
                            "rmsnorm \(k.name) n=\(n)")
            }
        }
        func run(_ k: Kernels, x: [Float], ld: Int, rows: Int, n: Int, w: [Float]) -> [Float] {
            var y = [Float](repeating: 0, count: rows * n)
            k.rmsNormRows(x, ldx: ld, &y, ldy: n, rows: rows, n: n, weight: w, eps: 1e-6)
            return y
        }
    }

    func testRMSNormInPlaceEqualsOutOfPlace() {
        var rng = SeededRandom(seed: 2)
        let n = 40
        var x = rng.floats(2 * n)
        let w = rng.floats(n)
        var y = [Float](repeating: 0, count: 2 * n)
        Kernels.best.rmsNormRows(x, ldx: n, &y, ldy: n, rows: 2, n: n, weight: w, eps: 1e-5)
        x.withUnsafeMutableBufferPointer { p in
            Kernels.best.rmsNormRows(p.baseAddress!, ldx: n, p.baseAddress!, ldy: n, rows: 2, n: n,
                                     weight: w, eps: 1e-5)
        }
        XCTAssertEqual(bits(x), bits(y))
    }

    func testRoPEMatchesReferenceOnEveryPath() {
        var rng = SeededRandom(seed: 3)
        for headDim in [2, 6, 16, 32, 64, 72] {
            let heads = 3, rows = 5, width = heads * headDim, ld = width + 2
            let table = RoPETable(positions: 40, headDim: headDim, theta: 10000)
            let x = rng.floats(rows * ld, -2, 2)
            let pos0 = 30
            func run(_ k: Kernels) -> [Float] {
                var y = x
                k.ropeRows(&y, ldx: ld, rows: rows, heads: heads, headDim: headDim,
                           cos2: table.cos2.base + pos0 * headDim, sin2: table.sin2.base + pos0 * headDim,
                           ldt: headDim)
                return y
            }
            let want = run(.reference)
            for k in Kernels.available {
                assertClose(run(k), want, rel: 1e-6, abs: 1e-7, "rope \(k.name) hd=\(headDim)")
            }
        }
    }

    func testRoPERotatesPairsByPositionTimesFrequency() {
        // Independent of the kernels' table layout: rotate (1, 0) and read back (cos, sin).
        let headDim = 8
        let table = RoPETable(positions: 12, headDim: headDim, theta: 500)
        for p in [0, 1, 11] {
            var x = [Float](repeating: 0, count: headDim)
            for i in 0..<headDim / 2 { x[2 * i] = 1 }
            Kernels.best.ropeRows(&x, ldx: headDim, rows: 1, heads: 1, headDim: headDim,
                                  cos2: table.cos2.base + p * headDim, sin2: table.sin2.base + p * headDim,
                                  ldt: headDim)
            for i in 0..<headDim / 2 {
                let angle = Double(p) * pow(500.0, -2.0 * Double(i) / Double(headDim))
                XCTAssertEqual(Double(x[2 * i]), cos(angle), accuracy: 1e-6)
                XCTAssertEqual(Double(x[2 * i + 1]), sin(angle), accuracy: 1e-6)
            }
        }
    }

    func testSiLUMulMatchesReferenceOnEveryPath() {
        var rng = SeededRandom(seed: 4)
        for n in lengths {
            let rows = 2, ld = 2 * n
            var gu = rng.floats(rows * ld, -12, 12)
            gu[0] = -120; gu[ld - 1] = 95  // exp overflow and underflow inside silu
            func run(_ k: Kernels) -> [Float] {
                var y = [Float](repeating: 0, count: rows * n)
                gu.withUnsafeBufferPointer { p in
                    k.siluMulRows(gate: p.baseAddress!, up: p.baseAddress! + n, ldin: ld, &y, ldy: n,
                                  rows: rows, n: n)
                }
                return y
            }
            let want = run(.reference)
            for k in Kernels.available { assertClose(run(k), want, rel: 1e-6, abs: 1e-30, "silu \(k.name) n=\(n)") }
        }
    }

    func testSoftmaxMatchesReferenceOnEveryPathIncludingMaskedLogits() {
        var rng = SeededRandom(seed: 5)
        for n in lengths {
            let rows = 3, ld = n + 1
            var x = rng.floats(rows * ld, -30, 30)
            x[0] = -Float.greatestFiniteMagnitude  // a masked logit
            if n > 2 { x[ld + 1] = 80; x[ld + 2] = -100 }
            func run(_ k: Kernels) -> [Float] {
                var y = x
                k.softmaxRows(&y, ldx: ld, rows: rows, n: n, divisor: Float(8).squareRoot())
                return y
            }
            let want = run(.reference)
            for k in Kernels.available {
                assertClose(run(k), want, rel: 2e-6, abs: 1e-37, "softmax \(k.name) n=\(n)")
                let y = run(k)
                for r in 0..<rows {
                    let s = (0..<n).reduce(Float(0)) { $0 + y[r * ld + $1] }
                    XCTAssertEqual(s, 1, accuracy: 1e-5, "row sum \(k.name)")
                    XCTAssertEqual(y[r * ld + n], x[r * ld + n], "softmax wrote past the row")
                }
            }
        }
    }

    func testSoftmaxWithPowerOfTwoDivisorEqualsDividingFirst() {
        // sqrt(64) = 8: the kernel multiplies by 1/8, which must give the very same bits.
        var rng = SeededRandom(seed: 8)
        let n = 70
        let x = rng.floats(2 * n, -50, 50)
        for k in Kernels.available {
            for divisor: Float in [8, 0.25, 4096] {
                var a = x, b = x.map { $0 / divisor }
                k.softmaxRows(&a, ldx: n, rows: 2, n: n, divisor: divisor)
                k.softmaxRows(&b, ldx: n, rows: 2, n: n, divisor: 1)
                XCTAssertEqual(bits(a), bits(b), "\(k.name) divisor \(divisor)")
                var want = x
                Kernels.reference.softmaxRows(&want, ldx: n, rows: 2, n: n, divisor: divisor)
                assertClose(a, want, rel: 2e-6, abs: 1e-37, "softmax \(k.name) divisor \(divisor)")
            }
        }
    }

    func testTanhIsAccurateOverTheWholeRange() {
        var xs: [Float] = [0, -0.0, 1e-30, -1e-20, 0.6249999, 0.625, 0.6250001, 9, 10, 44, 88, 100, -100,
                           .greatestFiniteMagnitude, -.infinity, .infinity]
        var v: Float = 1e-6
        while v < 20 { xs.append(v); xs.append(-v); v *= 1.0007 }
        for k in Kernels.available {
            var y = [Float](repeating: 0, count: xs.count)
            k.tanh(xs, &y, n: xs.count)
            for (x, t) in zip(xs, y) {
                let want = Foundation.tanh(Double(x))
                let err = Swift.abs(Double(t) - want)
                XCTAssertLessThanOrEqual(err, 3e-7 * Swift.abs(want) + 1e-45, "\(k.name) tanh(\(x)) = \(t), want \(want)")
            }
        }
    }

    func testFastPathsAreBitIdenticalToEachOther() throws {
        let paths = Kernels.available
        try XCTSkipIf(paths.count < 2, "only one path on this CPU")
        var rng = SeededRandom(seed: 6)
        let n = 77, rows = 4
        let x = rng.floats(rows * n, -20, 20), w = rng.floats(n, 0, 2)
        let table = RoPETable(positions: 8, headDim: 22, theta: 10000)
        var outputs: [[UInt32]] = []
        for k in paths {
            var all: [Float] = []
            var y = [Float](repeating: 0, count: rows * n)
            k.rmsNormRows(x, ldx: n, &y, ldy: n, rows: rows, n: n, weight: w, eps: 1e-6); all += y
            y = x; k.softmaxRows(&y, ldx: n, rows: rows, n: n, divisor: 3); all += y
            k.tanh(x, &y, n: x.count); all += y
            x.withUnsafeBufferPointer { p in
                k.siluMulRows(gate: p.baseAddress!, up: p.baseAddress! + 1, ldin: n, &y, ldy: n, rows: rows, n: n - 1)
            }
            all += y
            y = Array(x[0..<(4 * 22)]) + [Float](repeating: 0, count: x.count - 88)
            k.ropeRows(&y, ldx: 22, rows: 4, heads: 1, headDim: 22, cos2: table.cos2.base, sin2: table.sin2.base, ldt: 22)
            all += y
            y = x; k.add(&y, w, n: n); all += y
            outputs.append(bits(all))
        }
        for (k, out) in zip(paths, outputs).dropFirst() {
            XCTAssertEqual(out, outputs[0], "\(k.name) differs from \(paths[0].name)")
        }
    }

    func testAddMatchesReference() {
        var rng = SeededRandom(seed: 7)
        for n in lengths {
            let a = rng.floats(n), b = rng.floats(n)
            var want = a
            Kernels.reference.add(&want, b, n: n)
            for k in Kernels.available {
                var y = a
                k.add(&y, b, n: n)
                XCTAssertEqual(bits(y), bits(want), "add \(k.name) n=\(n)")
            }
        }
    }
}
