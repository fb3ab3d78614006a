/// What a source says about its video stream, read from the container and codec headers when the
/// source opens (no frame decoded yet). Counts in the container can lie; `Probe` counts what decodes.
public struct VideoInfo: Sendable, Codable, Equatable {
    /// The input as the user named it (`-` shows as "stdin").
    public var input: String
    /// FFmpeg's demuxer name, e.g. "mov,mp4,m4a,3gp,3g2,mj2", "nut", "rawvideo", "image2".
    public var container: String
    /// Codec short name, e.g. "h264".
    public var codec: String
    /// Coded picture width and height in pixels.
    public var width: Int
    public var height: Int
    /// Decoder pixel format name, e.g. "yuv420p".
    public var pixelFormat: String
    /// Sample (pixel) aspect ratio; 1/1 when the file does not say.
    public var sampleAspect: Rational
    /// Clockwise rotation in degrees (0, 90, 180, 270) needed to show the picture upright,
    /// from the stream's display matrix. Preprocessing applies it.
    public var rotation: Int
    /// Nominal frame rate (average rate when the container knows it), nil when unknown.
    public var frameRate: Double?
    /// The stream's time base: timestamps count in units of this many seconds.
    public var timeBase: Rational
    /// Duration in seconds when the container says, else nil.
    public var duration: Double?
    /// Frame count as the container claims it; nil when it does not say. May be wrong.
    public var containerFrameCount: Int?
    /// Colour matrix and range as tagged ("bt709", "unknown"; "tv", "pc", "unknown").
    public var colorSpace: String
    public var colorRange: String
    /// Stream or container bit rate in bit/s when known.
    public var bitRate: Int?
    /// True when the input is a single still picture (jpg, png...), read as a one-frame video.
    public var isStill: Bool
}
