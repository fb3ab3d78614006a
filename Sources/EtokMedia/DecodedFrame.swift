import CFFmpeg

/// One decoded picture as the decoder produced it (any pixel format, any size), with its place in
/// the output timeline. It owns a reference to FFmpeg's frame buffer and frees it when released.
///
/// Threading: immutable after creation, so it may move between pipeline stages (threads); FFmpeg's
/// buffers are reference-counted and read-only here.
public final class DecodedFrame: @unchecked Sendable {
    /// Position in the output sequence, from 0 (after `--fps` resampling when that is on).
    public let index: Int
    /// Presentation timestamp in `timeBase` units (strictly increasing along a source).
    public let pts: Int64
    /// Unit of `pts`, in seconds.
    public let timeBase: Rational
    /// Clockwise rotation (0/90/180/270) needed to show the picture upright.
    public let rotation: Int
    /// Pixel aspect ratio (1/1 for square pixels).
    public let sampleAspect: Rational
    /// The source's name, for error messages.
    public let file: String
    let frame: UnsafeMutablePointer<AVFrame>

    init(frame: UnsafeMutablePointer<AVFrame>, index: Int, pts: Int64, timeBase: Rational,
         rotation: Int, sampleAspect: Rational, file: String) {
        self.frame = frame
        self.index = index
        self.pts = pts
        self.timeBase = timeBase
        self.rotation = rotation
        self.sampleAspect = sampleAspect
        self.file = file
    }

    deinit {
        var f: UnsafeMutablePointer<AVFrame>? = frame
        av_frame_free(&f)
    }

    /// Presentation time in seconds.
    public var seconds: Double { Double(pts) * Double(timeBase.num) / Double(timeBase.den) }
    /// Coded width in pixels.
    public var width: Int { Int(frame.pointee.width) }
    /// Coded height in pixels.
    public var height: Int { Int(frame.pointee.height) }
    /// FFmpeg's name of the pixel format, e.g. "yuv420p".
    public var pixelFormat: String {
        av_get_pix_fmt_name(AVPixelFormat(rawValue: frame.pointee.format)).map { String(cString: $0) } ?? "none"
    }

    /// The same picture at another place in the timeline (a new reference to the same buffers).
    func retimed(index: Int, pts: Int64, timeBase: Rational) -> DecodedFrame? {
        guard let copy = av_frame_clone(frame) else { return nil }
        return DecodedFrame(frame: copy, index: index, pts: pts, timeBase: timeBase,
                            rotation: rotation, sampleAspect: sampleAspect, file: file)
    }
}
