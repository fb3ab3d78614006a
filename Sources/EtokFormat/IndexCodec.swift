/// The `INDX` payload and the `TAIL` record (§7).
///
/// Pure functions; `Sendable`. Cost: linear in the number of chunks.
enum IndexCodec {
    /// The `INDX` payload for `entries`: `count` (u32), then 28 bytes per entry. Deterministic.
    static func payload(_ entries: [IndexEntry]) -> [UInt8] {
        var w = ByteWriter(capacity: 4 + EtokFormat.indexEntrySize * entries.count)
        w.u32(UInt32(entries.count))
        for e in entries {
            w.u64(UInt64(e.offset))
            w.u64(UInt64(e.firstBlock))
            w.u32(UInt32(e.blockCount))
            w.i64(e.firstPts)
        }
        return w.bytes
    }

    /// The whole 20-byte `TAIL` record pointing at the `INDX` record at `indexOffset`.
    static func tail(indexOffset: Int) -> [UInt8] {
        var w = ByteWriter(capacity: 8)
        w.u64(UInt64(indexOffset))
        return RecordType.frame(RecordType.tail, w.bytes)
    }

    /// Parses an `INDX` payload (CRC already checked) and checks it is well formed: exact length,
    /// offsets past the preamble and strictly increasing, blocks consecutive from 0, counts in range.
    static func parse(_ payload: [UInt8], header: EtokHeader, offset: Int, file: String) throws(FormatError) -> [IndexEntry] {
        func bad(_ message: String) -> FormatError { .badIndex(file: file, offset: offset, message: message) }
        var r = ByteReader(payload)
        let count = Int(r.u32())
        if r.overrun || count > (payload.count - 4) / EtokFormat.indexEntrySize
            || payload.count != 4 + count * EtokFormat.indexEntrySize {
            throw bad("count \(count) does not match a payload of \(payload.count) bytes")
        }
        var entries: [IndexEntry] = []
        entries.reserveCapacity(count)
        var nextBlock = 0
        var lastOffset = EtokFormat.preambleSize
        for i in 0..<count {
            let off = r.u64(), first = r.u64(), n = r.u32(), pts = r.i64()
            if off <= UInt64(lastOffset) || off >= UInt64(offset) {
                throw bad("entry \(i): offset \(off) is not between the previous chunk and the index")
            }
            if first != UInt64(nextBlock) {
                throw bad("entry \(i): first_block \(first), expected \(nextBlock)")
            }
            if n < 1 || Int(n) > header.encoding.chunkBlocks {
                throw bad("entry \(i): block_count \(n) outside 1 to \(header.encoding.chunkBlocks)")
            }
            let e = IndexEntry(offset: Int(off), firstBlock: nextBlock, blockCount: Int(n), firstPts: pts)
            entries.append(e)
            lastOffset = e.offset
            nextBlock += e.blockCount
        }
        return entries
    }

    /// Why an index disagrees with the chunks found by a scan, or nil if every scanned chunk is in
    /// the index as it is in the file. (The index may list more: chunks that were damaged.)
    static func disagreement(index: [IndexEntry], scanned: [IndexEntry]) -> String? {
        var byOffset: [Int: IndexEntry] = [:]
        for e in index { byOffset[e.offset] = e }
        for e in scanned where byOffset[e.offset] != e {
            return "chunk at offset \(e.offset) (\(BlockRangeText.blocks(e.firstBlock, e.firstBlock + e.blockCount))) is not in the index as found"
        }
        return nil
    }
}
