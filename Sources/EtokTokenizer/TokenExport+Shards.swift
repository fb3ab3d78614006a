import EtokFormat
import EtokIO
import Foundation

/// `etok export` over many `.etok` files into WebDataset-style tar shards: one sample per clip,
/// whose members are the npy export's arrays (`KEY.lengths.npy`, `KEY.tokens.npy`, `KEY.pts.npy`,
/// `KEY.blocks.npy`, `KEY.frames.npy`, `KEY.chunks.npy`, the layouts of `TokenExport.npyArrays`)
/// and `KEY.json` (the clip's metadata: `sampleMetadata`), plus `index.json` listing the shards.
extension TokenExport {
    /// The sample key of the `n`-th clip of an export whose file is `path`: `NNNNNNNN_NAME`, the
    /// clip's position (8 digits, so keys sort in input order and never collide) and its file name
    /// with every character but letters, digits, `-` and `_` made `_` (at most 60): no dot, since
    /// WebDataset takes a member's key as its name up to the first dot.
    public static func sampleKey(_ n: Int, path: String) -> String {
        let base = path == "-" ? "stdin" : URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        let safe = String(base.unicodeScalars.map { s -> Character in
            s.isASCII && (CharacterSet.alphanumerics.contains(s) || s == "-" || s == "_") ? Character(s) : "_"
        }.prefix(60))
        return String(format: "%08d_", n) + safe
    }

    /// The members of the sample of `r` under `key`: the six arrays, then the metadata JSON.
    public static func sampleMembers(_ r: StreamReport, key: String, source: String) throws -> [(name: String, data: [UInt8])] {
        var members = zip(npyFiles, npyArrays(r)).map { (name: "\(key).\($0)", data: $1.encoded()) }
        let json = try JSONSerialization.data(withJSONObject: sampleMetadata(r, key: key, source: source),
                                              options: [.sortedKeys, .withoutEscapingSlashes])
        members.append((name: "\(key).json", data: Array(json) + [0x0A]))
        return members
    }

    /// A sample's `.json`: `key`, `source` (the .etok path as given), `source_name` (the video it was
    /// made from), `model` and `model_sha256`, `threshold` (MSE) and `threshold_psnr` (dB),
    /// `frames`, `blocks`, `tokens`, `frames_per_block`, `bottleneck`, and `psnr`: each block's
    /// measured PSNR in dB (one frame per block with the default model; null where not measured,
    /// as for imported tokens).
    public static func sampleMetadata(_ r: StreamReport, key: String, source: String) -> [String: Any] {
        let h = r.header
        func number(_ value: Double?) -> Any { value.flatMap { $0.isFinite ? $0 : nil } ?? NSNull() }
        return [
            "key": key, "source": source, "source_name": h.source.name as Any,
            "model": h.model.name, "model_sha256": h.model.sha256,
            "threshold": number(h.encoding.threshold), "threshold_psnr": number(psnr(mse: h.encoding.threshold)),
            "frames": r.frames, "blocks": r.blocks.count, "tokens": r.tokens,
            "frames_per_block": h.model.framesPerBlock, "bottleneck": h.model.bottleneck.rawValue,
            "psnr": r.blocks.map { number($0.measuredPSNR) },
        ]
    }

    /// `index.json` of a sharded export: the shards in order, each with its file, bytes and keys,
    /// and the totals.
    public static func shardIndex(_ shards: [TarShardWriter.Shard], shardSize: Int) throws -> [UInt8] {
        let object: [String: Any] = [
            "format": "webdataset", "shard_size": shardSize,
            "samples": shards.reduce(0) { $0 + $1.keys.count },
            "shards": shards.map { ["file": $0.file, "bytes": $0.bytes, "samples": $0.keys.count, "keys": $0.keys] as [String: Any] },
        ]
        let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        return Array(data) + [0x0A]
    }
}

/// What a dataset export did.
public struct DatasetExportResult: Sendable {
    public var clips = 0
    public var tokens = 0
    /// The tar shards written (empty for npy folders).
    public var shards: [TarShardWriter.Shard] = []
    /// The inputs left out, with why, in input order.
    public var failures: [(path: String, error: any Error)] = []
}

extension TokenExport {
    /// Exports many `.etok` files into `folder` (created if missing): tar shards of at most
    /// `shardSize` bytes plus `index.json` (`format == .tar`), or an npy folder per clip at
    /// `BatchItem.outputPath(for:suffix: "")` (`.npy`). One clip at a time (memory: one clip's
    /// report and sample). A clip that cannot be read, or that `accept` refuses (damage policy),
    /// is passed to `failed` and left out; an `OutputError` (the folder's problem, which every later
    /// clip would meet) stops the export and removes the shard being written. `stop` is asked
    /// before each clip (an interrupt).
    public static func writeDataset(paths: [String], folder: String, format: Format, shardSize: Int, overwrite: Bool,
                                    accept: (StreamReport) throws -> Void = { _ in },
                                    failed: (String, any Error) -> Void = { _, _ in },
                                    stop: () -> Bool = { false }) throws -> DatasetExportResult {
        let base = folder.hasSuffix("/") ? folder : folder + "/"
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        let writer = TarShardWriter(folder: base, shardSize: shardSize, overwrite: overwrite)
        var result = DatasetExportResult()
        for (n, path) in paths.enumerated() where !stop() {
            do {
                let report = try StreamReport.read(path: path)
                try accept(report)
                if format == .tar {
                    let key = sampleKey(n, path: path)
                    try writer.add(key: key, members: try sampleMembers(report, key: key, source: path))
                } else {
                    try writeNPY(report, to: FolderPlacement(folder: base + BatchItem.outputPath(for: path, suffix: ""),
                                                             names: npyFiles, overwrite: overwrite, createParents: true))
                }
                result.clips += 1
                result.tokens += report.tokens
            } catch let error as OutputError {
                writer.discard()
                throw error
            } catch {
                result.failures.append((path, error))
                failed(path, error)
            }
        }
        if format == .tar {
            result.shards = try writer.finish()
            try OutputPlacement(path: base + "index.json", overwrite: true)
                .writeWhole(try shardIndex(result.shards, shardSize: shardSize))
        }
        return result
    }
}
