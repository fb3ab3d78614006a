/// One model-input picture: packed RGB24 bytes it owns, with its place in the timeline.
///
/// A value type: copies share storage until written (copy-on-write arrays), so passing frames
/// between pipeline stages costs no pixel copy. Layout: `height` rows of `width * 3` bytes,
/// R, G, B per pixel, top row first, no padding.
public struct VideoFrame: Sendable, Equatable {
    /// Position in the output sequence, from 0.
    public var index: Int
    /// Presentation timestamp in `timeBase` units.
    public var pts: Int64
    /// Unit of `pts`, in seconds.
    public var timeBase: Rational
    /// Width in pixels.
    public var width: Int
    /// Height in pixels.
    public var height: Int
    /// `width * height * 3` bytes of packed RGB.
    public var rgb: [UInt8]

    /// A frame; `rgb` must hold `width * height * 3` bytes.
    public init(index: Int, pts: Int64, timeBase: Rational, width: Int, height: Int, rgb: [UInt8]) {
        precondition(rgb.count == width * height * 3, "RGB24 frame needs width*height*3 bytes")
        self.index = index
        self.pts = pts
        self.timeBase = timeBase
        self.width = width
        self.height = height
        self.rgb = rgb
    }

    /// Presentation time in seconds.
    public var seconds: Double { timeBase.seconds(pts) }

    /// The (r, g, b) bytes of pixel (x, y).
    public func pixel(x: Int, y: Int) -> (r: UInt8, g: UInt8, b: UInt8) {
        let i = (y * width + x) * 3
        return (rgb[i], rgb[i + 1], rgb[i + 2])
    }
}
