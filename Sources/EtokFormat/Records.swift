/// Record framing (§3): `type` (4 ASCII bytes), `length` (u32), payload, CRC-32 of the 8 + length
/// bytes before it.
enum RecordType {
    /// The header record (§4).
    static let head: [UInt8] = Array("HEAD".utf8)
    /// A chunk of blocks (§5).
    static let chunk: [UInt8] = Array("CHNK".utf8)
    /// The index (§7).
    static let index: [UInt8] = Array("INDX".utf8)
    /// The last record of a complete file (§7).
    static let tail: [UInt8] = Array("TAIL".utf8)
    /// Types this reader knows, for resynchronising after damage.
    static let known: [[UInt8]] = [head, chunk, index, tail]

    /// The whole record for `payload`: what the writer appends. Deterministic.
    static func frame(_ type: [UInt8], _ payload: [UInt8]) -> [UInt8] {
        var w = ByteWriter(capacity: payload.count + EtokFormat.recordOverhead)
        w.raw(type)
        w.u32(UInt32(payload.count))
        w.raw(payload)
        w.u32(CRC32.checksum(w.bytes))
        return w.bytes
    }

    /// Whether `record` (a whole record: 12 + length bytes) has a CRC that holds.
    static func crcHolds(_ record: [UInt8]) -> Bool {
        guard record.count >= EtokFormat.recordOverhead else { return false }
        let n = record.count - 4
        var crc = CRC32()
        record.withUnsafeBytes { crc.update(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        return crc.value == record.leU32(at: n)
    }
}

/// A record as read from a file: where it starts, its type and its payload (CRC already checked).
struct RawRecord {
    /// Offset of its `type` field.
    var offset: Int
    /// The 4 type bytes.
    var type: [UInt8]
    /// The payload.
    var payload: [UInt8]

    /// Offset just past its CRC.
    var end: Int { offset + EtokFormat.recordOverhead + payload.count }
    /// The type, printable.
    var typeName: String { printableType(type[...]) }
}
