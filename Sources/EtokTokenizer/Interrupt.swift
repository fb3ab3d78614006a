import Dispatch
import EtokIO
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Turns SIGINT (Ctrl-C) and SIGTERM (`kill`, `timeout`) into a clean cancel while it lives. Install
/// it before any output is created and `attach` the run once it exists: a signal then stops the
/// run, which removes its partial output (an older file of that name stays). A signal before there
/// is a run (an input still being probed), or a second signal, removes every temporary output and
/// exits at once (status 128 + the signal). Which signal arrived is kept for the exit status.
public final class Interrupt: @unchecked Sendable {
    private static let signals: [Int32] = [SIGINT, SIGTERM]
    private var sources: [DispatchSourceSignal] = []
    private let lock = NSLock()
    private var count = 0
    private var cancel: (@Sendable () -> Void)?

    /// The signal that stopped the last run (0: none), for the exit status (130 or 143).
    public static var received: Int32 { receivedBox.withLock { $0 } }
    private static let receivedBox = LockedValue<Int32>(0)

    /// Catches the signals; nothing to cancel yet.
    public init() {
        for number in Self.signals {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [unowned self] in self.handle(number) }
            source.resume()
            sources.append(source)
        }
    }

    /// Catches the signals and cancels with `onInterrupt`.
    public convenience init(_ onInterrupt: @escaping @Sendable () -> Void) {
        self.init()
        attach(onInterrupt)
    }

    /// What a signal cancels from now on.
    public func attach(_ onInterrupt: @escaping @Sendable () -> Void) {
        lock.lock()
        cancel = onInterrupt
        lock.unlock()
    }

    private func handle(_ number: Int32) {
        lock.lock()
        count += 1
        let again = count > 1, cancel = self.cancel
        lock.unlock()
        Self.receivedBox.withLock { $0 = number }
        guard !again, let cancel else {
            OutputPlacement.discardPending()
            if !again { StandardError.line("etok: \(number == SIGTERM ? "terminated" : "interrupted"); partial output removed") }
            _exit(128 + number)
        }
        cancel()
    }

    /// Gives the signals back their default action.
    public func stop() {
        for source in sources { source.cancel() }
        for number in Self.signals { signal(number, SIG_DFL) }
    }
}

/// A value behind a lock (for the few globals that signal handlers set).
final class LockedValue<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) { self.value = value }

    func withLock<R>(_ body: (inout Value) -> R) -> R {
        lock.lock()
        defer { lock.unlock() }
        return body(&value)
    }
}
