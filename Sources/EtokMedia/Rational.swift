import CFFmpeg

/// An exact fraction `num/den`, as FFmpeg uses for time bases, frame rates and aspect ratios.
public struct Rational: Sendable, Hashable, Codable, CustomStringConvertible {
    /// Numerator.
    public var num: Int32
    /// Denominator (0 means "unknown").
    public var den: Int32

    /// A fraction; no reduction is done.
    public init(_ num: Int32, _ den: Int32) {
        self.num = num
        self.den = den
    }

    /// The closest fraction to `value` with numerator and denominator at most `maxDen` (av_d2q).
    public init(approximating value: Double, maxDen: Int32 = 1_001_000) {
        let q = av_d2q(value, maxDen)
        self.init(q.num, q.den)
    }

    init(_ q: AVRational) { self.init(q.num, q.den) }

    var av: AVRational { AVRational(num: num, den: den) }

    /// The value as a Double, or nil when the denominator or numerator is 0.
    public var value: Double? { (den == 0 || num == 0) ? nil : Double(num) / Double(den) }

    /// Seconds of `ticks` units of this time base (0 denominators count as 1).
    public func seconds(_ ticks: Int64) -> Double { Double(ticks) * Double(num) / Double(max(1, den)) }

    /// "num/den".
    public var description: String { "\(num)/\(den)" }
}
