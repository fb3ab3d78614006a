import CFFmpeg

// Every FFmpeg call that can fail goes through `ff(_:file:_:)`: one place turns FFmpeg's negative
// return codes into a typed `MediaError` carrying the call's name, the file and FFmpeg's own message.

/// Calls `body`, an FFmpeg function returning an `int` status; a negative status becomes
/// `MediaError.ffmpeg(call:file:code:message:)`. Returns the (non-negative) status.
@discardableResult
func ff(_ call: String, file: String, _ body: () -> Int32) throws -> Int32 {
    let status = body()
    if status < 0 { throw MediaError.ffmpeg(call: call, file: file, code: status, message: ffMessage(status)) }
    return status
}

/// Like `ff(_:file:_:)`, but hands back the codes in `passing` (for example EAGAIN and EOF from the
/// send/receive calls) instead of throwing them, so the caller can branch on them.
func ff(_ call: String, file: String, passing: Set<Int32>, _ body: () -> Int32) throws -> Int32 {
    let status = body()
    if status < 0 && !passing.contains(status) {
        throw MediaError.ffmpeg(call: call, file: file, code: status, message: ffMessage(status))
    }
    return status
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
