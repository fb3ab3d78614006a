import CFFmpeg

// Every FFmpeg call that can fail goes through `ff(_:file:_:)`: one place turns FFmpeg's negative
// return codes into a typed `MediaError` carrying the call's name, the file and FFmpeg's own message.

/// Calls `body`, an FFmpeg function returning an `int` status, and returns the status.
///
/// A negative status becomes a thrown `MediaError`: `mapping`'s error when it has one for that
/// code (e.g. "the input ends early" for a read error), else `.ffmpeg(call:file:code:message:)`
/// with FFmpeg's own message. Codes in `passing` (EAGAIN, EOF from the send/receive calls) are
/// returned instead, so the caller can branch on them.
@discardableResult
func ff(_ call: String, file: String, passing: Set<Int32> = [], mapping: (Int32) -> MediaError? = { _ in nil },
        _ body: () -> Int32) throws -> Int32 {
    let status = body()
    guard status < 0, !passing.contains(status) else { return status }
    throw mapping(status) ?? MediaError.ffmpeg(call: call, file: file, code: status, message: ffMessage(status))
}

/// FFmpeg's text for an error code (av_strerror), e.g. "Invalid data found when processing input".
func ffMessage(_ code: Int32) -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    buffer.withUnsafeMutableBufferPointer { etok_av_strerror(code, $0.baseAddress, $0.count) }
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// FFmpeg status codes that callers branch on.
enum FFCode {
    static let eof = etok_averror_eof()
    static let again = etok_averror_eagain()
    static func posix(_ errno: Int32) -> Int32 { etok_averror(errno) }
}

/// How much FFmpeg itself may print on stderr. etok reports problems as one-line typed errors,
/// so FFmpeg's own log is silent unless asked for (`etok -v`, for debugging).
public enum FFmpegLog {
    /// Silence FFmpeg's logging (the default that the command sets).
    public static func silence() { av_log_set_level(AV_LOG_QUIET) }
    /// Let FFmpeg print warnings and errors (debugging).
    public static func showWarnings() { av_log_set_level(AV_LOG_WARNING) }
}
