import EtokFormat
import Foundation

/// Everything `etok info` and `etok export` tell about an `.etok` stream, read without the model:
/// the header, every readable block and its tokens, and the file's health.
public struct StreamReport: Sendable {
    /// The file name used in messages ("stdin" for `-`).
    public var file: String
    public var header: EtokHeader
    /// The file's size; for stdin, every byte read from it.
    public var fileBytes: Int
    /// Every readable block, in stream order, with its kept tokens.
    public var blocks: [Block]
    /// Truncation, damaged records, whether the index was present and valid.
    public var health: EtokHealth
    /// The damaged ranges, in stream order, each with the blocks lost and why (`ChunkWalk`): empty
    /// exactly when nothing is wrong with the stream.
    public var damage: [DamagedRange]

    /// One block as stored.
    public struct Block: Sendable {
        public var index: Int
        /// The chunk it belongs to, named by the chunk's first block (the context resets there).
        public var chunk: Int
        public var record: BlockRecord
        public var tokens: BlockTokens

        /// The reconstruction MSE the encoder measured, or nil when the block records none: a
        /// negative `mse` means "not measured" (imported tokens, docs/etok-format.md §5), and a value
        /// that is not a finite number counts as none too.
        public var measuredMSE: Double? {
            let mse = Double(record.mse)
            return mse.isFinite && mse >= 0 ? mse : nil
        }

        /// The PSNR (dB) of `measuredMSE`; nil when not measured.
        public var measuredPSNR: Double? { measuredMSE.map { psnr(mse: $0) } }
    }

    /// Whether `block` is a repeat block (docs/etok-format.md §5): kept 0 in a stream that
    /// declares them; it counts as 0 tokens everywhere.
    public func isRepeat(_ block: Block) -> Bool { block.record.kept == 0 && header.encoding.declaresRepeats }
    /// Repeat blocks in the stream.
    public var repeatBlocks: Int { blocks.filter(isRepeat).count }
    /// Share of the blocks that are repeats (0 for no blocks).
    public var repeatShare: Double { blocks.isEmpty ? 0 : Double(repeatBlocks) / Double(blocks.count) }

    /// Reads the whole stream at `path` (`-` reads stdin front to back, to its end), checking every
    /// record's CRC and every chunk's token data. Damage is reported, not thrown: see `health` and
    /// `damage`, the same for a file and for the same bytes on stdin.
    /// - Throws: `FormatError` when nothing is readable (no such file, not an .etok file, damaged header).
    public static func read(path: String) throws -> StreamReport {
        let source = try ChunkSource.open(path)
        let walk = source.walk()
        var blocks: [Block] = []
        while let step = try walk.next() {
            guard case .chunk(let chunk) = step else { continue }  // damage: `walk.damage`
            for (k, record) in chunk.blocks.enumerated() {
                blocks.append(Block(index: chunk.firstBlock + k, chunk: chunk.firstBlock, record: record,
                                    tokens: chunk.tokens[block: k]))
            }
        }
        try source.readToEnd()
        return StreamReport(file: source.fileName, header: source.header, fileBytes: source.bytesRead, blocks: blocks,
                            health: walk.health, damage: walk.damage)
    }

    // MARK: Statistics

    public var frames: Int { blocks.reduce(0) { $0 + $1.record.frames } }
    public var tokens: Int { blocks.reduce(0) { $0 + $1.record.kept } }
    public var maxTokens: Int { header.model.maxToks }
    public var meanTokens: Double { blocks.isEmpty ? 0 : Double(tokens) / Double(blocks.count) }
    public var minKept: Int { blocks.map(\.record.kept).min() ?? 0 }
    public var maxKept: Int { blocks.map(\.record.kept).max() ?? 0 }
    /// Share of tokens saved against keeping `max_toks` for every block.
    public var savings: Double { blocks.isEmpty ? 0 : 1 - meanTokens / Double(maxTokens) }
    /// File bits per kept token (everything in the file, headers and index included).
    public var bitsPerToken: Double { tokens == 0 ? 0 : Double(fileBytes * 8) / Double(tokens) }
    /// Blocks with a measured MSE (all of an encoded stream, none of an imported one).
    public var measuredBlocks: Int { blocks.filter { $0.measuredMSE != nil }.count }
    /// Mean PSNR over the blocks with a measured MSE; nil when none has one.
    public var meanPSNR: Double? {
        let values = blocks.compactMap(\.measuredPSNR)
        return values.isEmpty ? nil : values.reduce(0, +) / Double(values.count)
    }
    /// Whether `block`'s measured MSE meets the header's threshold; nil when it was not measured.
    public func meetsThreshold(_ block: Block) -> Bool? {
        block.measuredMSE.map { $0 <= header.encoding.threshold }
    }
    /// Share of the blocks with a measured MSE that meet the header's threshold; nil when none has one.
    public var shareMeetingThreshold: Double? {
        let measured = blocks.compactMap(meetsThreshold)
        return measured.isEmpty ? nil : Double(measured.filter { $0 }.count) / Double(measured.count)
    }
    /// Seconds of a pts in the source time base.
    public func seconds(_ pts: Int64) -> Double {
        header.source.timeBase.seconds(pts)
    }

    /// The report as a JSON-ready dictionary (`etok info --json`, the C reader's header JSON), with
    /// `rate_control` for a stream encoded under rate control. Numbers that are absent or not
    /// finite (an unmeasured block's MSE and PSNR, the means when no block was measured) are
    /// `null`: JSONSerialization never sees NaN or infinity.
    public func jsonObject(includeBlocks: Bool) -> [String: Any] {
        func number(_ value: Double?) -> Any {
            guard let value, value.isFinite else { return NSNull() }
            return value
        }
        let h = header
        var object: [String: Any] = [
            "file": file,
            "bytes": fileBytes,
            "model": [
                "name": h.model.name, "sha256": h.model.sha256, "image_size": h.model.imageSize,
                "patch_size": h.model.patchSize, "frames_per_block": h.model.framesPerBlock,
                "min_toks": h.model.minToks, "max_toks": h.model.maxToks, "bottleneck": h.model.bottleneck.rawValue,
                "context_blocks": h.model.contextBlocks as Any,
                "fsq_quant_levels": h.model.fsqQuantLevels as Any, "vae_bottleneck_dim": h.model.vaeBottleneckDim as Any,
                // FSQ: tokens are indices in 0 ..< vocabulary_size (the product of the levels).
                "vocabulary_size": h.model.bottleneck == .fsq ? h.fsqCodebookSize as Any : NSNull(),
            ] as [String: Any],
            "etok_version": h.etokVersion as Any,
            "encoding": [
                "threshold": number(h.encoding.threshold), "search": h.encoding.search.rawValue,
                "fixed_tokens": h.encoding.fixedTokens as Any, "fit": h.encoding.fit?.rawValue as Any,
                "fps": number(h.encoding.fps), "chunk_blocks": h.encoding.chunkBlocks,
                "token_coding": h.encoding.tokenCoding.rawValue,
                "repeat_blocks": h.encoding.declaresRepeats,
                "precision": h.encoding.precision ?? "fp32",   // §4: an absent key means fp32
            ] as [String: Any],
            "source": [
                "name": h.source.name as Any, "width": h.source.width as Any, "height": h.source.height as Any,
                "time_base": [h.source.timeBase.num, h.source.timeBase.den],
                "fps": h.source.fps.map { [$0.num, $0.den] } as Any,
                "duration": number(h.source.duration),
            ] as [String: Any],
            "blocks": blocks.count,
            "repeat_blocks": ["count": repeatBlocks, "share": number(repeatShare)] as [String: Any],
            "frames": frames,
            "tokens": ["total": tokens, "mean": number(meanTokens), "min": minKept, "max": maxKept] as [String: Any],
            "max_tokens": maxTokens,
            "threshold": number(h.encoding.threshold),
            "savings": number(savings),
            "bits_per_token": number(bitsPerToken),
            "measured_blocks": measuredBlocks,
            "mean_psnr": number(meanPSNR),
            "share_meeting_threshold": number(shareMeetingThreshold),
            "health": [
                "complete": health.isComplete,
                "truncated": health.isTruncated,
                "truncated_at": health.truncatedAt as Any,
                "index": health.hasValidIndex,
                "crc_failures": health.crcFailures.map(\.description),
                "damage": health.damage.map(\.description),
                "damaged_ranges": damage.map { r -> [String: Any] in
                    ["first_block": r.firstBlock, "end_block": r.endBlock as Any, "blocks": r.blocksText,
                     "reason": r.reason.problem]
                },
            ] as [String: Any],
        ]
        if let rate = rateControl {   // the target and what the readable blocks achieved
            object["rate_control"] = ["mode": rate.mode, "target": rate.target, "achieved": rate.achieved,
                                      "max_tokens_per_chunk": rate.maxTokensPerChunk as Any,
                                      "largest_chunk": rate.largestChunk, "media_seconds": rate.mediaSeconds,
                                      "objective": rate.objective] as [String: Any]
        }
        if includeBlocks {
            object["per_block"] = blocks.map { b -> [String: Any] in
                ["block": b.index, "pts": b.record.pts, "seconds": number(seconds(b.record.pts)), "frames": b.record.frames,
                 "kept": b.record.kept, "repeat": isRepeat(b), "mse": number(b.measuredMSE), "psnr": number(b.measuredPSNR)]
            }
        }
        return object
    }
}
