import EtokIO

/// Writes an `.etok` file front to back (§2-§7): the signature, version and `HEAD` when created, one
/// `CHNK` record per `append(_:)`, and `INDX` and `TAIL` at `finish()`.
///
/// **Append-only.** It never seeks, so it works on stdout and pipes; it keeps the index (28 bytes per
/// chunk) in memory until `finish()`.
///
/// **Crash safety.** Each record is built whole in memory and handed to the sink in one `write`, so
/// when `append` returns, the chunk is in the kernel. A writer killed at any point leaves the
/// preamble, `HEAD`, every chunk appended so far, and at most part of one record: a reader reads
/// every complete chunk and reports the file as truncated (§7). (Power loss is another matter: pass a
/// `FileSink` with `syncEachWrite` for that.)
///
/// **Determinism.** The bytes depend only on the header and the chunks: the same input gives the same
/// file.
///
/// Not thread-safe: one owner appends chunks in stream order (encode chunks in parallel, append them
/// in order). Cost per chunk: the token coding (release build: about 0.5 µs per token for §6.1,
/// 2-3 µs for §6.3) and one write.
public final class EtokWriter {
    /// The header written.
    public let header: EtokHeader
    private let sink: any ByteSink
    private var offset = 0
    private var entries: [IndexEntry] = []
    private var nextBlock = 0
    private var finished = false
    /// Set after a failed write: the output is unusable, further calls are refused.
    private var failed = false

    /// Blocks written so far.
    public var blockCount: Int { nextBlock }
    /// Chunks written so far.
    public var chunkCount: Int { entries.count }
    /// Bytes written so far.
    public var bytesWritten: Int { offset }

    /// Validates `header` and writes the signature, the version and the `HEAD` record (§2, §4).
    /// - Throws: `FormatError.badHeader` for a header the format cannot hold; the sink's
    ///   `OutputError`.
    public init(sink: any ByteSink, header: EtokHeader) throws {
        try header.validate(file: sink.name)
        let json = header.jsonBytes()
        if json.count > RecordLimits.head {
            throw FormatError.badHeader(file: sink.name, key: "(root)",
                                        message: "\(json.count) bytes of JSON, more than a reader takes (\(RecordLimits.head))")
        }
        self.sink = sink
        self.header = header
        var w = ByteWriter()
        w.raw(EtokFormat.signature)
        w.u16(EtokFormat.majorVersion)
        w.u16(header.minorVersion)
        w.raw(RecordType.frame(RecordType.head, json))
        try emit(w.bytes)
    }

    private func emit(_ bytes: [UInt8]) throws(OutputError) {
        do {
            try sink.write(bytes)
        } catch {
            failed = true
            throw error
        }
        offset += bytes.count
    }

    private func usable() throws(FormatError) {
        if finished { throw FormatError.invalidInput(file: sink.name, message: "the writer is already finished") }
        if failed { throw FormatError.invalidInput(file: sink.name, message: "an earlier write failed") }
    }

    /// Writes one chunk as a `CHNK` record (§5, §6). Chunks come in stream order: the first starts at
    /// block 0, each next one where the previous ended. VAE latents are stored as binary16
    /// (`Float16Bits.round` gives the values a reader gets back).
    /// - Throws: `FormatError.invalidInput` for a chunk the header does not allow (nothing is
    ///   written then); the sink's `OutputError`.
    public func append(_ chunk: Chunk) throws {
        try usable()
        if chunk.firstBlock != nextBlock {
            throw FormatError.invalidInput(file: sink.name, message: "chunk starts at block \(chunk.firstBlock), expected \(nextBlock)")
        }
        try ChunkCodec.validate(chunk, header: header, file: sink.name)
        let record = RecordType.frame(RecordType.chunk, ChunkCodec.payload(chunk, header: header))
        // The reader's limit (§3) bounds the coding's worst case, so this would be a coder bug.
        let limit = RecordLimits(header: header).chunk
        if record.count - EtokFormat.recordOverhead > limit {
            throw FormatError.invalidInput(file: sink.name, message: "chunk payload larger than a reader takes (\(limit) bytes)")
        }
        let entry = IndexEntry(offset: offset, firstBlock: chunk.firstBlock, blockCount: chunk.blocks.count,
                               firstPts: chunk.blocks[0].pts)
        try emit(record)
        entries.append(entry)
        nextBlock += chunk.blocks.count
    }

    /// Writes `INDX` and `TAIL` (§7). Afterwards the writer refuses further calls; the caller closes
    /// the sink. Throws `FormatError.invalidInput` after a failed write; the sink's `OutputError`.
    public func finish() throws {
        try usable()
        let indexOffset = offset
        var bytes = RecordType.frame(RecordType.index, IndexCodec.payload(entries))
        bytes += IndexCodec.tail(indexOffset: indexOffset)
        try emit(bytes)
        finished = true
    }
}
