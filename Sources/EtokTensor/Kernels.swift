// Kernels: the Swift face of the CKernels tables (RMSNorm, RoPE, SiLU·mul, softmax, tanh, add,
// FSQ). The C side holds the hot loops because Swift compiles for baseline x86-64 and does not
// vectorise floating-point reductions; see Sources/CKernels/include/ckernels.h for layout and
// the bit-identical-across-paths guarantee.
import CKernels
import Foundation

/// One table of elementwise kernels: a fast path for some instruction set, or the plain
/// reference versions. Immutable and shareable across threads.
///
/// All functions take raw pointers and strides (row-major, strides in elements) because they sit
/// on the hot path; the caller keeps the memory alive and sized. Cost notes are per call.
public struct Kernels: @unchecked Sendable {
    let table: UnsafePointer<ck_kernels>

    init(_ table: UnsafePointer<ck_kernels>) { self.table = table }

    /// The fastest path this CPU runs (chosen once; `ETOK_CKERNELS_ISA` may lower it).
    public static let best = Kernels(ck_kernels_best())
    /// The plain double-precision reference versions (slow; tests only).
    public static let reference = Kernels(ck_kernels_reference())

    /// Every fast path this CPU can run, widest last (baseline is always there).
    public static var available: [Kernels] {
        [CK_ISA_BASELINE, CK_ISA_AVX2, CK_ISA_AVX512].compactMap { isa in
            ck_kernels_for(isa).map { Kernels($0) }
        }
    }

    /// "avx512", "avx2", "baseline" or "reference".
    public var name: String { String(cString: table.pointee.name) }

    /// y[r] = x[r] / sqrt(mean(x[r]²) + eps) * weight for `rows` rows of `n` values. In place
    /// allowed (same pointer and stride). Cost: 2 passes over the row.
    public func rmsNormRows(_ x: UnsafePointer<Float>, ldx: Int, _ y: UnsafeMutablePointer<Float>, ldy: Int,
                            rows: Int, n: Int, weight: UnsafePointer<Float>, eps: Float) {
        table.pointee.rmsnorm_rows(x, ldx, y, ldy, rows, n, weight, eps)
    }

    /// In-place rotary embedding of interleaved pairs; row r uses table row r (see `RoPETable`).
    public func ropeRows(_ x: UnsafeMutablePointer<Float>, ldx: Int, rows: Int, heads: Int, headDim: Int,
                         cos2: UnsafePointer<Float>, sin2: UnsafePointer<Float>, ldt: Int) {
        table.pointee.rope_rows(x, ldx, rows, heads, headDim, cos2, sin2, ldt)
    }

    /// y = silu(gate) * up, row by row (gate and up share the stride `ldin`).
    public func siluMulRows(gate: UnsafePointer<Float>, up: UnsafePointer<Float>, ldin: Int,
                            _ y: UnsafeMutablePointer<Float>, ldy: Int, rows: Int, n: Int) {
        table.pointee.silu_mul_rows(gate, up, ldin, y, ldy, rows, n)
    }

    /// In place: each row of `n` values becomes softmax(row / divisor). Cost: 3 passes.
    public func softmaxRows(_ x: UnsafeMutablePointer<Float>, ldx: Int, rows: Int, n: Int, divisor: Float) {
        table.pointee.softmax_rows(x, ldx, rows, n, divisor)
    }

    /// y = tanh(x) over `n` values (in place allowed).
    public func tanh(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, n: Int) {
        table.pointee.tanh(x, y, n)
    }

    /// dst += src over `n` values.
    public func add(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, n: Int) {
        table.pointee.add(dst, src, n)
    }

    /// FSQ of `rows` rows of `levels.count` values: codes (rows × dim, stride ldc) and indices.
    public func fsq(_ z: UnsafePointer<Float>, ldz: Int, rows: Int, levels: [FSQLevel],
                    codes: UnsafeMutablePointer<Float>, ldc: Int, indices: UnsafeMutablePointer<Int32>) {
        let c = levels.map {
            ck_fsq_level(half_l: $0.halfL, offset: $0.offset, shift: $0.shift, half_width: $0.halfWidth, basis: $0.basis)
        }
        table.pointee.fsq(z, ldz, rows, c.count, c, codes, ldc, indices)
    }
}

/// The per-dimension constants of FSQ for one level count L (the official definitions):
/// halfL = (L−1)(1−1e-3)/2, offset = 0.5 if L is even else 0, shift = tan(offset/halfL),
/// halfWidth = L div 2, basis = product of the levels before this dimension.
public struct FSQLevel: Sendable, Equatable {
    public var halfL: Float
    public var offset: Float
    public var shift: Float
    public var halfWidth: Int32
    public var basis: Int32

    /// The constants for every level of an FSQ bottleneck, dimension 0 least significant.
    /// Each constant is computed in double from the level count and rounded once to float32
    /// (the reference's convention: shift uses the double half_l). Levels must be >= 2 and
    /// their product must fit in Int32 (the config checks both).
    public static func table(levels: [Int]) -> [FSQLevel] {
        var basis: Int32 = 1
        return levels.map { level in
            let halfL = Double(level - 1) * (1 - 1e-3) / 2
            let offset = level % 2 == 0 ? 0.5 : 0.0
            let entry = FSQLevel(halfL: Float(halfL), offset: Float(offset),
                                 shift: Float(tan(offset / halfL)),
                                 halfWidth: Int32(level / 2), basis: basis)
            basis *= Int32(level)
            return entry
        }
    }
}
