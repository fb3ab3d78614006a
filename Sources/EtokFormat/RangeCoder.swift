/// The range encoder of §6.1: LZMA's 32-bit, byte-wise, carry-propagating encoder.
///
/// State: `low` (33 bits: a carry may sit in bit 32), `range` (32 bits), and the last byte produced
/// (`cache`) with a count of 0xFF bytes behind it that a carry could still change (`pending`). It
/// writes exactly the bytes `RangeDecoder` reads: one leading zero byte, one byte per normalisation
/// shift, and four more at `finish()`.
///
/// Cost: a few integer operations per symbol plus one shift per output byte. A value type; use from
/// one thread.
public struct RangeEncoder: Sendable {
    /// Normalisation threshold: the range is kept at or above 2^24.
    static let top: UInt32 = 1 << 24
    /// The largest `total` a model may use, so that `range / total` stays at least 256 (§6.1).
    public static let maxTotal: UInt32 = 1 << 16

    private var low: UInt64 = 0
    private var range: UInt32 = 0xFFFF_FFFF
    private var cache: UInt8 = 0
    private var pending: Int = 1
    /// The coded bytes so far (complete after `finish()`).
    public private(set) var bytes: [UInt8] = []

    /// An encoder at the start of a stream.
    public init() {}

    /// Codes the symbol occupying `[cum, cum + freq)` of `[0, total)`.
    /// Preconditions (the model's): `freq > 0`, `cum + freq <= total`, `total <= maxTotal`.
    public mutating func encode(cum: UInt32, freq: UInt32, total: UInt32) {
        let r = range / total
        low += UInt64(r) * UInt64(cum)
        range = r * freq
        while range < RangeEncoder.top {
            range <<= 8
            shiftLow()
        }
    }

    /// Moves the top byte of `low` out, resolving a carry into the bytes held back.
    private mutating func shiftLow() {
        if low < 0xFF00_0000 || low >= 0x1_0000_0000 {
            let carry = UInt8(truncatingIfNeeded: low >> 32)
            var byte = cache
            repeat {
                bytes.append(byte &+ carry)
                byte = 0xFF
                pending -= 1
            } while pending != 0
            cache = UInt8(truncatingIfNeeded: low >> 24)
        }
        pending += 1
        low = (low & 0x00FF_FFFF) << 8
    }

    /// Flushes the state; afterwards `bytes` is the complete coded stream (§6.1).
    public mutating func finish() -> [UInt8] {
        for _ in 0..<5 { shiftLow() }
        return bytes
    }
}

/// The range decoder exactly as §6.1 writes it, reading from a byte array.
///
/// A read past the end returns 0 and sets the sticky `overrun` flag (the stream is corrupt: the encoder
/// writes exactly the bytes the decoder reads); the caller checks it once per block. Never traps, on
/// any bytes. A value type; use from one thread.
public struct RangeDecoder: Sendable {
    private let data: [UInt8]
    private var position: Int
    private let end: Int
    private var range: UInt32 = 0xFFFF_FFFF
    private var code: UInt32 = 0
    /// Set once the decoder needed a byte past its data; never cleared.
    public private(set) var overrun = false

    /// A decoder over `data[start..<end]`; reads its five initial bytes (§6.1 `init`).
    public init(_ data: [UInt8], start: Int = 0, end: Int? = nil) {
        self.data = data
        self.position = max(0, min(start, data.count))
        self.end = max(self.position, min(end ?? data.count, data.count))
        for _ in 0..<5 { code = (code << 8) | nextByte() }
    }

    /// Bytes consumed so far (including any asked for past the end).
    public private(set) var consumed = 0

    /// Whether exactly all the bytes were consumed and none past the end: what a well-formed stream
    /// gives after its last symbol.
    public var isExactlyAtEnd: Bool { !overrun && position == end }

    private mutating func nextByte() -> UInt32 {
        consumed += 1
        guard position < end else {
            overrun = true
            return 0
        }
        let b = data[position]
        position += 1
        return UInt32(b)
    }

    /// First half of decoding a symbol: the scaled target `v` in `[0, total)`. Call `consume` next
    /// with the symbol whose interval holds it. Precondition: `0 < total <= RangeEncoder.maxTotal`.
    public mutating func target(total: UInt32) -> UInt32 {
        let r = range / total
        return min(code / r, total - 1)
    }

    /// Second half: removes the symbol occupying `[cum, cum + freq)` of `[0, total)` and renormalises.
    public mutating func consume(cum: UInt32, freq: UInt32, total: UInt32) {
        let r = range / total
        code &-= r &* cum
        range = r &* freq
        while range < RangeEncoder.top {
            range <<= 8
            code = (code << 8) | nextByte()
        }
    }
}
