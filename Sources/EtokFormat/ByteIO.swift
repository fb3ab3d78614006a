/// Appends little-endian values (§1) to a growing byte array. Used to build record payloads.
///
/// Owns its `bytes`; a value type, cheap to create. Cost: amortised O(1) per value.
public struct ByteWriter: Sendable {
    /// Everything written so far.
    public private(set) var bytes: [UInt8]

    /// An empty writer; `capacity` reserves room to avoid regrowth.
    public init(capacity: Int = 0) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    /// Number of bytes written so far.
    public var count: Int { bytes.count }

    /// Appends one byte.
    public mutating func u8(_ v: UInt8) { bytes.append(v) }

    /// Appends a `u16` little-endian.
    public mutating func u16(_ v: UInt16) {
        bytes.append(UInt8(truncatingIfNeeded: v))
        bytes.append(UInt8(truncatingIfNeeded: v >> 8))
    }

    /// Appends a `u32` little-endian.
    public mutating func u32(_ v: UInt32) {
        for shift in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8(truncatingIfNeeded: v >> UInt32(shift))) }
    }

    /// Appends a `u64` little-endian.
    public mutating func u64(_ v: UInt64) {
        for shift in stride(from: 0, to: 64, by: 8) { bytes.append(UInt8(truncatingIfNeeded: v >> UInt64(shift))) }
    }

    /// Appends an `i64` little-endian (two's complement).
    public mutating func i64(_ v: Int64) { u64(UInt64(bitPattern: v)) }

    /// Appends an IEEE-754 binary32 little-endian.
    public mutating func f32(_ v: Float) { u32(v.bitPattern) }

    /// Appends raw bytes.
    public mutating func raw<S: Sequence>(_ s: S) where S.Element == UInt8 { bytes.append(contentsOf: s) }

    /// Overwrites a `u32` at `offset` (for lengths known only after the payload is built).
    public mutating func patchU32(_ v: UInt32, at offset: Int) {
        for i in 0..<4 { bytes[offset + i] = UInt8(truncatingIfNeeded: v >> UInt32(8 * i)) }
    }
}

/// Reads little-endian values (§1) from a byte array with a *sticky* error flag, in the style of
/// dav1d's `GetBits`: a read past the end returns zero and sets `overrun`, which the caller checks
/// once after a group of reads instead of after every read.
///
/// Never traps on any input. A value type over a borrowed-by-copy `[UInt8]` (copy-on-write, so
/// creating one does not copy the bytes).
public struct ByteReader: Sendable {
    /// The bytes read from.
    public let bytes: [UInt8]
    /// Index of the next byte to read.
    public private(set) var position: Int
    /// Set once any read went past the end; never cleared.
    public private(set) var overrun = false

    /// A reader at `position` in `bytes`.
    public init(_ bytes: [UInt8], position: Int = 0) {
        self.bytes = bytes
        self.position = position
    }

    /// Bytes left to read (0 after an overrun).
    public var remaining: Int { overrun ? 0 : max(0, bytes.count - position) }

    /// Whether every byte has been read and nothing past the end was asked for.
    public var isExactlyAtEnd: Bool { !overrun && position == bytes.count }

    /// Claims `n` bytes and returns their start index, or nil (setting `overrun`) if they are not there.
    private mutating func take(_ n: Int) -> Int? {
        guard !overrun, n >= 0, n <= bytes.count - position else {
            overrun = true
            return nil
        }
        let start = position
        position += n
        return start
    }

    /// Reads one byte (0 past the end).
    public mutating func u8() -> UInt8 {
        guard let i = take(1) else { return 0 }
        return bytes[i]
    }

    /// Reads a little-endian `u16` (0 past the end).
    public mutating func u16() -> UInt16 {
        guard let i = take(2) else { return 0 }
        return UInt16(bytes[i]) | UInt16(bytes[i + 1]) << 8
    }

    /// Reads a little-endian `u32` (0 past the end).
    public mutating func u32() -> UInt32 {
        guard let i = take(4) else { return 0 }
        var v: UInt32 = 0
        for k in 0..<4 { v |= UInt32(bytes[i + k]) << UInt32(8 * k) }
        return v
    }

    /// Reads a little-endian `u64` (0 past the end).
    public mutating func u64() -> UInt64 {
        guard let i = take(8) else { return 0 }
        var v: UInt64 = 0
        for k in 0..<8 { v |= UInt64(bytes[i + k]) << UInt64(8 * k) }
        return v
    }

    /// Reads a little-endian `i64` (0 past the end).
    public mutating func i64() -> Int64 { Int64(bitPattern: u64()) }

    /// Reads a little-endian binary32 (0 past the end).
    public mutating func f32() -> Float { Float(bitPattern: u32()) }

    /// Reads `n` raw bytes (empty past the end, or for a negative `n`).
    public mutating func raw(_ n: Int) -> ArraySlice<UInt8> {
        guard let i = take(n) else { return [] }
        return bytes[i..<(i + n)]
    }

    /// Skips `n` bytes (sets `overrun` if they are not there).
    public mutating func skip(_ n: Int) { _ = take(n) }
}

/// Little-endian decoding of fixed-size integers at an index of a byte array (bounds are the caller's).
extension Array where Element == UInt8 {
    /// The `u32` at `i` (little-endian). Precondition: `i + 4 <= count`.
    func leU32(at i: Int) -> UInt32 {
        UInt32(self[i]) | UInt32(self[i + 1]) << 8 | UInt32(self[i + 2]) << 16 | UInt32(self[i + 3]) << 24
    }

    /// The `u64` at `i` (little-endian). Precondition: `i + 8 <= count`.
    func leU64(at i: Int) -> UInt64 {
        UInt64(leU32(at: i)) | UInt64(leU32(at: i + 4)) << 32
    }
}
