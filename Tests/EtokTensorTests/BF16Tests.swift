// The bf16 path's kernels: rounding to bf16 against an independent nearest-even rule, the
// AVX512-BF16 GEMM against a float64 product of the bf16-rounded inputs within the float32
// accumulation bound, row independence, and attention over bf16 keys and values.
import CKernels
import Foundation
import XCTest
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

    /// The product's rows split over threads (GEMM.linear's `threads`) give the one-thread bits:
    /// a row's summation order depends only on k. Shapes where the split is uneven, where it is
    /// not used (too few rows) and where it accumulates.
    func testBF16GEMMGivesTheSameBitsOnEveryThreadCount() throws {
        try XCTSkipUnless(Precision.bf16Available, "no AVX512-BF16 on this CPU")
        var rng = SeededRandom(seed: 71)
        for (m, n, k) in [(300, 70, 129), (64, 33, 8), (31, 40, 17), (1000, 96, 64)] {
            let a = rng.floats(m * k), w = Matrix(rows: k, cols: n)
            for i in 0..<(k * n) { w.base[i] = rng.uniform(-1, 1) }
            let packed = LinearWeight(w, precision: .bf16), c0 = rng.floats(m * n)
            var one = c0
            GEMM.linear(a, ldx: k, rows: m, weight: packed, into: &one, ldy: n, accumulate: true, threads: 1)
            XCTAssertNotEqual(one, c0)
            for t in [2, 3, 7] {
                var many = c0
                GEMM.linear(a, ldx: k, rows: m, weight: packed, into: &many, ldy: n, accumulate: true, threads: t)
                XCTAssertEqual(many, one, "\(m)x\(n)x\(k): \(t) threads changed the bits")
            }
            let parts = GEMM.bf16RowParts(rows: m, threads: 3)
            XCTAssertEqual(parts.first?.lowerBound, 0)
            XCTAssertEqual(parts.last?.upperBound, m)
            XCTAssertEqual(parts.count, min(3, max(1, m / GEMM.bf16MinRowsPerThread)), "\(m) rows")
            for (x, y) in zip(parts, parts.dropFirst()) { XCTAssertEqual(x.upperBound, y.lowerBound); XCTAssertEqual(x.count % 8, 0) }
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

    /// Attention over bf16 keys and values (the bf16 path) against a float64 reference on the
    /// same bf16 keys and values and the float32 queries, within a bound from an error analysis.
    /// Per query row, head and output column d (u = 2^-8 bf16 rounding, γ_n = n·2^-24/(1 − n·2^-24)
    /// float32 accumulation of n terms):
    ///   logits: q is rounded to bf16 (relative u per element), products of bf16 values are exact
    ///     in float32 and summed over hd terms (γ_hd), then divided by √hd (2^-24):
    ///     |ŝ_j − s_j| ≤ e_j = ((u + γ_hd(1 + u)) Σ_e |q_e k_je|) / √hd + 2^-23 |s_j|;
    ///   softmax (float32): with E = max_j e_j every p_j moves by a factor within e^{±2E}, and the
    ///     float32 softmax adds (vis + 8)·2^-24 relative (sum of vis terms, exp to 2 ulp);
    ///   P is rounded to bf16 (u) and P·V summed in float32 over vis terms (γ_vis), so with
    ///     R = e^{2E}(1 + (vis + 8)·2^-24)(1 + u):
    ///     |ô_d − o_d| ≤ (R − 1 + γ_vis R) Σ_j p_j |v_jd|.
    /// Also: 1 and 3 threads and tiny score tiles (several heads and visibilities per slot, so the
    /// packed keys and values are reused and repacked) give identical bits; odd counts and an odd
    /// head size exercise the kernel's padding. A kernel that skips the 1/√hd scale, rounds
    /// nothing, or misplaces a key fails (the last checked by the bound's size, the middle below).
    func testBF16AttentionStaysWithinItsErrorBoundOfAFloat64Reference() throws {
        try XCTSkipUnless(Precision.bf16Available, "no AVX512-BF16 on this CPU")
        for (headDim, nctx, nown, seed) in [(128, 37, 29, UInt64(80)), (33, 0, 21, 81), (64, 64, 64, 82)] {
            var rng = SeededRandom(seed: seed)
            let heads = 3, width = heads * headDim
            // Realistic scales: query and key entries in ±2, so the scaled logits have a std of 4/3.
            let q = rng.floats(nown * width, -2, 2)
            let k = rng.floats((nctx + nown) * width, -2, 2).map(referenceBF16)
            let v = rng.floats((nctx + nown) * width).map(referenceBF16)
            var k16 = [UInt16](repeating: 0, count: k.count), v16 = k16
            BF16.round(k, into: &k16, count: k.count)
            BF16.round(v, into: &v16, count: v.count)
            let visible = (0..<nown).map { nctx + 1 + ($0 * 7) % nown }
            let u = 0x1p-8, u32 = 0x1p-24
            func gamma(_ n: Int) -> Double { Double(n) * u32 / (1 - Double(n) * u32) }
            let divisor = Double(Float(headDim).squareRoot())
            var want = [Double](repeating: 0, count: nown * width), bound = want
            for i in 0..<nown {
                for h in 0..<heads {
                    let vis = visible[i]
                    var s = [Double](repeating: 0, count: vis), e = s
                    for j in 0..<vis {
                        var dot = 0.0, abs = 0.0
                        for d in 0..<headDim {
                            let qd = Double(q[i * width + h * headDim + d]), kd = Double(k[j * width + h * headDim + d])
                            dot += qd * kd
                            abs += Swift.abs(qd * kd)
                        }
                        s[j] = dot / divisor
                        e[j] = (u + gamma(headDim) * (1 + u)) * abs / divisor + 2 * u32 * Swift.abs(s[j])
                    }
                    let m = s.max()!, ex = s.map { Foundation.exp($0 - m) }, sum = ex.reduce(0, +)
                    let r = Foundation.exp(2 * e.max()!) * (1 + Double(vis + 8) * u32) * (1 + u)
                    for d in 0..<headDim {
                        var o = 0.0, absO = 0.0
                        for j in 0..<vis {
                            let vj = Double(v[j * width + h * headDim + d])
                            o += ex[j] / sum * vj
                            absO += ex[j] / sum * Swift.abs(vj)
                        }
                        want[i * width + h * headDim + d] = o
                        bound[i * width + h * headDim + d] = (r - 1 + gamma(vis) * r) * absO + 1e-30
                    }
                }
            }
            var results: [[Float]] = []
            for (t, budget) in [(1, Attention.scoreTileBudget), (3, 3 * (nctx + nown))] {
                var out = [Float](repeating: 0, count: nown * width)
                k16.withUnsafeBufferPointer { kp in
                    v16.withUnsafeBufferPointer { vp in
                        let ctx = nctx == 0 ? nil : KeyValueSegment(bf16Keys: kp.baseAddress!, values: vp.baseAddress!, count: nctx, ld: width)
                        let own = KeyValueSegment(bf16Keys: kp.baseAddress! + nctx * width, values: vp.baseAddress! + nctx * width,
                                                  count: nown, ld: width)
                        Attention.attend(queries: q, ldq: width, queryCount: nown, heads: heads, headDim: headDim,
                                         context: ctx, own: own, visible: visible.map { Int32($0) }, output: &out, ldo: width,
                                         workspace: AttentionWorkspace(), threads: t, tileBudget: budget)
                    }
                }
                var worst = 0.0, largest = 0.0
                for i in 0..<out.count {
                    let err = Swift.abs(Double(out[i]) - want[i])
                    XCTAssertLessThanOrEqual(err, bound[i], "hd \(headDim), \(t) threads, [\(i)]: \(out[i]) want \(want[i])")
                    worst = max(worst, err / bound[i])
                    largest = max(largest, err)
                }
                // bf16 must really run: float32 attention would sit near 1e-7 of the reference.
                XCTAssertGreaterThan(largest, 1e-5, "hd \(headDim): no bf16 rounding visible (largest error \(largest))")
                results.append(out)
            }
            XCTAssertEqual(results[0], results[1], "hd \(headDim): thread count or tiling changed the bits")
        }
    }
}
