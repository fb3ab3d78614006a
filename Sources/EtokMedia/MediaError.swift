/// Everything that can go wrong while reading or writing media, but placing and writing the
/// output's bytes (`OutputError`, EtokIO).
///
/// Every case names the file it is about (`stdin`/`stdout` for pipes) so that its `description`
/// is a complete one-line message; the library classifies each case once (`ErrorReport`,
/// EtokTokenizer) and the command and the C ABI map that category to an exit status or status code.
public enum MediaError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The input path does not exist.
    case fileNotFound(file: String)
    /// The input path is a directory.
    case isDirectory(file: String)
    /// The input holds no bytes at all (a zero-byte file, or stdin closed before any data).
    case emptyInput(file: String)
    /// The input exists but may not be read (permissions).
    case unreadableInput(file: String)
    /// FFmpeg recognises no container in the input (for example a text file named `.mp4`).
    case unrecognisedInput(file: String, message: String)
    /// The container holds no video stream (for example an audio-only file).
    case noVideoStream(file: String)
    /// The video stream decoded to no frame at all.
    case noFrames(file: String)
    /// An mp4/mov whose index (moov) comes after the media arrived on a pipe, where it cannot be read.
    case indexAtEndOnPipe(file: String)
    /// The input stops in the middle of its data (truncated file, stdin closed early).
    case endsEarly(file: String, framesDecoded: Int, message: String)
    /// Raw frames on the input, but the byte count is not a whole number of frames.
    case partialRawFrame(file: String, bytes: Int, frameBytes: Int, framesRead: Int)
    /// No decoder for the stream's codec in this FFmpeg build.
    case unsupportedCodec(file: String, codec: String)
    /// An argument that the media layer cannot use (raw size missing, odd mp4 size, bad pattern...).
    case invalidArgument(file: String, message: String)
    /// A single-picture output (`x.png`) was given more than one frame.
    case tooManyFramesForImage(file: String)
    /// An FFmpeg call failed in a way none of the cases above describes.
    case ffmpeg(call: String, file: String, code: Int32, message: String)

    /// The file (or `stdin`/`stdout`) the error is about.
    public var file: String {
        switch self {
        case .fileNotFound(let f), .isDirectory(let f), .emptyInput(let f), .unreadableInput(let f), .unrecognisedInput(let f, _),
             .noVideoStream(let f), .noFrames(let f), .indexAtEndOnPipe(let f), .endsEarly(let f, _, _),
             .partialRawFrame(let f, _, _, _), .unsupportedCodec(let f, _), .invalidArgument(let f, _),
             .tooManyFramesForImage(let f), .ffmpeg(_, let f, _, _):
            return f
        }
    }

    /// For an input that ends early (`.endsEarly`, `.partialRawFrame`): where and why, without the
    /// advice on what to do (for the warning when `--skip-damaged` went on); nil for other cases.
    public var cutShort: String? {
        switch self {
        case .endsEarly(let f, let n, let m):
            return "\(f): the input ends early (truncated?) after \(n) frame\(n == 1 ? "" : "s") (\(m))"
        case .partialRawFrame(let f, let b, let fb, let n):
            return "\(f): raw video ends with a partial frame (\(b) of \(fb) bytes after \(n) whole frames)"
        default:
            return nil
        }
    }

    /// One line: the file, then the problem (and what to do about it when there is something to do).
    public var description: String {
        switch self {
        case .fileNotFound(let f):
            return "\(f): no such file"
        case .isDirectory(let f):
            return "\(f): is a directory, not a video file"
        case .emptyInput(let f):
            return "\(f): the input is empty (0 bytes)"
        case .unreadableInput(let f):
            return "\(f): cannot be read (permission denied)"
        case .unrecognisedInput(let f, let m):
            return "\(f): not a video file FFmpeg can read (\(m))"
        case .noVideoStream(let f):
            return "\(f): the file has no video stream (audio only?)"
        case .noFrames(let f):
            return "\(f): the video stream holds no decodable frame"
        case .indexAtEndOnPipe(let f):
            return "\(f): an mp4 with its index (moov) at the end cannot be read from a pipe; "
                + "pipe `-f nut`, `-f matroska` or a fragmented mp4 (`-movflags frag_keyframe+empty_moov`) instead"
        case .endsEarly(let f, let n, let m):
            return "\(f): the input ends early (truncated?) after \(n) frame\(n == 1 ? "" : "s") (\(m)); "
                + "etok encode --skip-damaged keeps the frames before the cut"
        case .partialRawFrame(let f, let b, let fb, let n):
            return "\(f): raw video ends with a partial frame (\(b) of \(fb) bytes after \(n) whole frames); "
                + "check --size and --pix-fmt"
        case .unsupportedCodec(let f, let c):
            return "\(f): no decoder for codec '\(c)' in this FFmpeg"
        case .invalidArgument(let f, let m):
            return "\(f): \(m)"
        case .tooManyFramesForImage(let f):
            return "\(f): holds one picture but the input has more frames; use a pattern such as frames/%05d.png"
        case .ffmpeg(let call, let f, let code, let m):
            return "\(f): \(call) failed: \(m) (code \(code))"
        }
    }
}
