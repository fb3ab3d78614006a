import EtokFormat
import EtokTokenizer
import Foundation

// Reading an .etok stream through the C ABI (include/etok.h, "Reading"): the stream is read whole
// at open by `StreamReport.read` — the very reader `etok export` uses — so the tokens, times and
// damage verdict are export's. The handle then answers from memory: no I/O after open.

/// What `etok_reader_open` hands out: one read stream. Immutable after open, so any number of
/// threads may read it at once; `etok_reader_close` must come after every other call.
final class ReaderHandle {
    let report: StreamReport
    /// The header and health as JSON (`etok info --json` without per-block figures), NUL-terminated.
    let headerJSON: UnsafeMutablePointer<CChar>
    /// Where each block's tokens start in the concatenation of all blocks' values.
    let valueOffsets: [Int]
    /// Each block's start in seconds (ascending in a well-formed stream; used to seek).
    let seconds: [Double]

    init(report: StreamReport) throws {
        self.report = report
        let data = try JSONSerialization.data(withJSONObject: report.jsonObject(includeBlocks: false), options: [.sortedKeys])
        headerJSON = strdup(String(decoding: data, as: UTF8.self))
        var offsets: [Int] = []
        offsets.reserveCapacity(report.blocks.count + 1)
        var total = 0
        for block in report.blocks {
            offsets.append(total)
            total += block.tokens.valueCount
        }
        offsets.append(total)
        valueOffsets = offsets
        seconds = report.blocks.map { report.seconds($0.record.pts) }
    }

    deinit { free(headerJSON) }

    var blockCount: Int { report.blocks.count }
    /// Values per token: 1 for FSQ indices, the latent size for VAE.
    var tokenDim: Int { report.header.model.bottleneck == .fsq ? 1 : (report.header.model.vaeBottleneckDim ?? 1) }
}

/// Per-block figures, as `etok_block_info` in include/etok.h lays them out.
public struct EtokBlockInfo {  // layout: 8-byte fields first, then the Int32s (no padding between)
    public var index: Int64
    public var chunk: Int64
    public var pts: Int64
    public var seconds: Double
    public var mse: Double
    public var valueOffset: Int64
    public var valueCount: Int64
    public var kept: Int32
    public var frames: Int32
}

private func handle(_ r: OpaquePointer?) throws -> ReaderHandle {
    guard let r else { throw CABIError.argument("reader is NULL") }
    return Unmanaged<ReaderHandle>.fromOpaque(UnsafeRawPointer(r)).takeUnretainedValue()
}

/// Opens and reads `path` (`-`: stdin). Damage is an error unless `skip_damaged`, as in the CLI;
/// with it the readable blocks are kept and the header JSON's health lists what was lost.
@_cdecl("etok_reader_open")
public func etok_reader_open(_ path: UnsafePointer<CChar>?, _ skipDamaged: Int32,
                             _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded {
        guard let out else { throw CABIError.argument("out is NULL") }
        out.pointee = nil
        let report = try StreamReport.read(path: try string(path, "path"))
        if !report.damage.isEmpty {
            let hint = "skip_damaged keeps what is readable"
            if skipDamaged == 0 { throw FormatError.damaged(report.damage[0], others: report.damage.count - 1, hint: hint) }
            if report.blocks.isEmpty {
                throw FormatError.damaged(report.damage[0], others: report.damage.count - 1, hint: "no readable blocks")
            }
        }
        out.pointee = OpaquePointer(Unmanaged.passRetained(try ReaderHandle(report: report)).toOpaque())
    }
}

/// Releases a reader (NULL is ignored). Pointers it handed out die with it.
@_cdecl("etok_reader_close")
public func etok_reader_close(_ r: OpaquePointer?) {
    guard let r else { return }
    Unmanaged<ReaderHandle>.fromOpaque(UnsafeRawPointer(r)).release()
}

/// The header and health as JSON, owned by the reader; NULL for a NULL reader.
@_cdecl("etok_reader_header_json")
public func etok_reader_header_json(_ r: OpaquePointer?) -> UnsafePointer<CChar>? {
    (try? handle(r)).map { UnsafePointer($0.headerJSON) }
}

/// Readable blocks, token kind (0 FSQ int32 indices, 1 VAE float32 latents), values per token and
/// values in all blocks together.
@_cdecl("etok_reader_shape")
public func etok_reader_shape(_ r: OpaquePointer?, _ blocks: UnsafeMutablePointer<Int64>?,
                              _ kind: UnsafeMutablePointer<Int32>?, _ dim: UnsafeMutablePointer<Int64>?,
                              _ values: UnsafeMutablePointer<Int64>?) -> Int32 {
    guarded {
        let h = try handle(r)
        blocks?.pointee = Int64(h.blockCount)
        kind?.pointee = h.report.header.model.bottleneck == .fsq ? 0 : 1
        dim?.pointee = Int64(h.tokenDim)
        values?.pointee = Int64(h.valueOffsets.last ?? 0)
    }
}

/// Block `i`'s figures (0 ≤ i < blocks).
@_cdecl("etok_reader_block")
public func etok_reader_block(_ r: OpaquePointer?, _ i: Int64, _ out: UnsafeMutableRawPointer?) -> Int32 {
    guarded {
        let h = try handle(r)
        guard let out else { throw CABIError.argument("out is NULL") }
        guard i >= 0, i < h.blockCount else { throw CABIError.argument("block \(i) is out of range 0..<\(h.blockCount)") }
        let b = h.report.blocks[Int(i)]
        out.assumingMemoryBound(to: EtokBlockInfo.self).pointee = EtokBlockInfo(index: Int64(b.index), chunk: Int64(b.chunk), pts: b.record.pts, seconds: h.seconds[Int(i)],
                                    mse: b.measuredMSE ?? -1, valueOffset: Int64(h.valueOffsets[Int(i)]),
                                    valueCount: Int64(b.tokens.valueCount), kept: Int32(b.record.kept),
                                    frames: Int32(b.record.frames))
    }
}

/// Copies blocks `first ..< first + count`'s values into `dst` (int32 for FSQ, float32 for VAE),
/// which holds `capacity` values; the values needed are the difference of the blocks' offsets.
@_cdecl("etok_reader_copy_tokens")
public func etok_reader_copy_tokens(_ r: OpaquePointer?, _ first: Int64, _ count: Int64,
                                    _ dst: UnsafeMutableRawPointer?, _ capacity: Int64) -> Int32 {
    guarded {
        let h = try handle(r)
        guard first >= 0, count >= 0, first + count <= h.blockCount else {
            throw CABIError.argument("blocks \(first)..<\(first + count) are out of range 0..<\(h.blockCount)")
        }
        let needed = h.valueOffsets[Int(first + count)] - h.valueOffsets[Int(first)]
        guard needed <= capacity else { throw CABIError.argument("buffer holds \(capacity) values, \(needed) needed") }
        guard let dst else { if needed == 0 { return }; throw CABIError.argument("dst is NULL") }
        // One memcpy per block: the blocks' arrays are separate.
        var at = 0
        // A repeat block (kept 0, docs/etok-format.md §5) has no values and nothing to copy.
        for b in h.report.blocks[Int(first)..<Int(first + count)] where b.tokens.valueCount > 0 {
            switch b.tokens {
            case .fsq(let t): t.withUnsafeBytes { (dst + at * 4).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            case .vae(let v): v.withUnsafeBytes { (dst + at * 4).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            }
            at += b.tokens.valueCount
        }
    }
}

/// Copies every block's figures at once into caller arrays of `blocks` entries (any may be NULL):
/// kept counts, frames, stream indices, chunks (named by first block), start seconds and measured
/// MSE (−1: not measured). One call instead of one per block, for bindings.
@_cdecl("etok_reader_copy_blocks")
public func etok_reader_copy_blocks(_ r: OpaquePointer?, _ kept: UnsafeMutablePointer<Int32>?,
                                    _ frames: UnsafeMutablePointer<Int32>?, _ index: UnsafeMutablePointer<Int64>?,
                                    _ chunk: UnsafeMutablePointer<Int64>?, _ seconds: UnsafeMutablePointer<Double>?,
                                    _ mse: UnsafeMutablePointer<Double>?) -> Int32 {
    guarded {
        let h = try handle(r)
        for (i, b) in h.report.blocks.enumerated() {
            kept?[i] = Int32(b.record.kept)
            frames?[i] = Int32(b.record.frames)
            index?[i] = Int64(b.index)
            chunk?[i] = Int64(b.chunk)
            seconds?[i] = h.seconds[i]
            mse?[i] = b.measuredMSE ?? -1
        }
    }
}

/// The position (0 ..< blocks) of the block showing time `t` (seconds on the stream's clock): the
/// last block starting at or before `t`, the first block when `t` is earlier; −1 when no block is
/// readable. Binary search over the block times (the chunks were located through the index).
@_cdecl("etok_reader_seek")
public func etok_reader_seek(_ r: OpaquePointer?, _ t: Double) -> Int64 {
    guard let h = try? handle(r), !h.seconds.isEmpty else { return -1 }
    var lo = 0, hi = h.seconds.count   // first position whose start is after t
    while lo < hi {
        let mid = (lo + hi) / 2
        if h.seconds[mid] <= t { lo = mid + 1 } else { hi = mid }
    }
    return Int64(max(0, lo - 1))
}
