/// Chooses frames by timestamp to resample a stream to `rate` frames per second (`--fps`).
///
/// Output frame k stands at time `origin + k / rate`, where `origin` is the first source frame's
/// time; it shows the source frame on screen at that instant, i.e. the one whose interval
/// [its pts, next pts) contains it. Lowering the rate drops frames; raising it repeats them.
/// A plain value type, fed each source frame's interval in order; it holds no pictures.
public struct FrameRateSampler: Sendable, Equatable {
    /// Output frames per second.
    public let rate: Double
    /// Time of the first source frame (set by the first call).
    public private(set) var origin: Double?
    /// The next output index not yet assigned.
    public private(set) var nextIndex = 0

    /// A sampler for `rate` (> 0) frames per second.
    public init(rate: Double) {
        precondition(rate > 0, "frame rate must be positive")
        self.rate = rate
    }

    /// The output indices shown by a source frame on screen from `start` until `end` (seconds).
    /// Call once per source frame, in order; the intervals are taken to follow each other.
    public mutating func indices(from start: Double, to end: Double) -> Range<Int> {
        let origin = self.origin ?? start
        self.origin = origin
        // Index k is covered while origin + k/rate < end; the epsilon absorbs the rounding of
        // timestamps such as 1001/30000 so that a time landing exactly on `end` goes to the next frame.
        let upper = Int(((end - origin) * rate - 1e-6).rounded(.up))
        let range = nextIndex..<max(nextIndex, upper)
        nextIndex = range.upperBound
        return range
    }

    /// Output time in seconds of index `k`, measured from the first source frame.
    public func time(of k: Int) -> Double { Double(k) / rate }
}
