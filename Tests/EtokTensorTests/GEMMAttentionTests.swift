// sgemm against a naive loop, and attention (two segments, per-query visible prefixes)
// against the naive triple loop with the official masking.
import XCTest
@testable import EtokTensor

final class GEMMAttentionTests: XCTestCase {
    func testGEMMMatchesNaiveWithStridesTransposeAndAccumulate() {
        var rng = SeededRandom(seed: 21)
        for (m, n, k) in [(1, 1, 1), (3, 5, 7), (17, 33, 9), (64, 48, 130)] {
            for transposeB in [false, true] {
                let lda = k + 2, ldb = (transposeB ? k : n) + 1, ldc = n + 3
                let a = rng.floats(m * lda), b = rng.floats((transposeB ? n : k) * ldb)
                let want = GEMM.naive(m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, transposeB: transposeB)
                let c0 = rng.floats(m * ldc)
                var c = c0
                GEMM.multiply(m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, transposeB: transposeB,
                              c: &c, ldc: ldc, beta: 1)
                var got = [Float](), expect = [Float]()
                for i in 0..<m {
                    for j in 0..<n { got.append(c[i * ldc + j]); expect.append(want[i * n + j] + c0[i * ldc + j]) }
                    for j in n..<ldc { XCTAssertEqual(c[i * ldc + j], c0[i * ldc + j], "padding touched") }
                }
                assertClose(got, expect, rel: 1e-5, abs: 1e-5, "gemm \(m)x\(n)x\(k) t=\(transposeB)")
            }
        }
    }

    func testLinearIsXTimesKernelStoredInOut() {
        let w = Matrix(rows: 2, cols: 3)
        for (i, v) in [Float(1), 2, 3, 4, 5, 6].enumerated() { w.base[i] = v }  // [[1,2,3],[4,5,6]]
        let x: [Float] = [1, 10]
        var y = [Float](repeating: 0, count: 3)
        GEMM.linear(x, ldx: 2, rows: 1, weight: w, into: &y, ldy: 3)
        XCTAssertEqual(y, [41, 52, 63])
    }

    func testAttentionMatchesNaiveForBlockCausalVisibility() {
        var rng = SeededRandom(seed: 22)
        let heads = 3, headDim = 8, width = heads * headDim, block = 5, blocks = 3
        let n = block * blocks
        let q = rng.floats(n * width, -2, 2), k = rng.floats(n * width, -2, 2), v = rng.floats(n * width)
        let visible = (0..<n).map { ($0 / block + 1) * block }
        let want = Attention.naive(queries: q, keys: k, values: v, queryCount: n, keyCount: n,
                                   heads: heads, headDim: headDim, visible: visible)
        var out = [Float](repeating: 0, count: n * width)
        let vis32 = visible.map { Int32($0) }
        k.withUnsafeBufferPointer { kp in
            v.withUnsafeBufferPointer { vp in
                Attention.attend(queries: q, ldq: width, queryCount: n, heads: heads, headDim: headDim,
                                 context: nil,
                                 own: KeyValueSegment(keys: kp.baseAddress!, values: vp.baseAddress!, count: n, ld: width),
                                 visible: vis32, output: &out, ldo: width, workspace: AttentionWorkspace())
            }
        }
        assertClose(out, want, rel: 1e-5, abs: 1e-6, "block-causal attention")
    }

    func testAttentionWithContextSegmentAndIrregularPrefixesMatchesNaive() {
        var rng = SeededRandom(seed: 23)
        let heads = 2, headDim = 16, width = heads * headDim
        let nctx = 11, nown = 7
        // Own block's Q|K|V fused in one matrix (ld 3·width), as the model stores it.
        let qkv = rng.floats(nown * 3 * width, -2, 2)
        let kctx = rng.floats(nctx * width, -2, 2), vctx = rng.floats(nctx * width)
        let visible = [18, 18, 3, 12, 12, 1, 18]
        var q = [Float](), kAll = kctx, vAll = vctx
        for r in 0..<nown {
            let row: Int = r * 3 * width
            q += qkv[row..<(row + width)]
            kAll += qkv[(row + width)..<(row + 2 * width)]
            vAll += qkv[(row + 2 * width)..<(row + 3 * width)]
        }
        let want = Attention.naive(queries: q, keys: kAll, values: vAll, queryCount: nown, keyCount: nctx + nown,
                                   heads: heads, headDim: headDim, visible: visible)
        var out = [Float](repeating: 0, count: nown * width)
        let vis32 = visible.map { Int32($0) }
        qkv.withUnsafeBufferPointer { p in
            kctx.withUnsafeBufferPointer { kc in
                vctx.withUnsafeBufferPointer { vc in
                    let base = p.baseAddress!
                    Attention.attend(queries: base, ldq: 3 * width, queryCount: nown, heads: heads, headDim: headDim,
                                     context: KeyValueSegment(keys: kc.baseAddress!, values: vc.baseAddress!, count: nctx, ld: width),
                                     own: KeyValueSegment(keys: base + width, values: base + 2 * width, count: nown, ld: 3 * width),
                                     visible: vis32, output: &out, ldo: width, workspace: AttentionWorkspace())
                }
            }
        }
        assertClose(out, want, rel: 1e-5, abs: 1e-6, "cached attention")
    }

    /// Query tiles and threads (issue 15): the logits held at once are bounded by the tile budget
    /// per thread, not queries × keys × heads; tiled and threaded results agree with the naive
    /// double loop (same tolerance as above: each output is a convex combination of values,
    /// rounded through fp32 logits, exp and two GEMMs), and the thread count never changes a bit.
    func testAttentionTilesQueryRowsWithBoundedScoresAndThreadIndependentBits() {
        var rng = SeededRandom(seed: 24)
        let heads = 4, headDim = 8, width = heads * headDim, block = 13, blocks = 3
        let n = block * blocks
        let q = rng.floats(n * width, -2, 2), k = rng.floats(n * width, -2, 2), v = rng.floats(n * width)
        let visible = (0..<n).map { ($0 / block + 1) * block }
        let want = Attention.naive(queries: q, keys: k, values: v, queryCount: n, keyCount: n,
                                   heads: heads, headDim: headDim, visible: visible)
        let vis32 = visible.map { Int32($0) }
        let budget = 4 * n  // 4 rows of the widest run per tile: runs split into 4, 4, 4, 1 rows
        func run(threads: Int, budget: Int) -> ([Float], Int) {
            var out = [Float](repeating: 0, count: n * width)
            let ws = AttentionWorkspace()
            k.withUnsafeBufferPointer { kp in
                v.withUnsafeBufferPointer { vp in
                    Attention.attend(queries: q, ldq: width, queryCount: n, heads: heads, headDim: headDim,
                                     context: nil,
                                     own: KeyValueSegment(keys: kp.baseAddress!, values: vp.baseAddress!, count: n, ld: width),
                                     visible: vis32, output: &out, ldo: width, workspace: ws, threads: threads,
                                     tileBudget: budget)
                }
            }
            return (out, ws.floatCount)
        }
        let (whole, wholeScores) = run(threads: 1, budget: Attention.scoreTileBudget)
        XCTAssertEqual(wholeScores, block * n, "an untiled run holds one head's logits for its widest run of queries")
        let (tiled, tiledScores) = run(threads: 1, budget: budget)
        XCTAssertLessThanOrEqual(tiledScores, budget, "one tile of logits, not rows × keys")
        assertClose(tiled, want, rel: 1e-5, abs: 1e-6, "tiled attention")
        assertClose(whole, want, rel: 1e-5, abs: 1e-6, "untiled attention")
        for threads in [2, 3, 8] {
            let (out, scores) = run(threads: threads, budget: budget)
            XCTAssertEqual(bits(out), bits(tiled), "\(threads) threads change no bit")
            XCTAssertLessThanOrEqual(scores, threads * budget, "one tile per thread")
        }
        XCTAssertEqual(Attention.tileRows(visible: 16384), 256, "the 200M model's 4-block context: 256-row tiles")
        XCTAssertGreaterThanOrEqual(Attention.tileRows(visible: 1024), 256, "the default model's blocks are one tile")
    }

    func testThreadPolicySetsOpenBLASThreadCount() {
        let before = BLASThreads.current
        BLASThreads.configure(threads: 1)
        XCTAssertEqual(BLASThreads.current, 1)
        BLASThreads.configure(threads: before)
        XCTAssertEqual(BLASThreads.current, before)
        XCTAssertGreaterThanOrEqual(BLASThreads.defaultCount, 1)
    }
}
