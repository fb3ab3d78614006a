/// Serialises and parses `CHNK` payloads (§5) and their token data (§6) against a header.
///
/// Pure functions; `Sendable`. Cost: linear in the payload (token coding dominates, §6.3).
enum ChunkCodec {
    /// Checks a chunk the caller wants written against the header and the format's limits (§5, §6).
    static func validate(_ chunk: Chunk, header: EtokHeader, file: String) throws(FormatError) {
        func bad(_ message: String) -> FormatError { .invalidInput(file: file, message: message) }
        let m = header.model
        let n = chunk.blocks.count
        if n < 1 || n > header.encoding.chunkBlocks {
            throw bad("chunk at block \(chunk.firstBlock) has \(n) blocks, expected 1 to \(header.encoding.chunkBlocks)")
        }
        if chunk.firstBlock < 0 { throw bad("negative first block \(chunk.firstBlock)") }
        if chunk.tokens.blockCount != n { throw bad("chunk has \(n) blocks but tokens for \(chunk.tokens.blockCount)") }
        var total = 0
        for (k, b) in chunk.blocks.enumerated() {
            if let problem = keptProblem(b.kept, block: chunk.firstBlock + k, header: header) {
                throw bad("block \(chunk.firstBlock + k) \(problem)")
            }
            if b.frames < 1 || b.frames > m.framesPerBlock {
                throw bad("block \(chunk.firstBlock + k) has \(b.frames) frames, outside 1 to \(m.framesPerBlock)")
            }
            total += b.kept
        }
        if total > EtokFormat.maxTokensPerChunk {
            throw bad("chunk holds \(total) tokens, more than \(EtokFormat.maxTokensPerChunk)")
        }
        switch (chunk.tokens, m.bottleneck) {
        case (.fsq(let blocks), .fsq):
            let size = header.fsqCodebookSize
            for (k, tokens) in blocks.enumerated() {
                if tokens.count != chunk.blocks[k].kept {
                    throw bad("block \(chunk.firstBlock + k) has \(tokens.count) tokens but keeps \(chunk.blocks[k].kept)")
                }
                if let bad = tokens.first(where: { $0 < 0 || Int($0) >= size }) {
                    throw FormatError.invalidInput(file: file, message: "block \(chunk.firstBlock + k): FSQ index \(bad) outside 0 to \(size - 1)")
                }
            }
        case (.vae(let blocks), .vae):
            let dim = header.valuesPerToken
            for (k, values) in blocks.enumerated() {
                if values.count != chunk.blocks[k].kept * dim {
                    throw bad("block \(chunk.firstBlock + k) has \(values.count) values, expected kept × \(dim)")
                }
                if let i = values.firstIndex(where: { !Float16Bits.round($0).isFinite }) {
                    throw bad("block \(chunk.firstBlock + k) value \(i) (\(values[i])) does not fit binary16 (|x| < 65520), how VAE latents are stored")
                }
            }
        default:
            throw bad("tokens do not match the model's bottleneck (\(m.bottleneck.rawValue))")
        }
    }

    /// What is wrong with a block at chunk position `position` keeping `kept` tokens (§5), or nil:
    /// `min_toks` … `max_toks`, or 0 for a repeat block when the header declares them (§4
    /// `repeat_blocks`), except for the stream's block 0 (`block`), which has no earlier frame to
    /// repeat. A chunk may begin with repeats of the previous chunk's last frame (§5).
    static func keptProblem(_ kept: Int, block: Int, header: EtokHeader) -> String? {
        let m = header.model
        if kept == 0 && header.encoding.declaresRepeats {
            return block == 0 ? "keeps 0 tokens (a repeat block) but starts the stream, where nothing precedes it" : nil
        }
        if kept < m.minToks || kept > m.maxToks {
            return "keeps \(kept) tokens, outside \(m.minToks) to \(m.maxToks)"
                + (kept == 0 ? " (the header does not declare repeat blocks)" : "")
        }
        return nil
    }

    /// The `CHNK` payload of a chunk already checked with `validate` (§5, §6). Deterministic.
    static func payload(_ chunk: Chunk, header: EtokHeader) -> [UInt8] {
        let tokenData: [UInt8]
        switch chunk.tokens {
        case .fsq(let blocks):
            tokenData = FSQTokenCoder.encode(blocks: blocks, levels: header.fsqLevels, width: header.tokenGridWidth,
                                             repeats: header.encoding.declaresRepeats)
        case .vae(let blocks):
            var w = ByteWriter(capacity: blocks.reduce(0) { $0 + 2 * $1.count })
            for values in blocks { for v in values { w.u16(Float16Bits.bits(v)) } }
            tokenData = w.bytes
        }
        var w = ByteWriter(capacity: 16 + EtokFormat.blockEntrySize * chunk.blocks.count + tokenData.count)
        w.u64(UInt64(chunk.firstBlock))
        w.u32(UInt32(chunk.blocks.count))
        for b in chunk.blocks {
            w.u16(UInt16(b.kept))
            w.u16(UInt16(b.frames))
            w.i64(b.pts)
            w.f32(b.mse)
        }
        w.u32(UInt32(tokenData.count))
        w.raw(tokenData)
        return w.bytes
    }

    /// The fields of a `CHNK` payload before its block table: enough to index it (§5, §7).
    struct Summary: Equatable {
        var firstBlock: Int
        var blockCount: Int
        var firstPts: Int64
    }

    /// Largest `first_block` accepted, so block arithmetic never overflows.
    static let maxFirstBlock = 1 << 48

    /// Reads and range-checks `first_block`, `block_count` and the first `pts` (§5).
    static func summary(_ payload: [UInt8], header: EtokHeader, offset: Int, file: String) throws(FormatError) -> Summary {
        var r = ByteReader(payload)
        let first = r.u64()
        let count = r.u32()
        _ = r.u32()  // first block's kept and frames
        let pts = r.i64()
        if r.overrun { throw .chunkOutOfRange(file: file, offset: offset, message: "payload of \(payload.count) bytes is too short") }
        if first > UInt64(maxFirstBlock) {
            throw .chunkOutOfRange(file: file, offset: offset, message: "first_block \(first) is absurd")
        }
        if count < 1 || Int(count) > header.encoding.chunkBlocks {
            throw .chunkOutOfRange(file: file, offset: offset, message: "block_count \(count) outside 1 to \(header.encoding.chunkBlocks)")
        }
        return Summary(firstBlock: Int(first), blockCount: Int(count), firstPts: pts)
    }

    /// Parses a whole `CHNK` payload (its CRC already checked) into a chunk, checking every field
    /// against the header (§5) and the token data against the block table (§6).
    static func parse(_ payload: [UInt8], header: EtokHeader, offset: Int, file: String) throws(FormatError) -> Chunk {
        let s = try summary(payload, header: header, offset: offset, file: file)
        func outOfRange(_ message: String) -> FormatError { .chunkOutOfRange(file: file, offset: offset, message: message) }
        var r = ByteReader(payload, position: 12)
        if r.remaining < s.blockCount * EtokFormat.blockEntrySize + 4 {
            throw outOfRange("block_count \(s.blockCount) does not fit a payload of \(payload.count) bytes")
        }
        let m = header.model
        var blocks: [BlockRecord] = []
        blocks.reserveCapacity(s.blockCount)
        var total = 0
        for k in 0..<s.blockCount {
            let b = BlockRecord(kept: Int(r.u16()), frames: Int(r.u16()), pts: r.i64(), mse: r.f32())
            if let problem = keptProblem(b.kept, block: Int(s.firstBlock) + k, header: header) {
                throw outOfRange("block \(s.firstBlock + k) \(problem)")
            }
            if b.frames < 1 || b.frames > m.framesPerBlock {
                throw outOfRange("block \(s.firstBlock + k) frames \(b.frames) outside 1 to \(m.framesPerBlock)")
            }
            total += b.kept
            blocks.append(b)
        }
        if total > EtokFormat.maxTokensPerChunk {
            throw outOfRange("\(total) tokens, more than \(EtokFormat.maxTokensPerChunk)")
        }
        let tokenBytes = Int(r.u32())
        if r.overrun || tokenBytes != r.remaining {
            throw .tokenDataOverrun(file: file, offset: offset,
                                    message: "token_bytes \(tokenBytes) but \(r.remaining) bytes follow in the payload")
        }
        let start = r.position
        let kept = blocks.map(\.kept)
        switch m.bottleneck {
        case .fsq:
            let decoded = FSQTokenCoder.decode(payload, start: start, end: payload.count, kept: kept,
                                               levels: header.fsqLevels, width: header.tokenGridWidth,
                                               repeats: header.encoding.declaresRepeats)
            switch decoded {
            case .success(let tokens):
                return Chunk(firstBlock: s.firstBlock, blocks: blocks, tokens: .fsq(tokens))
            case .failure(.overrun(let block)):
                throw .tokenDataOverrun(file: file, offset: offset,
                                        message: "range decoder ran past token_bytes in block \(s.firstBlock + block)")
            case .failure(.trailingBytes(let n)):
                throw .tokenDataOverrun(file: file, offset: offset, message: "\(n) token bytes left after the last token")
            }
        case .vae:
            let dim = header.valuesPerToken
            if total * dim * 2 != tokenBytes {
                throw .tokenDataOverrun(file: file, offset: offset,
                                        message: "token_bytes \(tokenBytes), expected \(total) tokens × \(dim) × 2")
            }
            var out: [[Float]] = []
            out.reserveCapacity(blocks.count)
            for (k, n) in kept.enumerated() {
                var values = [Float](repeating: 0, count: n * dim)
                for i in 0..<values.count {
                    let bits = r.u16()
                    // Exponent all ones: infinity or NaN, which no writer stores (§6.2).
                    if bits & 0x7C00 == 0x7C00 {
                        throw .tokenDataOverrun(file: file, offset: offset,
                                                message: "block \(s.firstBlock + k) value \(i) is not a finite number (f16 bits 0x\(String(bits, radix: 16, uppercase: true)))")
                    }
                    values[i] = Float16Bits.float(bits)
                }
                out.append(values)
            }
            return Chunk(firstBlock: s.firstBlock, blocks: blocks, tokens: .vae(out))
        }
    }
}
