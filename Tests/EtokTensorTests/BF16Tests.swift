// The bf16 path's kernels: rounding to bf16 against an independent nearest-even rule, the
// AVX512-BF16 GEMM against a float64 product of the bf16-rounded inputs within the float32
// accumulation bound, row independence, and attention over bf16 keys and values.
import XCTest
import CKernels
@testable import EtokTensor

/// Independent bf16 rounding: the two bf16 neighbours of x (truncation and the next one up in
/// magnitude, 2^128 standing for the infinity above the largest), the nearer in double, ties to
/// the even one; NaN -> a NaN.
private func referenceBF16(_ x: Float) -> Float {
    if x.isNaN || x.isInfinite { return x }
    let bits = x.bitPattern & 0xFFFF_0000
    let lo = Float(bitPattern: bits), hi = Float(bitPattern: bits &+ 0x1_0000)
    let dhiValue = hi.isInfinite ? (hi < 0 ? -0x1p128 : 0x1p128) : Double(hi)
    let dlo = abs(Double(x) - Double(lo)), dhi = abs(dhiValue - Double(x))
    if dlo < dhi { return lo }
    if dhi < dlo { return hi }
    return (bits >> 16) & 1 == 0 ? lo : hi
}

final class BF16Tests: XCTestCase {
    func testRoundingIsNearestEvenIncludingSubnormalsInfinitiesAndNaN() {
        var rng = SeededRandom(seed: 51)
        var values: [Float] = [0, -0, 1, -1, .infinity, -.infinity, .greatestFiniteMagnitude, -.greatestFiniteMagnitude,
                               .leastNonzeroMagnitude, -.leastNonzeroMagnitude, .leastNormalMagnitude,
                               Float(bitPattern: 0x3F80_8000),  // 1 + 2^-8: a tie, rounds down to even 1
                               Float(bitPattern: 0x3F81_8000),  // a tie that rounds up to even
                               Float(bitPattern: 0x0000_8000), Float(bitPattern: 0x0001_8000),  // subnormal ties
                               Float(bitPattern: 0x007F_FFFF),  // largest subnormal: rounds up to the smallest normal
                               Float(bitPattern: 0x7F7F_8000)]  // rounds to +Inf
        for _ in 0..<5000 { values.append(Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()))) }
        values = values.filter { !$0.isNaN }
        var packed = [UInt16](repeating: 0, count: values.count)
        BF16.round(values, into: &packed, count: values.count)
        for (x, b) in zip(values, packed) {
            let want = referenceBF16(x)
            XCTAssertEqual(BF16.float(b).bitPattern, want.bitPattern, "bf16(\(x)) vector")
            XCTAssertEqual(BF16.round(x), b, "scalar and vector rounding differ for \(x)")
        }
        XCTAssertEqual(BF16.round(Float(bitPattern: 0x3F80_8000)), 0x3F80)
        XCTAssertEqual(BF16.round(Float(bitPattern: 0x3F81_8000)), 0x3F82)
        XCTAssertEqual(BF16.round(Float(bitPattern: 0x7F7F_8000)), 0x7F80)
        for nan in [Float.nan, -Float.nan, Float(bitPattern: 0x7F80_0001), Float(bitPattern: 0xFF80_0001)] {
            var one = [UInt16](repeating: 0, count: 17)
            BF16.round([Float](repeating: nan, count: 17), into: &one, count: 17)
            for b in one + [BF16.round(nan)] {
                XCTAssertTrue(BF16.float(b).isNaN, "NaN \(nan.bitPattern) must stay NaN (got \(b))")
                XCTAssertEqual(b >> 15, UInt16(nan.bitPattern >> 31), "NaN keeps its sign")
            }
        }
        var wide = [Float](repeating: 0, count: packed.count)
        BF16.widen(packed, into: &wide, count: packed.count)
        for (b, w) in zip(packed, wide) { XCTAssertEqual(w.bitPattern, UInt32(b) << 16) }
    }

    /// |computed − exact| ≤ γ_{k+2} · Σ|a||w| (+ |c0| u for the accumulate add) for products of
    /// bf16 values (exact in float32) summed in float32 over k terms in any order, pairs fused
    /// or not; γ_n = n u / (1 − n u), u = 2^-24.
    private func checkGEMM(m: Int, n: Int, k: Int, lda: Int, ldc: Int, accumulate: Bool, seed: UInt64) throws {
        var rng = SeededRandom(seed: seed)
        let a = rng.floats(m * lda, -2, 2), w = rng.floats(k * n, -1, 1)
        let aDense = (0..<m).flatMap { i in a[(i * lda)..<(i * lda + k)] }
        let want = GEMM.naiveBF16(m: m, n: n, k: k, a: aDense, b: w, round: referenceBF16)
        let absSum = GEMM.naiveBF16(m: m, n: n, k: k, a: aDense.map(abs), b: w.map(abs), round: referenceBF16)
        let matrix = Matrix(rows: k, cols: n)
        for i in 0..<(k * n) { matrix.base[i] = w[i] }
        let packed = LinearWeight(matrix, precision: .bf16)
        let c0 = rng.floats(m * ldc)
        var c = c0
        GEMM.linear(a, ldx: lda, rows: m, weight: packed, into: &c, ldy: ldc, accumulate: accumulate)
        let u = 0x1p-24, kk = Double(k + 2), gamma = kk * u / (1 - kk * u)
        for i in 0..<m {
            for j in 0..<n {
                let base = accumulate ? Double(c0[i * ldc + j]) : 0
                let exact = want[i * n + j] + base
                let bound = gamma * absSum[i * n + j] + 2 * u * abs(exact) + 1e-30
                let got = Double(c[i * ldc + j])
                XCTAssertLessThanOrEqual(abs(got - exact), bound, "\(m)x\(n)x\(k) [\(i),\(j)] got \(got) want \(exact)")
            }
            for j in n..<ldc { XCTAssertEqual(c[i * ldc + j], c0[i * ldc + j], "padding column \(j) touched") }
        }
    }

    func testBF16GEMMMatchesFloat64ReferenceOnOddShapes() throws {
        try XCTSkipUnless(Precision.bf16Available, "no AVX512-BF16 on this CPU")
        var seed: UInt64 = 60
        for (m, n, k) in [(1, 1, 1), (1, 33, 1), (3, 5, 7), (9, 31, 2), (17, 65, 9), (8, 32, 64), (23, 40, 130), (1, 100, 257)] {
            for accumulate in [false, true] {
                seed += 1
                try checkGEMM(m: m, n: n, k: k, lda: k + 3, ldc: n + 2, accumulate: accumulate, seed: seed)
            }
        }
    }

    func testBF16GEMMRowBitsDoNotDependOnRowCountOrPosition() throws {
        try XCTSkipUnless(Precision.bf16Available, "no AVX512-BF16 on this CPU")
        var rng = SeededRandom(seed: 70)
        let m = 37, n = 45, k = 77
        let a = rng.floats(m * k), w = Matrix(rows: k, cols: n)
        for i in 0..<(k * n) { w.base[i] = rng.uniform(-1, 1) }
        let packed = LinearWeight(w, precision: .bf16)
        var all = [Float](repeating: 0, count: m * n)
        GEMM.linear(a, ldx: k, rows: m, weight: packed, into: &all, ldy: n)
        for start in [0, 5, 20, 36] {
            for rows in [1, 3, 9] where start + rows <= m {
                var part = [Float](repeating: 0, count: rows * n)
                a.withUnsafeBufferPointer { ap in
                    GEMM.linear(ap.baseAddress! + start * k, ldx: k, rows: rows, weight: packed, into: &part, ldy: n)
                }
                XCTAssertEqual(part, Array(all[(start * n)..<((start + rows) * n)]), "rows \(start)+\(rows)")
            }
        }
    }

    func testBF16IsRefusedWhenTheISAIsLowered() {
        let before = getenv("ETOK_CKERNELS_ISA").map { String(cString: $0) }
        defer { if let before { setenv("ETOK_CKERNELS_ISA", before, 1) } else { unsetenv("ETOK_CKERNELS_ISA") } }
        for level in ["avx512", "avx2", "baseline"] {
            setenv("ETOK_CKERNELS_ISA", level, 1)
            XCTAssertFalse(Precision.bf16Available, "ETOK_CKERNELS_ISA=\(level) must forbid bf16")
        }
        unsetenv("ETOK_CKERNELS_ISA")
        XCTAssertEqual(Precision.bf16Available, CPUFeatures.current.avx512bf16 && CPUFeatures.current.avx512)
    }

    /// bf16 keys and values are widened exactly, so attention over them equals float32 attention
    /// over the same (rounded) values; and a bf16 context plus bf16 own rows equals the reference.
    func testAttentionOverBF16SegmentsMatchesNaiveOnRoundedValues() {
        var rng = SeededRandom(seed: 80)
        let heads = 2, headDim = 16, width = heads * headDim, nctx = 11, nown = 6, threads = [1, 3]
        let q = rng.floats(nown * width, -2, 2)
        let k = rng.floats((nctx + nown) * width, -2, 2).map(referenceBF16)
        let v = rng.floats((nctx + nown) * width).map(referenceBF16)
        var k16 = [UInt16](repeating: 0, count: k.count), v16 = k16
        BF16.round(k, into: &k16, count: k.count)
        BF16.round(v, into: &v16, count: v.count)
        let visible = (0..<nown).map { nctx + 1 + ($0 * 2) % nown }
        let want = Attention.naive(queries: q, keys: Array(k), values: Array(v), queryCount: nown, keyCount: nctx + nown,
                                   heads: heads, headDim: headDim, visible: visible)
        var results: [[Float]] = []
        for t in threads {
            var out = [Float](repeating: 0, count: nown * width)
            k16.withUnsafeBufferPointer { kp in
                v16.withUnsafeBufferPointer { vp in
                    let ctx = KeyValueSegment(bf16Keys: kp.baseAddress!, values: vp.baseAddress!, count: nctx, ld: width)
                    let own = KeyValueSegment(bf16Keys: kp.baseAddress! + nctx * width, values: vp.baseAddress! + nctx * width,
                                              count: nown, ld: width)
                    Attention.attend(queries: q, ldq: width, queryCount: nown, heads: heads, headDim: headDim,
                                     context: ctx, own: own, visible: visible.map { Int32($0) }, output: &out, ldo: width,
                                     workspace: AttentionWorkspace(), threads: t, tileBudget: 20)
                }
            }
            assertClose(out, want, rel: 1e-5, abs: 1e-6, "bf16-segment attention, \(t) threads")
            results.append(out)
        }
        XCTAssertEqual(results[0], results[1], "thread count changed the bits")
    }
}
