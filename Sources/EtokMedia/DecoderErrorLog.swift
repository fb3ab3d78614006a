import CFFmpeg
import Synchronization

/// Counts the errors that FFmpeg's decoders log, per `VideoSource`, so that "decode errors" is the
/// same number on every run of the same file.
///
/// Why the log: with frame threading, whether a damaged frame comes back flagged, or its error is
/// returned by a later receive call, depends on thread timing (the same file gave 0 or 1). What
/// the decoder logs does not: each frame is decoded once, in order of its references. Every
/// decoder context of a source (the frame-threading copies too: FFmpeg copies `opaque` into them)
/// carries the source's token in `opaque`; the process-wide log callback (C, in the CFFmpeg shim)
/// counts messages at error level or worse by token, then passes every message on to FFmpeg's
/// default printer, which still honours the level set by `FFmpegLog`.
enum DecoderErrorLog {
    private static let counts = Mutex<[UInt: Int]>([:])
    private static let lastToken = Atomic<UInt>(0)
    /// Installs the callback once (a process-wide FFmpeg setting).
    private static let installed: Void = { etok_install_decoder_error_counter(noteDecoderError) }()

    /// A new token for one source's decoder contexts (put it in `opaque`).
    static func register() -> UInt {
        _ = installed
        let token = lastToken.add(1, ordering: .relaxed).newValue
        counts.withLock { $0[token] = 0 }
        return token
    }

    /// Errors logged so far by the decoders carrying `token`.
    static func count(_ token: UInt) -> Int { counts.withLock { $0[token] ?? 0 } }

    /// Forgets `token` (its source closed).
    static func unregister(_ token: UInt) { _ = counts.withLock { $0.removeValue(forKey: token) } }

    fileprivate static func note(_ token: UInt) {
        counts.withLock { if let n = $0[token] { $0[token] = n + 1 } }
    }
}

/// Called by the C log callback (any thread) for each decoder error with the context's `opaque`.
private let noteDecoderError: @convention(c) (UnsafeMutableRawPointer?) -> Void = { opaque in
    if let opaque { DecoderErrorLog.note(UInt(bitPattern: opaque)) }
}
