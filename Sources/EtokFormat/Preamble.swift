/// Reading what precedes the chunks: signature, version (§2) and the `HEAD` record (§4). Shared by
/// both readers.
enum Preamble {
    /// The header, the version and the offset just past `HEAD`.
    struct Parsed {
        var header: EtokHeader
        var major: Int
        var minor: Int
        var headEnd: Int
    }

    /// Reads and checks the preamble and `HEAD`; everything wrong here is fatal (without a header
    /// nothing can be decoded).
    static func read(from source: ByteSource) throws(FormatError) -> Parsed {
        let file = source.name
        let pre = try source.read(at: 0, count: EtokFormat.preambleSize)
        let sigCount = min(pre.count, 8)
        if Array(pre[0..<sigCount]) != Array(EtokFormat.signature[0..<sigCount]) {
            throw FormatError.badSignature(file: file)
        }
        if pre.count < EtokFormat.preambleSize {
            throw FormatError.truncated(file: file, offset: pre.count, what: pre.count < 8 ? "inside the signature" : "inside the version")
        }
        let major = Int(pre[8]) | Int(pre[9]) << 8
        let minor = Int(pre[10]) | Int(pre[11]) << 8
        if major != Int(EtokFormat.majorVersion) {
            throw FormatError.unsupportedVersion(file: file, major: major, minor: minor)
        }
        let at = EtokFormat.preambleSize
        let head = try source.read(at: at, count: 8)
        if head.count < 8 { throw FormatError.truncated(file: file, offset: at, what: "inside the HEAD record") }
        if Array(head[0..<4]) != RecordType.head {
            throw FormatError.badRecord(file: file, record: printableType(head[0..<4]), offset: at,
                                        message: "the first record must be HEAD")
        }
        let length = Int(head.leU32(at: 4))
        if length > RecordLimits.head {
            throw FormatError.badRecord(file: file, record: "HEAD", offset: at,
                                        message: "length \(length) is more than a HEAD record may hold (\(RecordLimits.head))")
        }
        let bytes = try source.read(at: at, count: EtokFormat.recordOverhead + length)
        if bytes.count < EtokFormat.recordOverhead + length {
            throw FormatError.truncated(file: file, offset: at, what: "inside the HEAD record")
        }
        if !RecordType.crcHolds(bytes) { throw FormatError.badCRC(file: file, record: "HEAD", offset: at) }
        let header = try EtokHeader.decode(Array(bytes[8..<(8 + length)]), file: file)
        // Repeat blocks came with 1.2 (§4): an older file that claims them is not what it says.
        if header.encoding.declaresRepeats && minor < Int(EtokFormat.repeatBlocksMinorVersion) {
            throw FormatError.badHeader(file: file, key: "encoding.repeat_blocks",
                                        message: "repeat blocks need format 1.\(EtokFormat.repeatBlocksMinorVersion), the file is \(major).\(minor)")
        }
        return Parsed(header: header, major: major, minor: minor, headEnd: at + bytes.count)
    }
}
