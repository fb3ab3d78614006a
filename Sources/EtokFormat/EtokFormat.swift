// EtokFormat module: the `.etok` container (docs/etok-format.md), reader and writer.
//
// A leaf module: it imports only Foundation (and the C library for file descriptors), never FFmpeg or
// the model. The encoder writes its output with `EtokWriter`; decoding, `etok info` and `etok export`
// read it back through `ChunkSource` (a file or a pipe alike, chunks in order with their damage);
// `EtokReader` adds random access to a file (the index, seeking by block).
//
// Layout of the sources:
//   CRC32, ByteIO, Float16Bits      byte-level helpers (§1)
//   RangeCoder                      the range coder (§6.1)
//   FSQContextModel, FSQTokenCoder  the FSQ token coding `rc-fsq-2` (§6.3), the only one
//   EtokHeader*, Chunk              value types for HEAD (§4), CHNK (§5), INDX (§7)
//   ChunkCodec, Records             payload and record framing (§3, §5, §6, §7)
//   ByteSource                      where bytes come from (they go to an EtokIO ByteSink)
//   RecordScanner                   front-to-back scan with resynchronisation after damage (§7)
//   ChunkSource, ChunkWalk          the one entry point for reading: chunks and damage in order
//   EtokWriter, EtokReader, EtokHealth, DamagedRange, FormatError

/// Constants of the container, named as in docs/etok-format.md.
public enum EtokFormat {
    /// The 8-byte signature (§2): non-ASCII first byte, CR LF, ^Z, LF, as PNG's.
    public static let signature: [UInt8] = [0x89, 0x45, 0x54, 0x4B, 0x0D, 0x0A, 0x1A, 0x0A]
    /// The major version this module reads and writes (§2). A file with another major is refused.
    public static let majorVersion: UInt16 = 1
    /// The minor version this module writes for a stream without repeat blocks (§2): 1 since
    /// `rc-fsq-2` (§6.3). Any minor of major 1 is read (a 1.0 file in the retired draft coding
    /// `rc-fsq-1` is refused by its token coding, §4).
    public static let minorVersion: UInt16 = 1
    /// The minor version of a stream whose header declares repeat blocks (§4 `repeat_blocks`, §5):
    /// the first that has them. Such a header in an older minor is refused.
    public static let repeatBlocksMinorVersion: UInt16 = 2
    /// Bytes before the first record: signature and version.
    public static let preambleSize = 12
    /// Bytes a record adds around its payload: type and length before it, CRC after it (§3).
    public static let recordOverhead = 12
    /// The largest payload length of any record (§3); anything larger is corruption. Readers also
    /// bound each record type by what the header allows (`RecordLimits`, §3 "Reader limits").
    public static let maxPayloadLength = 1 << 30
    /// The largest number of tokens one chunk may hold (§5, reader limits): bounds the memory a
    /// corrupted or hostile chunk can make a reader allocate.
    public static let maxTokensPerChunk = 1 << 24
    /// Size of the `TAIL` record (§7).
    public static let tailSize = 20
    /// Size of one `INDX` entry (§7).
    public static let indexEntrySize = 28
    /// Size of one block table entry in a `CHNK` payload (§5).
    public static let blockEntrySize = 16
}
