/// A destination for model-input frames (preview files, decoded video).
///
/// Contract: `write` frames in order, then exactly one of `finish()` (make the output final:
/// trailer, rename into place) or `cancel()` (remove what was written). A writer that is neither
/// finished nor cancelled leaves no file under the final name. Not thread-safe: one thread at a
/// time (typically the pipeline's sink stage); it may move between threads, hence `Sendable`.
public protocol VideoWriter: AnyObject, Sendable {
    /// The output as the user named it ("stdout" for `-`).
    var file: String { get }
    /// Frames written so far.
    var framesWritten: Int { get }
    /// Writes one frame; every frame must have the first frame's size.
    func write(_ frame: VideoFrame) throws
    /// Completes the output and puts it under its final name.
    func finish() throws
    /// Stops and removes the partial output. Safe to call more than once, and after `finish`.
    func cancel()
}

/// Output container formats.
public enum OutputFormat: String, Sendable, CaseIterable, Codable {
    /// H.264 (libx264; MPEG-4 Part 2 when libx264 is absent) in mp4, yuv420p.
    case mp4
    /// YUV4MPEG2 (4:4:4, BT.601 limited range): uncompressed, streamable, read by ffmpeg.
    case y4m
    /// Raw packed RGB24 frames, no header.
    case rgb
    /// PNG: one picture, or a numbered sequence when the name holds a pattern (`%05d`).
    case png

    /// The format a file name implies (`-` means y4m on stdout); nil when the name says nothing.
    public static func guess(fromPath path: String) -> OutputFormat? {
        if path == "-" { return .y4m }
        guard let dot = path.lastIndex(of: "."), !path[dot...].contains("/") else { return nil }
        switch path[path.index(after: dot)...].lowercased() {
        case "mp4", "m4v", "mov": return .mp4
        case "y4m": return .y4m
        case "rgb", "raw": return .rgb
        case "png": return .png
        default: return nil
        }
    }
}

/// How to write an output.
public struct OutputOptions: Sendable, Equatable {
    /// The container; nil takes it from the file name.
    public var format: OutputFormat?
    /// Replace an existing file (`-y`).
    public var overwrite: Bool
    /// H.264 constant rate factor (0 best ... 51 worst; 23 is x264's default).
    public var crf: Int
    /// Encoder by FFmpeg name; nil picks libx264, else mpeg4.
    public var videoCodec: String?
    /// Nominal frame rate: y4m header, duration of an mp4's last frame.
    public var frameRate: Rational

    /// Defaults: format from the name, no overwrite, CRF 23, libx264, 25 fps.
    public init(format: OutputFormat? = nil, overwrite: Bool = false, crf: Int = 23,
                videoCodec: String? = nil, frameRate: Rational = Rational(25, 1)) {
        self.format = format
        self.overwrite = overwrite
        self.crf = crf
        self.videoCodec = videoCodec
        self.frameRate = frameRate
    }
}

/// Opens the writer for `path` (`-` is standard output). Checks the name at once (existing file
/// without `overwrite`, missing folder, unwritable, unknown format) and creates the temporary
/// file, so such problems appear before any decoding work.
public func openVideoWriter(path: String, options: OutputOptions = OutputOptions()) throws -> any VideoWriter {
    guard let format = options.format ?? OutputFormat.guess(fromPath: path) else {
        throw MediaError.invalidArgument(
            file: path, message: "cannot tell the output format from the name; use .mp4, .y4m, .rgb or .png (or --format)")
    }
    guard options.frameRate.num > 0, options.frameRate.den > 0 else {
        throw MediaError.invalidArgument(file: path, message: "output frame rate must be positive")
    }
    switch format {
    case .mp4:
        if path == "-" {
            throw MediaError.invalidArgument(file: "stdout", message: "mp4 cannot be streamed; write y4m or rgb to stdout")
        }
        return try MP4Writer(path: path, options: options)
    case .y4m, .rgb:
        return try StreamWriter(path: path, format: format, options: options)
    case .png:
        if path == "-" { throw MediaError.invalidArgument(file: "stdout", message: "PNG goes to files, not stdout") }
        if path.contains("%") { return try PNGSequenceWriter(pattern: path, options: options) }
        return try PNGWriter(path: path, options: options)
    }
}
