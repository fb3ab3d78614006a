import EtokFormat
import EtokIO

/// What `etok export` does: the token sequences of a read `.etok` stream as .npy arrays or JSON
/// lines, the layouts `TokenImport` reads back (docs: `etok export --help`).
///
/// npy: `lengths.npy` (int32, kept tokens per block), `tokens.npy` (the kept tokens of all blocks
/// concatenated: int32 FSQ indices, or float32 (N, dim) VAE latents), `pts.npy` (float64 seconds),
/// `blocks.npy` (int64, each block's index in the stream), `frames.npy` (int32, frames per block)
/// and `chunks.npy` (int64, each block's chunk, named by its first block). jsonl: one object per
/// block, `{"block", "chunk", "time", "frames", "kept", "tokens"}`. A repeat block (docs/etok-format.md
/// §5) is a block with kept 0 and no tokens (an empty list; nothing in `tokens.npy`).
public enum TokenExport {
    /// The layouts: a folder of .npy files, JSON lines, or WebDataset tar shards
    /// (`TokenExport+Shards.swift`).
    public enum Format: String, CaseIterable, Sendable { case npy, jsonl, tar }

    /// The files of an npy export, in the order written.
    public static let npyFiles = ["lengths.npy", "tokens.npy", "pts.npy", "blocks.npy", "frames.npy", "chunks.npy"]

    /// The arrays of an npy export of `r`, in the order of `npyFiles`.
    public static func npyArrays(_ r: StreamReport) -> [NPYArray] {
        let tokens: NPYArray
        if r.header.model.bottleneck == .fsq {
            let t = r.blocks.flatMap { b -> [Int32] in if case .fsq(let t) = b.tokens { t } else { [] } }
            tokens = NPYArray(shape: [t.count], int32: t)
        } else {
            let dim = r.header.model.vaeBottleneckDim ?? 1
            let values = r.blocks.flatMap { b -> [Float] in if case .vae(let v) = b.tokens { v } else { [] } }
            tokens = NPYArray(shape: [values.count / max(1, dim), dim], floats: values)
        }
        return [NPYArray(shape: [r.blocks.count], int32: r.blocks.map { Int32($0.record.kept) }), tokens,
                NPYArray(doubles: r.blocks.map { r.seconds($0.record.pts) }),
                NPYArray(int64: r.blocks.map { Int64($0.index) }),
                NPYArray(shape: [r.blocks.count], int32: r.blocks.map { Int32($0.record.frames) }),
                NPYArray(int64: r.blocks.map { Int64($0.chunk) })]
    }

    /// Writes the npy export of `r` into `folder` (made with `npyFiles`) and commits it.
    public static func writeNPY(_ r: StreamReport, to folder: FolderPlacement) throws {
        try folder.writeWhole(npyArrays(r).map { $0.encoded() })
    }

    /// The JSON line (with its newline) of the block at `i` in `r`.
    public static func jsonLine(_ r: StreamReport, block i: Int) -> String {
        let b = r.blocks[i]
        let tokens: String
        switch b.tokens {
        case .fsq(let t): tokens = "[" + t.map(String.init).joined(separator: ",") + "]"
        case .vae(let v): tokens = "[" + v.map { "\($0)" }.joined(separator: ",") + "]"
        }
        return "{\"block\":\(b.index),\"chunk\":\(b.chunk),\"time\":\(r.seconds(b.record.pts)),\"frames\":\(b.record.frames),"
            + "\"kept\":\(b.record.kept),\"tokens\":\(tokens)}\n"
    }

    /// Writes the JSON lines of `r` to `output` (about 64 KiB per write) and commits it.
    public static func writeJSONL(_ r: StreamReport, to output: OutputPlacement) throws {
        do {
            let sink = try FileSink(output)
            var pending: [UInt8] = []
            for i in r.blocks.indices {
                pending += jsonLine(r, block: i).utf8
                if pending.count >= 1 << 16 {
                    try sink.write(pending)
                    pending.removeAll(keepingCapacity: true)
                }
            }
            try sink.write(pending)
            try sink.close()
            try output.commit()
        } catch {
            output.discard()
            throw error
        }
    }
}
