import CFFmpeg
import Synchronization

/// Counts the errors that FFmpeg's decoders and demuxers log, per `VideoSource`, so that "decode
/// errors" is the same number on every run of the same file, and a demuxer's complaint (Matroska's
/// "File ended prematurely") can mark a cut file.
///
/// Why the log: with frame threading, whether a damaged frame comes back flagged, or its error is
/// returned by a later receive call, depends on thread timing (the same file gave 0 or 1). What
/// the decoder logs does not: each frame is decoded once, in order of its references. (Sources
/// now decode with slice threads, which steadies the flags too; the log needs no such assumption.) Every
/// decoder context of a source (the frame-threading copies too: FFmpeg copies `opaque` into them)
/// and its format context carry the source's token in `opaque`; the process-wide log callback (C,
/// in the CFFmpeg shim) counts messages at error level or worse by token and kind, then passes
/// every message on to FFmpeg's default printer, which still honours the level set by `FFmpegLog`.
enum DecoderErrorLog {
    /// Errors logged so far by a source's decoder and by its demuxer.
    struct Counts: Sendable {
        var decoder = 0
        var demuxer = 0
    }

    private static let counts = Mutex<[UInt: Counts]>([:])
    private static let lastToken = Atomic<UInt>(0)
    /// Installs the callback once (a process-wide FFmpeg setting).
    private static let installed: Void = { etok_install_error_counter(noteError) }()

    /// A new token for one source's decoder and format contexts (put it in `opaque`).
    static func register() -> UInt {
        _ = installed
        let token = lastToken.add(1, ordering: .relaxed).newValue
        counts.withLock { $0[token] = Counts() }
        return token
    }

    /// Errors logged so far by the contexts carrying `token`.
    static func counts(_ token: UInt) -> Counts { counts.withLock { $0[token] ?? Counts() } }

    /// Forgets `token` (its source closed).
    static func unregister(_ token: UInt) { _ = counts.withLock { $0.removeValue(forKey: token) } }

    fileprivate static func note(_ token: UInt, demuxer: Bool) {
        counts.withLock {
            guard var c = $0[token] else { return }
            if demuxer { c.demuxer += 1 } else { c.decoder += 1 }
            $0[token] = c
        }
    }
}

/// Called by the C log callback (any thread) for each error with the context's `opaque` and kind
/// (0: decoder, 1: demuxer).
private let noteError: @convention(c) (UnsafeMutableRawPointer?, Int32) -> Void = { opaque, kind in
    if let opaque { DecoderErrorLog.note(UInt(bitPattern: opaque), demuxer: kind == 1) }
}
