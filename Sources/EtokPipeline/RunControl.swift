import Foundation

/// The outcome of one run, shared by its stages and the caller. The first decision wins;
/// deciding anything but `.completed` closes every edge, which wakes every blocked stage.
///
/// Phases: running → finishing (the sink reached end of stream and is finalising; `cancel()`
/// no longer applies) → done(result); or running → done(.cancelled / .failed).
/// Thread safety: state guarded by `lock`; edges are closed outside it.
final class RunControl: @unchecked Sendable {
    private enum Phase {
        case running
        case finishing
        case done(PipelineResult)
    }

    private let lock = NSLock()
    private var phase = Phase.running
    private var edges: [@Sendable () -> Void] = []
    private var misconfiguration: PipelineError?
    private var misconfiguredStage = ""

    /// The result once decided.
    var result: PipelineResult? {
        lock.lock()
        defer { lock.unlock() }
        if case .done(let result) = phase { return result }
        return nil
    }

    /// True once the run is decided or the sink is finishing: a source stops pulling then.
    var isStopping: Bool {
        lock.lock()
        defer { lock.unlock() }
        if case .running = phase { return false }
        return true
    }

    /// Builder only: tracks an edge so a stop can close it.
    func register<Item>(_ edge: BoundedBuffer<Item>) {
        lock.lock()
        edges.append { edge.close() }
        lock.unlock()
    }

    /// Builder only: remembers the first bad capacity, reported when the run starts.
    func noteMisconfiguration(stage: String, capacity: Int) {
        lock.lock()
        if misconfiguration == nil {
            misconfiguration = .invalidCapacity(stage: stage, capacity: capacity)
            misconfiguredStage = stage
        }
        lock.unlock()
    }

    /// At start: a bad configuration fails the run before any item moves (every stage then
    /// sees closed edges and runs its `abort` hook).
    func failIfMisconfigured() {
        lock.lock()
        let error = misconfiguration
        let stage = misconfiguredStage
        lock.unlock()
        if let error { fail(stage: stage, error: error) }
    }

    /// External cancel: applies only while running.
    func cancel() {
        stop(with: .cancelled, allowedWhileFinishing: false)
    }

    /// A stage threw. Applies while running, and while finishing (the sink's own `finish`).
    func fail(stage: String, error: any Error) {
        stop(with: .failed(stage: stage, error: error), allowedWhileFinishing: true)
    }

    /// The sink reached end of stream: true if it should finish, false if the run was already
    /// decided (then it must abort).
    func beginFinishing() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard case .running = phase else { return false }
        phase = .finishing
        return true
    }

    /// The sink finished successfully.
    func complete() {
        lock.lock()
        if case .finishing = phase { phase = .done(.completed) }
        lock.unlock()
    }

    private func stop(with result: PipelineResult, allowedWhileFinishing: Bool) {
        lock.lock()
        let applies: Bool
        switch phase {
        case .running: applies = true
        case .finishing: applies = allowedWhileFinishing
        case .done: applies = false
        }
        if applies { phase = .done(result) }
        let toClose = applies ? edges : []
        lock.unlock()
        for close in toClose { close() }
    }
}
