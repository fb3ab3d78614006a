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
// bf16 keys and values (the bf16 path's caches): both products run on the AVX512-BF16 kernel
// (ck_bf16_gemm: bf16 inputs, float32 accumulation); the softmax stays float32. Each thread slot
// packs its head's visible keys (as Kᵀ) and values once (bf16_attention.c: one copy per value,
// 2·v·hd against 4·r·v·hd flops, and again only when the head or the visible count changes; a
// slot runs consecutive items, which share the head); the queries and the probabilities are
// rounded to bf16 as the kernel reads them (r·hd and r·v values).
// Memory: one tile of logits per thread (`scoreTileBudget` floats at most, unless one row of
// visible keys is longer), never all heads' or all rows' logits at once.
import CKernels
import Foundation

/// A run of key and value rows: `count` rows each, row stride `ld` (keys and values share it),
/// float32 or bf16 (the bf16 path's 16-bit caches, which attention multiplies in bf16).
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

    /// Packs rows 0..<rows of one head's keys (as columns `first`... of Kᵀ [hd × n]) or values (as
    /// rows `first`... of V [k × hd]) into `packed`, ck_bf16_gemm's layout. bf16 segments only.
    func pack(values: Bool, offset: Int, hd: Int, rows: Int, first: Int, k: Int, into packed: UnsafeMutablePointer<UInt16>) {
        guard case .bf16(let keys, let vals) = storage else { preconditionFailure("Attention: bf16 packing of a float32 segment") }
        if values {
            ck_bf16_pack_b_rows(vals + offset, ld, rows, first, k, hd, packed)
        } else {
            ck_bf16_pack_bt_rows(keys + offset, ld, rows, first, hd, packed)
        }
    }
}

/// Scratch memory for the attention logits: one score tile per thread slot; grows on demand and
/// is reused between calls. Not thread-safe: one per session (its slots serve one call's threads).
public final class AttentionWorkspace {
    var slots: [FloatBuffer] = []
    /// Per slot: one head's keys (Kᵀ) and values packed for the bf16 kernel (bf16 segments only).
    var packed: [BF16Buffer] = []

    public init() {}

    /// Floats held now (for memory accounting in tests; two bf16 values count as one float).
    public var floatCount: Int { slots.reduce(0) { $0 + $1.count } + packed.reduce(0) { $0 + ($1.count + 1) / 2 } }

    func packed(slots n: Int, count: Int) -> [UnsafeMutablePointer<UInt16>] {
        if packed.count < n || (packed.first?.count ?? 0) < count {
            let size = max(count, packed.first?.count ?? 0)
            packed = (0..<max(n, packed.count)).map { _ in BF16Buffer(count: size) }
        }
        return packed.prefix(n).map(\.base)
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
        // bf16 segments: both products on the bf16 kernel, over keys and values packed per slot
        // ([Kᵀ for `total` keys | V for `total` keys]) and repacked when the head or vis changes.
        let bf16 = own.isBF16
        precondition(!bf16 || (context?.isBF16 ?? true), "Attention: a bf16 block needs a bf16 context")
        precondition(bf16 || !(context?.isBF16 ?? false), "Attention: a float32 block needs a float32 context")
        let keysCount = ck_bf16_packed_count(headDim, total)
        let packedSlots = bf16 ? workspace.packed(slots: slots, count: keysCount + ck_bf16_packed_count(total, headDim)) : []
        // Per slot: the (head, vis) its packed buffer holds (written only by that slot's thread).
        let packedFor = UnsafeMutablePointer<Int>.allocate(capacity: 2 * slots)
        packedFor.initialize(repeating: -1, count: 2 * slots)
        defer { packedFor.deallocate() }
        func item(_ index: Int, _ scores: UnsafeMutablePointer<Float>, _ slot: Int) {
            let tile = tiles[index % tiles.count], h = index / tiles.count
            let rows = tile.rows, vis = tile.vis
            let fromContext = min(vis, nctx)
            let fromOwn = vis - fromContext
            let q = queries + tile.start * ldq + h * headDim
            let out = output + tile.start * ldo + h * headDim
            if bf16 {
                let kT = packedSlots[slot], v = packedSlots[slot] + keysCount
                if packedFor[2 * slot] != h || packedFor[2 * slot + 1] != vis {
                    for (values, dst) in [(false, kT), (true, v)] {
                        if let context, fromContext > 0 {
                            context.pack(values: values, offset: h * headDim, hd: headDim, rows: fromContext, first: 0, k: vis, into: dst)
                        }
                        own.pack(values: values, offset: h * headDim, hd: headDim, rows: fromOwn, first: fromContext, k: vis, into: dst)
                    }
                    ck_bf16_pack_pad(headDim, vis, kT)
                    ck_bf16_pack_pad(vis, headDim, v)
                    packedFor[2 * slot] = h
                    packedFor[2 * slot + 1] = vis
                }
                ck_bf16_gemm(rows, vis, headDim, q, ldq, kT, scores, vis, 0)
                kernels.softmaxRows(scores, ldx: vis, rows: rows, n: vis, divisor: divisor)
                ck_bf16_gemm(rows, headDim, vis, scores, vis, v, out, ldo, 0)
                return
            }
            guard case .fp32(let ownKeys, let ownValues) = own.storage else { preconditionFailure("bf16 segments run above") }
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
        // Items are numbered head-major (item = head · tiles + tile); slot s runs the consecutive
        // items [s·items/slots, (s+1)·items/slots) with its own score tile (and packed head);
        // outputs are disjoint, and no item's arithmetic depends on its slot.
        if slots == 1 {
            for i in 0..<items { item(i, scoreTiles[0], 0) }
        } else {
            Parallel.forEach(slots) { slot in
                for i in (slot * items / slots)..<((slot + 1) * items / slots) { item(i, scoreTiles[slot], slot) }
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
