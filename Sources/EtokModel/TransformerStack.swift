// TransformerStack: runs the encoder's or decoder's pre-norm blocks over a group of token rows,
// with the committed context of earlier blocks as a per-layer KV cache.
//
// Layout (row-major float32, D = hidden, F = intermediate):
//   h      [rows × D]    the residual stream, updated in place
//   xn     [rows × D]    RMSNorm output (and the stack's final normed output)
//   qkv[l] [rows × 3D]   layer l's fused Q|K|V; where K and V go is the pass's `KeyValueKeeping`:
//                        .all keeps every layer's (fp32: qkv[l]; bf16: one qkv for the layer
//                        running and kv16[l] [rows × 2D] bf16, rounded) until a stage copies one
//                        candidate; .slot writes them straight into the context's buffers past
//                        the committed tokens (one candidate); .discard keeps one layer at a time
//                        (qkv[0], bf16 kv16[0]). Q is never kept.
//   attn   [rows × D]    attention output, heads side by side
//   gu     [rows × 2F]   fused gate|up; act [rows × F] = silu(gate) · up
// Rows come in `groups` of `rowsPerGroup`: the candidates of one block (each group sees the
// shared context and its own rows), or one group holding a whole sequence (block-causal).
//
// Cost per block of T tokens and one candidate, per layer: 2·T·D·(3D + D + 3F) flops of GEMM
// plus 4·T·(context + T)·D of attention; elementwise kernels are memory-bound and small.
//
// GEMM shape policy (determinism): every GEMM runs on exactly one group's rows, so a group's
// result never depends on how many other groups ran beside it (OpenBLAS may round a row
// differently when m changes): a candidate's z is the same alone or among others, and a block
// decoded during the encoder's search and the same block decoded later from its codes alone
// are bit-identical.
import EtokTensor

/// The committed context of one stack: per layer, the keys (after RoPE) and values of every
/// committed token, in commit order; float32, or bf16 for a bf16 model (half the memory).
/// Owns its buffers; not thread-safe.
public final class ContextCache {
    /// Keys per layer: capacity × D each (empty for bf16).
    let keys: [FloatBuffer]
    /// Values per layer: capacity × D each (empty for bf16).
    let values: [FloatBuffer]
    /// bf16 keys and values per layer: capacity × D each (empty for fp32).
    let keys16: [BF16Buffer]
    let values16: [BF16Buffer]
    /// Tokens committed so far.
    public private(set) var committedTokens = 0
    /// Most tokens the cache holds.
    public let capacityTokens: Int
    let width: Int

    init(layers: Int, capacityTokens: Int, width: Int, precision: Precision = .fp32) {
        self.capacityTokens = capacityTokens
        self.width = width
        let fp32 = precision == .fp32 ? layers : 0, bf16 = layers - fp32
        keys = (0..<fp32).map { _ in FloatBuffer(count: capacityTokens * width) }
        values = (0..<fp32).map { _ in FloatBuffer(count: capacityTokens * width) }
        keys16 = (0..<bf16).map { _ in BF16Buffer(count: capacityTokens * width) }
        values16 = (0..<bf16).map { _ in BF16Buffer(count: capacityTokens * width) }
    }

    /// The committed context of layer l as an attention segment (nil when empty).
    func segment(layer l: Int) -> KeyValueSegment? {
        if committedTokens == 0 { return nil }
        if keys16.isEmpty {
            return KeyValueSegment(keys: keys[l].base, values: values[l].base, count: committedTokens, ld: width)
        }
        return KeyValueSegment(bf16Keys: keys16[l].base, values: values16[l].base, count: committedTokens, ld: width)
    }

    /// Where the staged candidate is: slot 0 or 1 (the block-sized slots just past the committed
    /// tokens), nil when none is staged.
    private(set) var stagedSlot: Int?
    /// Most tokens ever written into the buffers (committed, staged and slot rows): what of them is
    /// resident, since a written page stays resident. For memory accounting in tests.
    public private(set) var touchedTokens = 0

    /// The first row of slot `slot` (0 or 1) for blocks of `tokens` rows.
    private func slotRow(_ slot: Int, tokens: Int) -> Int { committedTokens + slot * tokens }

    /// A pass is about to write its one candidate's keys and values of `tokens` rows into `slot`:
    /// a candidate staged there is gone.
    func claim(slot: Int, tokens: Int) {
        precondition(slot == 0 || slot == 1, "ContextCache: slot \(slot)")
        precondition(slotRow(slot, tokens: tokens) + tokens <= capacityTokens, "ContextCache: over capacity")
        if stagedSlot == slot { stagedSlot = nil }
        touchedTokens = max(touchedTokens, slotRow(slot, tokens: tokens) + tokens)
    }

    /// Writes layer l's keys and values of `rows` rows (row stride `ld`, after RoPE) into `slot`,
    /// rounded to bf16 for a bf16 cache; returns the bf16 slot rows as the pass's own attention
    /// segment (nil for fp32, whose pass reads its own float32 rows).
    func write(layer l: Int, slot: Int, keys: UnsafePointer<Float>, values: UnsafePointer<Float>, ld: Int,
               rows: Int) -> KeyValueSegment? {
        let first = slotRow(slot, tokens: rows)
        if keys16.isEmpty {
            for r in 0..<rows {
                (self.keys[l].base + (first + r) * width).update(from: keys + r * ld, count: width)
                (self.values[l].base + (first + r) * width).update(from: values + r * ld, count: width)
            }
            return nil
        }
        for r in 0..<rows {
            BF16.round(keys + r * ld, into: keys16[l].base + (first + r) * width, count: width)
            BF16.round(values + r * ld, into: values16[l].base + (first + r) * width, count: width)
        }
        return KeyValueSegment(bf16Keys: keys16[l].base + first * width, values: values16[l].base + first * width,
                               count: rows, ld: width)
    }

    /// Stages candidate `index` of the last pass, which kept its keys and values as `kept`
    /// (`pending` candidates of `tokens` rows each, one after another); throws `badInput` for
    /// `call` when there is no such candidate or the pass kept none.
    func stage(candidate index: Int, of pending: Int, tokens: Int, kept: KeyValueKeeping, from workspace: StackWorkspace,
               call: String, ran: String) throws {
        guard index >= 0, index < pending else {
            throw ModelError.badInput(call: call, message: "no candidate \(index) pending (\(pending) \(ran))")
        }
        switch kept {
        case .all: stage(from: workspace, firstRow: index * tokens, count: tokens)
        case .slot(let s): stagedSlot = s
        case .discard:
            throw ModelError.badInput(call: call, message: "the last pass kept no keys and values to stage")
        }
    }

    /// Makes the staged rows part of the context (moving them from slot 1 to slot 0 first);
    /// throws `badInput` for `call` when none are.
    func commitStaged(tokens: Int, call: String) throws {
        guard let slot = stagedSlot else { throw ModelError.badInput(call: call, message: "no candidate staged") }
        if slot == 1 {
            let from = committedTokens + tokens
            for l in 0..<keys16.count {
                (keys16[l].base + committedTokens * width).update(from: keys16[l].base + from * width, count: tokens * width)
                (values16[l].base + committedTokens * width).update(from: values16[l].base + from * width, count: tokens * width)
            }
            for l in 0..<keys.count {
                (keys[l].base + committedTokens * width).update(from: keys[l].base + from * width, count: tokens * width)
                (values[l].base + committedTokens * width).update(from: values[l].base + from * width, count: tokens * width)
            }
        }
        committedTokens += tokens
        stagedSlot = nil
    }

    /// Copies `count` rows of K and V for every layer from the workspace (an `.all` pass) into
    /// slot 0, replacing anything staged there. Attention never reads them until
    /// `commitStaged()`, so later passes may run (and reuse the workspace) in between.
    func stage(from workspace: StackWorkspace, firstRow: Int, count: Int) {
        claim(slot: 0, tokens: count)
        for l in 0..<keys16.count {
            let kv = workspace.kv16[l].base
            for r in 0..<count {
                let src = kv + (firstRow + r) * 2 * width
                (keys16[l].base + (committedTokens + r) * width).update(from: src, count: width)
                (values16[l].base + (committedTokens + r) * width).update(from: src + width, count: width)
            }
        }
        for l in 0..<keys.count {
            let qkv = workspace.qkv[l].base
            for r in 0..<count {
                let src = qkv + (firstRow + r) * 3 * width
                (keys[l].base + (committedTokens + r) * width).update(from: src + width, count: width)
                (values[l].base + (committedTokens + r) * width).update(from: src + 2 * width, count: width)
            }
        }
        stagedSlot = 0
    }

    /// Forgets the context (a chunk boundary). Buffers are kept for reuse.
    func reset() { committedTokens = 0; stagedSlot = nil }
}

/// What a pass keeps of its candidates' keys and values (per layer), that is, what can be staged
/// and committed from it. Each layer's keys and values are needed by that layer's attention
/// only, so a pass that keeps them for a commit holds a block's worth per candidate, one that
/// does not holds one layer's.
public enum KeyValueKeeping: Equatable, Sendable {
    /// Nothing past the layer running: the pass's candidates cannot be staged (the last block of
    /// a chunk, or passes whose chosen candidate is run again).
    case discard
    /// Every candidate's, in the workspace (a block per candidate); staging copies one into the
    /// context's slot 0.
    case all
    /// One candidate's, written straight into slot 0 or 1 of the context (the block-sized rows
    /// just past the committed tokens, which a commit fills anyway): staging copies nothing, but
    /// the pass replaces a candidate staged in the same slot.
    case slot(Int)
}

/// Scratch buffers for running a stack over up to `capacityRows` rows; grows on demand.
/// Not thread-safe: one per session.
final class StackWorkspace {
    let width: Int, inner: Int, layers: Int
    let precision: Precision
    /// bf16: each layer's K|V rounded to bf16 (rows × 2D), kept for a commit.
    var kv16: [BF16Buffer] = []
    /// bf16: the MLP runs over row tiles of this many rows (gu and act hold one tile), which the
    /// bf16 kernel allows without changing a bit (a row's result does not depend on the rows
    /// beside it); fp32 keeps whole groups (OpenBLAS's results may depend on m). 512 rows of the
    /// 200M model: 12 MB instead of 100 MB per stack.
    var mlpTileRows = 512
    private(set) var capacityRows = 0
    var h = FloatBuffer(count: 0)
    var xn = FloatBuffer(count: 0)
    var attn = FloatBuffer(count: 0)
    var gu = FloatBuffer(count: 0)
    var act = FloatBuffer(count: 0)
    var qkv: [FloatBuffer] = []
    let attention = AttentionWorkspace()

    init(width: Int, inner: Int, layers: Int, precision: Precision = .fp32) {
        self.width = width
        self.inner = inner
        self.layers = layers
        self.precision = precision
    }

    /// Most rows × layers of keys and values a pass kept in the workspace for every layer at
    /// once (`.all` passes; one layer's buffers are not counted): what of them is resident,
    /// since a written page stays resident. For memory accounting in tests.
    private(set) var keptLayerRows = 0

    /// Layer l's Q|K|V buffer: fp32 `.all` passes keep one per layer, every other pass shares one.
    func qkv(layer l: Int, keeping: KeyValueKeeping) -> UnsafeMutablePointer<Float> {
        qkv[precision == .bf16 || keeping != .all ? 0 : l].base
    }

    /// Records a pass over `rows` rows that keeps its keys and values as `keeping`.
    func note(rows: Int, keeping: KeyValueKeeping) {
        if keeping == .all { keptLayerRows = max(keptLayerRows, rows * layers) }
    }

    func ensure(rows: Int) {
        guard rows > capacityRows else { return }
        capacityRows = rows
        h = FloatBuffer(count: rows * width)
        xn = FloatBuffer(count: rows * width)
        attn = FloatBuffer(count: rows * width)
        let mlpRows = precision == .bf16 ? min(rows, mlpTileRows) : rows
        gu = FloatBuffer(count: mlpRows * 2 * inner)
        act = FloatBuffer(count: mlpRows * inner)
        qkv = (0..<(precision == .bf16 ? 1 : layers)).map { _ in FloatBuffer(count: rows * 3 * width) }
        kv16 = precision == .bf16 ? (0..<layers).map { _ in BF16Buffer(count: rows * 2 * width) } : []
    }
}

/// How a run of the stack is shaped.
struct StackRun {
    /// Number of row groups (candidates) and rows in each.
    var groups: Int
    var rowsPerGroup: Int
    /// Position of each group's first row (RoPE); row r of a group is at firstPosition + r.
    var firstPosition: Int
    /// Per-row visible key count within the group's own rows plus the context; nil = all.
    var visible: [Int32]?

    var rows: Int { groups * rowsPerGroup }
}

/// Runs the blocks of one stack. Stateless apart from what it is given.
enum TransformerStack {
    /// y = x · W over the run's rows, one group at a time (the shape policy above).
    static func linear(_ run: StackRun, _ x: UnsafePointer<Float>, ldx: Int, _ w: Matrix,
                       _ y: UnsafeMutablePointer<Float>, ldy: Int, accumulate: Bool = false, threads: Int = 1) {
        linear(run, x, ldx: ldx, LinearWeight.fp32(w), y, ldy: ldy, accumulate: accumulate, threads: threads)
    }

    /// As above, for a weight in either precision.
    static func linear(_ run: StackRun, _ x: UnsafePointer<Float>, ldx: Int, _ w: LinearWeight,
                       _ y: UnsafeMutablePointer<Float>, ldy: Int, accumulate: Bool = false, threads: Int = 1) {
        // Candidates side by side when there are several; else one candidate's bf16 rows split
        // over the threads (GEMM.linear; fp32 runs on OpenBLAS's own threads). No bit changes.
        func group(_ g: Int, threads: Int) {
            let r0 = g * run.rowsPerGroup
            GEMM.linear(x + r0 * ldx, ldx: ldx, rows: run.rowsPerGroup, weight: w, into: y + r0 * ldy, ldy: ldy,
                        accumulate: accumulate, threads: threads)
        }
        if threads > 1 && run.groups > 1 {
            Parallel.forEach(run.groups) { group($0, threads: 1) }
        } else {
            for g in 0..<run.groups { group(g, threads: threads) }
        }
    }

    /// Runs every block of `stack` on ws.h (run.rows × D) and leaves RMSNorm_ln_f(h) in ws.xn.
    /// Each layer's keys and values are kept as `keeping` says (see `KeyValueKeeping`; `.slot`
    /// needs a cache and one group). Where they are kept changes no bit of the result.
    static func forward(_ stack: StackWeights, config: ModelConfig, run: StackRun, cache: ContextCache?,
                        rope: RoPETable, workspace ws: StackWorkspace, kernels: Kernels, threads: Int = 1,
                        keeping: KeyValueKeeping = .all) {
        let d = config.hiddenSize, f = config.intermediateSize
        let heads = config.numAttentionHeads, hd = config.headDim, eps = Float(config.rmsNormEps)
        let rows = run.rows, t = run.rowsPerGroup
        precondition(ws.capacityRows >= rows, "TransformerStack: workspace too small")
        precondition(run.firstPosition + t <= rope.positions, "TransformerStack: positions beyond the RoPE table")
        let h = ws.h.base, xn = ws.xn.base, attn = ws.attn.base, gu = ws.gu.base, act = ws.act.base
        let cosRows = rope.cos2.base + run.firstPosition * hd, sinRows = rope.sin2.base + run.firstPosition * hd
        if case .slot(let s) = keeping {
            precondition(cache != nil && run.groups == 1, "TransformerStack: a slot holds one candidate of a cached run")
            cache!.claim(slot: s, tokens: t)
        }
        ws.note(rows: rows, keeping: keeping)
        for (l, layer) in stack.layers.enumerated() {
            let qkv = ws.qkv(layer: l, keeping: keeping)
            kernels.rmsNormRows(h, ldx: d, xn, ldy: d, rows: rows, n: d, weight: layer.attentionNorm.base, eps: eps)
            linear(run, xn, ldx: d, layer.qkv, qkv, ldy: 3 * d, threads: threads)
            for g in 0..<run.groups {
                let base = qkv + g * t * 3 * d
                kernels.ropeRows(base, ldx: 3 * d, rows: t, heads: heads, headDim: hd, cos2: cosRows, sin2: sinRows, ldt: hd)
                kernels.ropeRows(base + d, ldx: 3 * d, rows: t, heads: heads, headDim: hd, cos2: cosRows, sin2: sinRows, ldt: hd)
                // The block's own keys and values as attention reads them: float32 from qkv, or
                // rounded to bf16 (into the workspace or the context's slot).
                var own = KeyValueSegment(keys: base + d, values: base + 2 * d, count: t, ld: 3 * d)
                if case .slot(let s) = keeping {
                    if let bf16 = cache!.write(layer: l, slot: s, keys: base + d, values: base + 2 * d, ld: 3 * d, rows: t) {
                        own = bf16
                    }
                } else if ws.precision == .bf16 {
                    let kv = ws.kv16[keeping == .all ? l : 0].base + g * t * 2 * d
                    for r in 0..<t { BF16.round(base + r * 3 * d + d, into: kv + r * 2 * d, count: 2 * d) }
                    own = KeyValueSegment(bf16Keys: kv, values: kv + d, count: t, ld: 2 * d)
                }
                let attend = { (visible: UnsafePointer<Int32>?) in
                    Attention.attend(queries: base, ldq: 3 * d, queryCount: t, heads: heads, headDim: hd,
                                     context: cache?.segment(layer: l), own: own, visible: visible,
                                     output: attn + g * t * d, ldo: d, workspace: ws.attention, kernels: kernels,
                                     threads: threads)
                }
                if let visible = run.visible { visible.withUnsafeBufferPointer { attend($0.baseAddress) } } else { attend(nil) }
            }
            linear(run, attn, ldx: d, layer.wo, h, ldy: d, accumulate: true, threads: threads)
            kernels.rmsNormRows(h, ldx: d, xn, ldy: d, rows: rows, n: d, weight: layer.ffnNorm.base, eps: eps)
            if ws.precision == .bf16 {
                let tile = max(1, min(ws.mlpTileRows, ws.capacityRows))
                for r0 in stride(from: 0, to: rows, by: tile) {
                    let n = min(tile, rows - r0)
                    GEMM.linear(xn + r0 * d, ldx: d, rows: n, weight: layer.w13, into: gu, ldy: 2 * f, threads: threads)
                    kernels.siluMulRows(gate: gu, up: gu + f, ldin: 2 * f, act, ldy: f, rows: n, n: f)
                    GEMM.linear(act, ldx: f, rows: n, weight: layer.w2, into: h + r0 * d, ldy: d, accumulate: true,
                                threads: threads)
                }
                continue
            }
            linear(run, xn, ldx: d, layer.w13, gu, ldy: 2 * f, threads: threads)
            kernels.siluMulRows(gate: gu, up: gu + f, ldin: 2 * f, act, ldy: f, rows: rows, n: f)
            linear(run, act, ldx: f, layer.w2, h, ldy: d, accumulate: true, threads: threads)
        }
        kernels.rmsNormRows(h, ldx: d, xn, ldy: d, rows: rows, n: d, weight: stack.finalNorm.base, eps: eps)
    }
}
