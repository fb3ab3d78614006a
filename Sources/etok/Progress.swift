import EtokIO
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Progress on stderr, ffmpeg-style: on a terminal one live line rewritten in place
/// (`frame=  120 fps= 61 time=00:00:04.80 speed=2.4x eta=00:00:02`), otherwise a plain line
/// every few seconds (logs, CI); nothing with `-q`.
///
/// Thread-safe: `update` is called from the pipeline's sink queue, `end` from the main thread.
/// Cost: a clock read per update; printing is throttled.
final class ProgressReporter: @unchecked Sendable {
    private let enabled: Bool
    private let live: Bool
    private let duration: Double?
    private let interval: Double
    private let start = Date()
    private let lock = NSLock()
    private var lastPrint: Date
    private var printedLive = false
    private var lastExtra: String?

    /// `duration` (seconds of media, when known) enables the ETA.
    init(quiet: Bool, duration: Double?) {
        enabled = !quiet
        live = isatty(STDERR_FILENO) != 0
        self.duration = duration
        interval = live ? 0.25 : 5
        // A live line may show at once; plain lines start after the first interval.
        lastPrint = live ? .distantPast : start
    }

    /// Records that `frames` frames and `mediaSeconds` of media are done.
    /// `extra` is appended to the line (the encoder's tokens per frame and savings).
    func update(frames: Int, mediaSeconds: Double, extra: String? = nil) {
        guard enabled else { return }
        lock.lock()
        defer { lock.unlock() }
        let now = Date()
        guard now.timeIntervalSince(lastPrint) >= interval else { return }
        lastPrint = now
        lastExtra = extra
        emit(line(frames: frames, mediaSeconds: mediaSeconds, now: now))
    }

    /// Ends the live line and prints `summary` (unless quiet).
    func end(frames: Int, mediaSeconds: Double, summary: String?) {
        guard enabled else { return }
        lock.lock()
        defer { lock.unlock() }
        if live && printedLive {
            emit(line(frames: frames, mediaSeconds: mediaSeconds, now: Date()))
            StandardError.write("\n")
        }
        printedLive = false
        if let summary { StandardError.write(summary + "\n") }
    }

    /// Clears a live line before an error message is printed.
    func abandon() {
        lock.lock()
        defer { lock.unlock() }
        if enabled && live && printedLive { StandardError.write("\r\u{1B}[K") }
        printedLive = false
    }

    private func emit(_ text: String) {
        if live {
            StandardError.write("\r" + text + "\u{1B}[K")
            printedLive = true
        } else {
            StandardError.write("etok: " + text + "\n")
        }
    }

    private func line(frames: Int, mediaSeconds: Double, now: Date) -> String {
        let wall = max(1e-6, now.timeIntervalSince(start))
        let speed = mediaSeconds / wall
        var text = "frame=\(pad(frames, 5)) fps=\(pad(Int((Double(frames) / wall).rounded()), 4)) "
            + "time=\(ProgressReporter.clock(mediaSeconds)) speed=\(String(format: "%.2f", speed))x"
        if let duration, speed > 0, duration > mediaSeconds {
            text += " eta=\(ProgressReporter.clock((duration - mediaSeconds) / speed))"
        }
        if let lastExtra { text += " " + lastExtra }
        return text
    }

    private func pad(_ n: Int, _ width: Int) -> String {
        let s = String(n)
        return String(repeating: " ", count: max(0, width - s.count)) + s
    }

    /// "HH:MM:SS.ss".
    static func clock(_ seconds: Double) -> String {
        let s = max(0, seconds)
        let h = Int(s / 3600), m = Int(s.truncatingRemainder(dividingBy: 3600) / 60)
        return String(format: "%02d:%02d:%05.2f", h, m, s.truncatingRemainder(dividingBy: 60))
    }
}
