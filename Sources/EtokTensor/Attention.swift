// Attention: multi-head scaled dot-product attention over two key segments (the committed
// context and the queries' own block), with a per-query visible-key prefix, on GEMMs.
//
// Layout: queries, keys and values are row-major with head h in columns [h·hd, (h+1)·hd) of a
// row (so they can live inside a fused Q|K|V matrix); the keys seen by query i are the first
// visible[i] rows of `context ++ own`.
//
// One kernel serves every mask the model needs: block-causal attention over a whole sequence
// (one segment, visible = end of the query's block) and cached attention (context = committed
// blocks, own = the new block, every key visible). Masked keys are never computed: the official
// model gives them the logit -Float.greatestFiniteMagnitude, whose exp underflows to exactly 0,
// so softmax over the visible prefix alone is the same value (and the same bits as a masked
// row would give with our softmax, whose sums only ever add those zeros).
//
// Cost per head and per run of queries with equal visibility (r queries, v keys):
// 2·r·v·hd flops for the logits, as much for P·V, 3 passes of softmax over r·v values.
// Logits are divided by sqrt(head_dim) in float32, inside the softmax pass.
// bf16 keys and values (the bf16 path's caches): each (head, query tile) item first widens its
// head's visible keys and values into one float32 [visible × hd] matrix each, then runs one logits
// GEMM and one P·V GEMM over all of them; conversion is 2·v·hd values against 4·r·v·hd flops.
// Memory: one tile of logits per thread (`scoreTileBudget` floats at most, unless one row of
// visible keys is longer), never all heads' or all rows' logits at once.
import Foundation

/// A run of key and value rows: `count` rows each, row stride `ld` (keys and values share it),
/// float32 or bf16 (the bf16 path's 16-bit caches, widened to float32 per head as attention
/// reads them).
public struct KeyValueSegment {
    public enum Storage {
        case fp32(keys: UnsafePointer<Float>, values: UnsafePointer<Float>)
        case bf16(keys: UnsafePointer<UInt16>, values: UnsafePointer<UInt16>)
    }
    public var storage: Storage
    public var count: Int
    public var ld: Int

    public init(keys: UnsafePointer<Float>, values: UnsafePointer<Float>, count: Int, ld: Int) {
        storage = .fp32(keys: keys, values: values)
        self.count = count
        self.ld = ld
    }

    public init(bf16Keys keys: UnsafePointer<UInt16>, values: UnsafePointer<UInt16>, count: Int, ld: Int) {
        storage = .bf16(keys: keys, values: values)
        self.count = count
        self.ld = ld
    }

    var isBF16: Bool { if case .bf16 = storage { true } else { false } }

    /// Copies (widens) rows 0..<rows of one head's keys (or values), columns [offset, offset+hd),
    /// into dst as a dense [rows × hd] float32 matrix.
    func gather(values: Bool, offset: Int, hd: Int, rows: Int, into dst: UnsafeMutablePointer<Float>) {
        switch storage {
        case .fp32(let k, let v):
            let src = (values ? v : k) + offset
            for r in 0..<rows { (dst + r * hd).update(from: src + r * ld, count: hd) }
        case .bf16(let k, let v):
            let src = (values ? v : k) + offset
            for r in 0..<rows { BF16.widen(src + r * ld, into: dst + r * hd, count: hd) }
        }
    }
}

/// Scratch memory for the attention logits: one score tile per thread slot; grows on demand and
/// is reused between calls. Not thread-safe: one per session (its slots serve one call's threads).
public final class AttentionWorkspace {
    var slots: [FloatBuffer] = []
    /// Per slot: one head's keys and values widened to float32 (bf16 segments only).
    var gathered: [FloatBuffer] = []

    public init() {}

    /// Floats held now (for memory accounting in tests).
    public var floatCount: Int { (slots + gathered).reduce(0) { $0 + $1.count } }

    func gathered(slots n: Int, count: Int) -> [UnsafeMutablePointer<Float>] {
        if gathered.count < n || (gathered.first?.count ?? 0) < count {
            let size = max(count, gathered.first?.count ?? 0)
            gathered = (0..<max(n, gathered.count)).map { _ in FloatBuffer(count: size) }
        }
        return gathered.prefix(n).map(\.base)
    }

    /// Makes `slots` buffers of at least `count` floats and returns their bases.
    func scores(slots n: Int, count: Int) -> [UnsafeMutablePointer<Float>] {
        if slots.count < n || (slots.first?.count ?? 0) < count {
            let size = max(count, slots.first?.count ?? 0)
            slots = (0..<max(n, slots.count)).map { _ in FloatBuffer(count: size) }
        }
        return slots.prefix(n).map(\.base)
    }
}

/// Multi-head attention on GEMMs (see the file comment for the mask semantics).
public enum Attention {
    /// The most logits one tile of query rows holds (16 MiB of float32): a run of queries is
    /// cut into tiles of max(1, scoreTileBudget / visible) rows, so memory is bounded by this
    /// times the thread count, never by queries × keys × heads. Each row's softmax is its own,
    /// so tiles only change which rows share a GEMM; a run is one tile (the GEMM shapes of the
    /// default model and of every model whose queries × visible keys fit) unless it is larger.
    public static let scoreTileBudget = 1 << 22

    /// Query rows per tile when `visible` keys are seen.
    public static func tileRows(visible: Int, budget: Int = scoreTileBudget) -> Int { max(1, budget / max(1, visible)) }

    /// out[i, head h] = Σ_j softmax_j(q_i,h · k_j,h / sqrt(headDim)) · v_j,h over the first
    /// visible[i] keys of `context ++ own` (all of them when `visible` is nil).
    ///
    /// Summation order is fixed by (query tile, context part, own part): P·V is the context GEMM
    /// followed by the own-block GEMM accumulated into it, so the same inputs and split give the
    /// same bits. Work items (head, query tile) run on up to `threads` threads (Dispatch), each
    /// with its own score tile; every item's GEMMs have the same shapes whatever the thread
    /// count, so the result does not depend on it. `tileBudget` is for tests. Every visible[i] must be in
    /// 1...(context.count + own.count).
    public static func attend(queries: UnsafePointer<Float>, ldq: Int, queryCount: Int,
                              heads: Int, headDim: Int,
                              context: KeyValueSegment?, own: KeyValueSegment,
                              visible: UnsafePointer<Int32>?,
                              output: UnsafeMutablePointer<Float>, ldo: Int,
                              workspace: AttentionWorkspace, kernels: Kernels = .best, threads: Int = 1,
                              tileBudget: Int = scoreTileBudget) {
        let nctx = context?.count ?? 0
        let total = nctx + own.count
        let divisor = Float(headDim).squareRoot()
        // Work items: (first row, rows, visible keys) tiles of runs with equal visibility, by head.
        var tiles: [(start: Int, rows: Int, vis: Int)] = []
        var maxScores = 0
        var start = 0
        while start < queryCount {
            // A run of consecutive queries that see the same prefix shares its GEMMs.
            let vis = visible.map { Int($0[start]) } ?? total
            precondition(vis >= 1 && vis <= total, "Attention: visible count \(vis) outside 1...\(total)")
            var end = start + 1
            if let visible { while end < queryCount && Int(visible[end]) == vis { end += 1 } } else { end = queryCount }
            let step = tileRows(visible: vis, budget: tileBudget)
            var r = start
            while r < end {
                let n = min(step, end - r)
                tiles.append((r, n, vis))
                maxScores = max(maxScores, n * vis)
                r += n
            }
            start = end
        }
        let items = tiles.count * heads
        let slots = max(1, min(threads, items))
        let scoreTiles = workspace.scores(slots: slots, count: maxScores)
        let context = context, own = own
        // bf16 segments: each item gathers its head's visible keys and values, widened, into one
        // [vis × hd] float32 matrix each (2·vis·hd conversions against 4·rows·vis·hd flops).
        let widened = own.isBF16 || (context?.isBF16 ?? false)
        let kv = widened ? workspace.gathered(slots: slots, count: 2 * total * headDim) : []
        func item(_ index: Int, _ scores: UnsafeMutablePointer<Float>, _ slot: Int) {
            let tile = tiles[index / heads], h = index % heads
            let rows = tile.rows, vis = tile.vis
            let fromContext = min(vis, nctx)
            let fromOwn = vis - fromContext
            let q = queries + tile.start * ldq + h * headDim
            let out = output + tile.start * ldo + h * headDim
            if widened {
                let k = kv[slot], v = kv[slot] + vis * headDim
                for (values, dst) in [(false, k), (true, v)] {
                    if let context, fromContext > 0 {
                        context.gather(values: values, offset: h * headDim, hd: headDim, rows: fromContext, into: dst)
                    }
                    own.gather(values: values, offset: h * headDim, hd: headDim, rows: fromOwn,
                               into: dst + fromContext * headDim)
                }
                GEMM.multiply(m: rows, n: vis, k: headDim, a: q, lda: ldq, b: k, ldb: headDim, transposeB: true,
                              c: scores, ldc: vis)
                kernels.softmaxRows(scores, ldx: vis, rows: rows, n: vis, divisor: divisor)
                GEMM.multiply(m: rows, n: headDim, k: vis, a: scores, lda: vis, b: v, ldb: headDim, c: out, ldc: ldo)
                return
            }
            guard case .fp32(let ownKeys, let ownValues) = own.storage else { preconditionFailure("bf16 segments are widened above") }
            let ctx: (keys: UnsafePointer<Float>, values: UnsafePointer<Float>)?
            if let context, case .fp32(let k, let v) = context.storage { ctx = (k, v) } else { ctx = nil }
            if let context, let ctx, fromContext > 0 {
                GEMM.multiply(m: rows, n: fromContext, k: headDim, a: q, lda: ldq,
                              b: ctx.keys + h * headDim, ldb: context.ld, transposeB: true,
                              c: scores, ldc: vis)
            }
            if fromOwn > 0 {
                GEMM.multiply(m: rows, n: fromOwn, k: headDim, a: q, lda: ldq,
                              b: ownKeys + h * headDim, ldb: own.ld, transposeB: true,
                              c: scores + fromContext, ldc: vis)
            }
            kernels.softmaxRows(scores, ldx: vis, rows: rows, n: vis, divisor: divisor)
            if let context, let ctx, fromContext > 0 {
                GEMM.multiply(m: rows, n: headDim, k: fromContext, a: scores, lda: vis,
                              b: ctx.values + h * headDim, ldb: context.ld,
                              c: out, ldc: ldo)
            }
            if fromOwn > 0 {
                GEMM.multiply(m: rows, n: headDim, k: fromOwn, a: scores + fromContext, lda: vis,
                              b: ownValues + h * headDim, ldb: own.ld,
                              c: out, ldc: ldo, beta: fromContext > 0 ? 1 : 0)
            }
        }
        if slots == 1 {
            for i in 0..<items { item(i, scoreTiles[0], 0) }
        } else {
            // Item i on slot i % slots: each slot owns its score tile; outputs are disjoint.
            Parallel.forEach(slots) { slot in
                for i in stride(from: slot, to: items, by: slots) { item(i, scoreTiles[slot], slot) }
            }
        }
    }

    /// Reference attention: a plain loop in double over all keys with the official masking
    /// (masked logits = -Float.greatestFiniteMagnitude before the softmax). Keys and values are
    /// given as one contiguous [keyCount × heads·headDim] matrix each. Tests only.
    public static func naive(queries: [Float], keys: [Float], values: [Float], queryCount: Int,
                             keyCount: Int, heads: Int, headDim: Int, visible: [Int]) -> [Float] {
        let width = heads * headDim
        var out = [Float](repeating: 0, count: queryCount * width)
        let divisor = Double(Float(headDim).squareRoot())
        for i in 0..<queryCount {
            for h in 0..<heads {
                var logits = [Double](repeating: 0, count: keyCount)
                for j in 0..<keyCount {
                    if j < visible[i] {
                        var s = 0.0
                        for d in 0..<headDim {
                            s += Double(queries[i * width + h * headDim + d]) * Double(keys[j * width + h * headDim + d])
                        }
                        logits[j] = Double(Float(s)) / divisor
                    } else {
                        logits[j] = -Double(Float.greatestFiniteMagnitude)
                    }
                }
                let m = logits.max() ?? 0
                let e = logits.map { Foundation.exp($0 - m) }
                let sum = e.reduce(0, +)
                for d in 0..<headDim {
                    var acc = 0.0
                    for j in 0..<keyCount { acc += e[j] / sum * Double(values[j * width + h * headDim + d]) }
                    out[i * width + h * headDim + d] = Float(acc)
                }
            }
        }
        return out
    }
}
