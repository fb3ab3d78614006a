/// The largest payload a reader accepts for each record type (§3 "Reader limits"), so that a length
/// field, damaged or hostile, cannot make it buffer more than the model and the settings allow:
/// every byte of a record is held until its CRC is checked, and a pipe cannot seek back. A longer
/// record is damage, found as a bad CRC is (the scan resynchronises after it).
///
/// A value type computed once from the header; `Sendable`.
struct RecordLimits: Sendable {
    /// `HEAD`: the JSON header (a real one is under a kilobyte).
    static let head = 1 << 20
    /// A record of a type this reader does not know (§3: skipped once its CRC is checked).
    static let unknown = 1 << 20
    /// The smallest `CHNK` record: framing, one block, no token data (§5).
    static let minChunkRecord = EtokFormat.recordOverhead + 16 + EtokFormat.blockEntrySize
    /// Bits the FSQ coding spends on one digit at most (§6.3): up to 4 binary decisions, each at most
    /// 12 bits since every probability is at least 1/4096, or 3 decisions and a uniform value of at
    /// most 4 bits. 64 leaves room for the range coder's rounding.
    static let maxBitsPerDigit = 64

    /// The largest `CHNK` payload the header allows: the table of `chunk_blocks` blocks and the
    /// token data of `chunk_blocks × max_toks` tokens (at most 2^24, §5) at the most each coding spends.
    let chunk: Int

    init(header: EtokHeader) {
        let tokens = min(EtokFormat.maxTokensPerChunk, header.encoding.chunkBlocks.multipliedReportingOverflow(by: header.model.maxToks).partialValue)
        let perToken = header.model.bottleneck == .fsq
            ? header.fsqLevels.count * RecordLimits.maxBitsPerDigit / 8
            : 2 * header.valuesPerToken
        let table = 16 + EtokFormat.blockEntrySize * min(header.encoding.chunkBlocks, EtokFormat.maxPayloadLength)
        // Each term is below 2^36, so the sum cannot overflow; the format's 2^30 caps it.
        chunk = min(EtokFormat.maxPayloadLength, table + tokens * perToken + 16)
    }

    /// The largest payload accepted for a record of `type` starting at `offset`, the stream's records
    /// having started at `headEnd`. `INDX` holds 28 bytes per chunk written before it, and every chunk
    /// record is at least `minChunkRecord` bytes, so it cannot be larger than that share of the data
    /// before it.
    func maxPayload(type: ArraySlice<UInt8>, offset: Int, headEnd: Int) -> Int {
        if type.elementsEqual(RecordType.chunk) { return chunk }
        if type.elementsEqual(RecordType.tail) { return 8 }
        if type.elementsEqual(RecordType.index) {
            return 4 + EtokFormat.indexEntrySize * (max(0, offset - headEnd) / RecordLimits.minChunkRecord)
        }
        if type.elementsEqual(RecordType.head) { return RecordLimits.head }
        return RecordLimits.unknown
    }
}
