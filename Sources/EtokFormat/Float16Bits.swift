/// Conversion between binary32 and IEEE-754 binary16 bit patterns, for VAE latents stored as `f16`
/// (§6.2). Written out (not `Float16`) so the stored bytes are the same on every platform, including
/// those without a native `Float16`.
///
/// Rounding is round-to-nearest, ties-to-even, as IEEE-754 conversion; overflow gives ±infinity;
/// NaN stays NaN (quiet, payload's top bits kept). Pure functions; `Sendable`.
public enum Float16Bits {
    /// The binary16 bit pattern nearest to `x`.
    public static func bits(_ x: Float) -> UInt16 {
        let b = x.bitPattern
        let sign = UInt16((b >> 16) & 0x8000)
        let exp = Int((b >> 23) & 0xFF)
        let man = b & 0x7F_FFFF
        if exp == 0xFF {  // infinity or NaN
            if man == 0 { return sign | 0x7C00 }
            return sign | 0x7E00 | UInt16(truncatingIfNeeded: man >> 13)
        }
        // Unbiased exponent; binary16 normals have exponents -14 ... 15.
        let e = exp - 127
        if e > 15 { return sign | 0x7C00 }
        if e >= -14 {
            // Normal: keep 10 mantissa bits, round the 13 dropped ones to nearest even.
            var h = UInt32(e + 15) << 10 | (man >> 13)
            let rest = man & 0x1FFF
            if rest > 0x1000 || (rest == 0x1000 && (h & 1) == 1) { h += 1 }  // may carry into exponent: correct
            return sign | UInt16(h)  // h == 0x7C00 after a carry out of e = 15 is infinity: correct
        }
        if e < -25 { return sign }  // below half the smallest subnormal: rounds to zero
        // Subnormal: value = m * 2^-24 with m = full mantissa (with implicit 1) >> shift.
        let full = man | 0x80_0000
        let shift = UInt32(-e - 14 + 13)  // 14 ... 24
        var h = full >> shift
        let rest = full & ((1 << shift) - 1)
        let half = UInt32(1) << (shift - 1)
        if rest > half || (rest == half && (h & 1) == 1) { h += 1 }
        return sign | UInt16(h)
    }

    /// The binary32 value of the binary16 bit pattern `h` (exact: every binary16 is a binary32).
    public static func float(_ h: UInt16) -> Float {
        let sign = UInt32(h & 0x8000) << 16
        let exp = UInt32((h >> 10) & 0x1F)
        let man = UInt32(h & 0x3FF)
        if exp == 0x1F {
            return Float(bitPattern: sign | 0x7F80_0000 | (man << 13))
        }
        if exp == 0 {
            let magnitude = Float(man) * 0x1p-24
            return sign != 0 ? -magnitude : magnitude
        }
        return Float(bitPattern: sign | ((exp + 112) << 23) | (man << 13))
    }

    /// `x` rounded to the nearest binary16 value: what a reader gets back from `f16-1` data. The
    /// encoder measures its reconstruction from latents rounded with this (§6.2).
    public static func round(_ x: Float) -> Float { float(bits(x)) }
}
