// BF16: etok's bf16 path in EtokTensor: which precision a model computes in, 16-bit storage
// (`BF16Buffer`), weights packed once for the AVX512-BF16 kernel (`PackedBF16Matrix`), and the
// one linear-layer weight type (`LinearWeight`) that holds either precision. The kernel itself
// is CKernels' bf16_gemm.c (layout and cost there); Debian's OpenBLAS has no sbgemm.
import CKernels
import Foundation

/// What a model's transformer stacks compute in.
///
/// - fp32: float32 weights, activations and KV caches; OpenBLAS sgemm. The reference.
/// - bf16: the stacks' linear layers with bf16 weights and bf16-rounded activations, float32
///   accumulation (AVX512-BF16, `ck_bf16_gemm`); keys and values cached in bf16, and attention's
///   two products on the same kernel (queries and probabilities rounded to bf16, float32
///   accumulation) around a float32 softmax. Embeddings, norms, the bottleneck's projections and
///   the output layer stay float32. Half the weights' and caches' memory.
public enum Precision: String, Sendable, CaseIterable, Codable {
    case fp32
    case bf16

    /// True when this CPU runs the bf16 kernel (AVX512-BF16; ETOK_CKERNELS_ISA may forbid it).
    public static var bf16Available: Bool { ck_bf16_gemm_available() != 0 }
}

/// An owned, 64-byte aligned, zero-initialised array of `count` bf16 values (raw UInt16 bits).
/// Large ones are lazy anonymous mappings, as `FloatBuffer`'s are (resident once written).
/// Ownership and threading as `FloatBuffer`.
public final class BF16Buffer {
    public let count: Int
    public let base: UnsafeMutablePointer<UInt16>
    private let storage: ZeroedStorage

    public init(count: Int) {
        precondition(count >= 0, "BF16Buffer: negative count")
        self.count = count
        storage = ZeroedStorage(bytes: max(count, 1) * 2)
        base = storage.raw.bindMemory(to: UInt16.self, capacity: max(count, 1))
    }

    deinit { storage.release() }
}

/// bf16 conversions (nearest-even on the bits; see ck_bf16.h).
public enum BF16 {
    public static func round(_ x: Float) -> UInt16 { ck_bf16_from_f32(x) }
    public static func float(_ b: UInt16) -> Float { ck_f32_from_bf16(b) }
    /// y[i] = bf16(x[i]), n values.
    public static func round(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<UInt16>, count n: Int) {
        ck_bf16_round_n(x, y, n)
    }
    /// y[i] = float(x[i]), n values.
    public static func widen(_ x: UnsafePointer<UInt16>, into y: UnsafeMutablePointer<Float>, count n: Int) {
        ck_f32_from_bf16_n(x, y, n)
    }
}

/// A dense kernel W (rows = in, cols = out) converted to bf16 and packed for `ck_bf16_gemm`
/// (32-column panels, k-pairs interleaved). Immutable; share across threads.
public final class PackedBF16Matrix: @unchecked Sendable {
    public let rows: Int
    public let cols: Int
    let storage: BF16Buffer

    /// Packs `matrix` (rounded to bf16 nearest-even). The float32 matrix can be freed after.
    public init(_ matrix: Matrix) {
        rows = matrix.rows
        cols = matrix.cols
        storage = BF16Buffer(count: ck_bf16_packed_count(rows, cols))
        ck_bf16_pack_b(matrix.base, cols, rows, cols, storage.base)
    }

    /// Bytes held.
    public var byteCount: Int { storage.count * 2 }
}

/// The weight of a linear layer in the precision the model computes in.
public enum LinearWeight: @unchecked Sendable {
    case fp32(Matrix)
    case bf16(PackedBF16Matrix)

    /// `matrix` as `precision` wants it (bf16: packed; the float32 one is not kept).
    public init(_ matrix: Matrix, precision: Precision) {
        switch precision {
        case .fp32: self = .fp32(matrix)
        case .bf16: self = .bf16(PackedBF16Matrix(matrix))
        }
    }

    public var rows: Int {
        switch self { case .fp32(let m): m.rows; case .bf16(let m): m.rows }
    }
    public var cols: Int {
        switch self { case .fp32(let m): m.cols; case .bf16(let m): m.cols }
    }
    /// Bytes of weights held.
    public var byteCount: Int {
        switch self { case .fp32(let m): m.rows * m.cols * 4; case .bf16(let m): m.byteCount }
    }
}

extension GEMM {
    /// y[m×W.cols] = x[m×W.rows] · W (+ y when `accumulate`) in W's precision: sgemm for fp32
    /// (on OpenBLAS's threads; `threads` is not used), the AVX512-BF16 kernel for bf16 (x rounded
    /// to bf16, float32 accumulation) with its rows split over up to `threads` threads. A row's
    /// bf16 bits depend only on the row and W (ck_bf16_gemm's summation order is fixed by k, never
    /// by m or the row's position), so the split, and the thread count, change no bit. The caller
    /// checked `Precision.bf16Available` before packing bf16 weights.
    public static func linear(_ x: UnsafePointer<Float>, ldx: Int, rows m: Int, weight: LinearWeight,
                              into y: UnsafeMutablePointer<Float>, ldy: Int, accumulate: Bool = false, threads: Int = 1) {
        switch weight {
        case .fp32(let w):
            linear(x, ldx: ldx, rows: m, weight: w, into: y, ldy: ldy, accumulate: accumulate)
        case .bf16(let w):
            let parts = bf16RowParts(rows: m, threads: threads)
            if parts.count <= 1 {
                ck_bf16_gemm(m, w.cols, w.rows, x, ldx, w.storage.base, y, ldy, accumulate ? 1 : 0)
                return
            }
            Parallel.forEach(parts.count) { i in
                let r = parts[i]
                ck_bf16_gemm(r.count, w.cols, w.rows, x + r.lowerBound * ldx, ldx, w.storage.base,
                             y + r.lowerBound * ldy, ldy, accumulate ? 1 : 0)
            }
        }
    }

    /// Rows of a bf16 product per thread: up to `threads` runs of whole 8-row groups (the kernel's
    /// micro-tile), at least `bf16MinRowsPerThread` rows each, so that a thread's share is worth
    /// waking it for (a run streams all of W: 2·k·n bytes against 2·rows·k·n flops).
    static func bf16RowParts(rows m: Int, threads: Int) -> [Range<Int>] {
        let parts = max(1, min(threads, m / bf16MinRowsPerThread))
        guard parts > 1 else { return [0..<m] }
        let step = ((m + parts - 1) / parts + 7) / 8 * 8
        return stride(from: 0, to: m, by: step).map { $0..<min(m, $0 + step) }
    }

    /// Fewest rows a thread of a split bf16 product gets.
    static let bf16MinRowsPerThread = 32

    /// Reference for the bf16 kernel: C = bf16(A) · bf16(B) accumulated in double (B [k×n],
    /// row-major), rounding done by `round` (tests pass their own). Tests only.
    public static func naiveBF16(m: Int, n: Int, k: Int, a: [Float], b: [Float], round: (Float) -> Float) -> [Double] {
        let ar = a.map(round), br = b.map(round)
        var c = [Double](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var s = 0.0
                for p in 0..<k { s += Double(ar[i * k + p]) * Double(br[p * n + j]) }
                c[i * n + j] = s
            }
        }
        return c
    }
}
