/// CRC-32 as §1 specifies it: IEEE 802.3 polynomial, reflected (`0xEDB88320`), initial value and final
/// XOR `0xFFFFFFFF`; equal to zlib's `crc32()`. `CRC32.checksum("123456789") == 0xCBF43926`.
///
/// Cost: one table lookup per byte (about 1 ns/byte in release builds). A value type; `Sendable`.
public struct CRC32: Sendable {
    /// The 256-entry table for the reflected polynomial, built once.
    static let table: [UInt32] = (0..<256).map { n -> UInt32 in
        var c = UInt32(n)
        for _ in 0..<8 {
            c = (c & 1) != 0 ? (0xEDB8_8320 ^ (c >> 1)) : (c >> 1)
        }
        return c
    }

    /// The running register (pre-inverted); read the checksum with `value`.
    private var state: UInt32 = 0xFFFF_FFFF

    /// A fresh CRC over no bytes.
    public init() {}

    /// Feeds `bytes` into the CRC.
    public mutating func update<S: Sequence>(_ bytes: S) where S.Element == UInt8 {
        var c = state
        CRC32.table.withUnsafeBufferPointer { t in
            for b in bytes {
                c = t[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8)
            }
        }
        state = c
    }

    /// Feeds raw memory into the CRC (the fast path for large payloads).
    public mutating func update(_ buffer: UnsafeRawBufferPointer) {
        var c = state
        CRC32.table.withUnsafeBufferPointer { t in
            for b in buffer {
                c = t[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8)
            }
        }
        state = c
    }

    /// The CRC of everything fed so far.
    public var value: UInt32 { state ^ 0xFFFF_FFFF }

    /// The CRC of `bytes` in one call.
    public static func checksum<S: Sequence>(_ bytes: S) -> UInt32 where S.Element == UInt8 {
        var crc = CRC32()
        crc.update(bytes)
        return crc.value
    }
}
