/// How to open an input. The defaults probe the container; raw frames need `format: "rawvideo"`
/// plus `rawSize` (and usually `rawRate`).
public struct InputOptions: Sendable, Equatable {
    /// Force a demuxer by FFmpeg name (e.g. "rawvideo", "nut"); nil probes.
    public var format: String?
    /// Frame size of raw input.
    public var rawSize: PixelSize?
    /// Pixel format of raw input, as FFmpeg names it ("rgb24", "yuv420p", ...).
    public var rawPixelFormat: String
    /// Frame rate of raw input (frames per second).
    public var rawRate: Double
    /// Resample to this many frames per second by timestamp (`--fps`); nil keeps every frame.
    public var frameRate: Double?
    /// Decoder threads; 0 lets FFmpeg pick (one per core).
    public var decoderThreads: Int
    /// An input that ends early (truncated file, stdin cut in the middle, a partial raw frame)
    /// ends the stream after its last frame instead of failing (`VideoSource.endedEarly` says so).
    public var keepsTruncatedInput = false

    /// Options with the defaults: probe the container, keep every frame, automatic threads.
    public init(format: String? = nil, rawSize: PixelSize? = nil, rawPixelFormat: String = "rgb24",
                rawRate: Double = 25, frameRate: Double? = nil, decoderThreads: Int = 0) {
        self.format = format
        self.rawSize = rawSize
        self.rawPixelFormat = rawPixelFormat
        self.rawRate = rawRate
        self.frameRate = frameRate
        self.decoderThreads = decoderThreads
    }
}

/// A width and height in pixels; parses and prints as "WxH".
public struct PixelSize: Sendable, Hashable, Codable, CustomStringConvertible {
    /// Width in pixels.
    public var width: Int
    /// Height in pixels.
    public var height: Int

    /// A size; both sides should be positive.
    public init(width: Int, height: Int) {
        self.width = width
        self.height = height
    }

    /// Parses "WxH" (e.g. "640x480"); nil unless both sides are positive integers up to 16384.
    public init?(parsing text: String) {
        let parts = text.lowercased().split(separator: "x", omittingEmptySubsequences: false)
        guard parts.count == 2, let w = Int(parts[0]), let h = Int(parts[1]),
              (1...16384).contains(w), (1...16384).contains(h) else { return nil }
        self.init(width: w, height: h)
    }

    /// "WxH".
    public var description: String { "\(width)x\(height)" }
}
