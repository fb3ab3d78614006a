// GEMM: the one place the engine calls OpenBLAS's sgemm, and the process-wide OpenBLAS thread
// policy. Every linear layer and both attention products go through `GEMM.multiply`.
//
// Layout: row-major float32 with explicit leading dimensions, so that one head's columns of a
// fused Q|K|V matrix are addressed in place (no copies). Dense kernels are stored (in, out) as
// the official checkpoints store them: y = x · W, W with `in` rows.
//
// Determinism: for a fixed (m, n, k), transposition and thread count, OpenBLAS computes each
// output element with the same summation order, so equal inputs give equal bits. A row's result
// CAN change with m (measured here on 0.3.21: small and odd shapes use other kernels), which is
// why the model keeps GEMM shapes fixed wherever bit-exact agreement matters (see EtokModel).
import CBLAS
import Foundation

/// Matrix multiplication on OpenBLAS (`cblas_sgemm`), row-major.
public enum GEMM {
    /// C[m×n] = alpha · A[m×k] · op(B) + beta · C, row-major. op(B) is B[k×n] (ldb ≥ n) or, with
    /// `transposeB`, Bᵀ where B is stored [n×k] (ldb ≥ k). Zero-sized products are no-ops
    /// (with m, n > 0 and k == 0, C becomes beta · C).
    ///
    /// Cost: 2·m·n·k flops on OpenBLAS's threads (see `BLASThreads`). The caller keeps the
    /// memory alive and sized; A and B must not overlap C.
    public static func multiply(m: Int, n: Int, k: Int,
                                a: UnsafePointer<Float>, lda: Int,
                                b: UnsafePointer<Float>, ldb: Int, transposeB: Bool = false,
                                c: UnsafeMutablePointer<Float>, ldc: Int,
                                alpha: Float = 1, beta: Float = 0) {
        guard m > 0, n > 0 else { return }
        if k == 0 {
            for r in 0..<m {
                let row = c + r * ldc
                for j in 0..<n { row[j] = beta == 0 ? 0 : beta * row[j] }
            }
            return
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb),
                    beta, c, Int32(ldc))
    }

    /// y[m×W.cols] = x[m×W.rows] · W (+ y when `accumulate`): a bias-free linear layer.
    public static func linear(_ x: UnsafePointer<Float>, ldx: Int, rows m: Int, weight: Matrix,
                              into y: UnsafeMutablePointer<Float>, ldy: Int, accumulate: Bool = false) {
        multiply(m: m, n: weight.cols, k: weight.rows, a: x, lda: ldx, b: weight.base, ldb: weight.cols,
                 c: y, ldc: ldy, beta: accumulate ? 1 : 0)
    }

    /// Reference C = A · op(B) with a plain triple loop in double (tests only).
    public static func naive(m: Int, n: Int, k: Int, a: [Float], lda: Int, b: [Float], ldb: Int,
                             transposeB: Bool = false) -> [Float] {
        var c = [Float](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var s = 0.0
                for p in 0..<k {
                    let bv = transposeB ? b[j * ldb + p] : b[p * ldb + j]
                    s += Double(a[i * lda + p]) * Double(bv)
                }
                c[i * n + j] = Float(s)
            }
        }
        return c
    }
}

/// The OpenBLAS thread policy: one explicit, process-wide thread count.
///
/// OpenBLAS keeps its own pool; left alone it uses every core and its idle workers spin. etok
/// sets the count explicitly (`configure`) so that BLAS threads do not pile on top of the
/// pipeline's own threads. The count is global process state: set it once at start-up, not
/// per call, and not concurrently with running GEMMs.
///
/// OPENBLAS_THREAD_TIMEOUT: after each threaded call OpenBLAS's workers busy-wait about
/// 2^n cycles (n = OPENBLAS_THREAD_TIMEOUT, clamped to 4...30; default 28, roughly 0.1 s)
/// before sleeping, which takes cores from other stages (decoding video, writing output)
/// between GEMMs. It is read once when the library initialises its threads, i.e. at process
/// load: it can only be set in the environment before etok starts (e.g.
/// `OPENBLAS_THREAD_TIMEOUT=4 etok ...`), never from inside the process. Results do not depend
/// on it; only CPU sharing does.
public enum BLASThreads {
    /// The thread count OpenBLAS uses now.
    public static var current: Int { Int(openblas_get_num_threads()) }

    /// The default policy: the number of active processors (respects CPU affinity limits
    /// as Foundation reports them), at least 1.
    public static var defaultCount: Int { max(1, ProcessInfo.processInfo.activeProcessorCount) }

    /// Sets OpenBLAS's thread count (clamped to at least 1). Call once, before any GEMM runs.
    public static func configure(threads: Int? = nil) {
        openblas_set_num_threads(Int32(max(1, threads ?? defaultCount)))
    }
}
