import Dispatch
import Foundation

/// A linear, bounded, multi-stage pipeline: source → transforms → sink, each stage on its own
/// serial Dispatch queue, joined by ``BoundedBufferPolicy``-governed edges. See the module
/// overview (`EtokPipeline.swift`) for the full contract.
///
/// Build one with ``Pipeline/source(_:_:)`` and the ``PipelineBuilder`` methods, then ``run()``
/// it (or ``start()`` and ``wait()``). A pipeline runs once.
///
/// Threading: `start`, `cancel` and `wait` may be called from any thread (a signal handler's
/// queue included). Stages are called only from their own queues.
public final class Pipeline: @unchecked Sendable {
    /// The stage names, source first.
    public let stageNames: [String]

    private let control: RunControl
    private let group = DispatchGroup()
    private let lock = NSLock()
    // Guarded by `lock`; taken once by `start()`. Holding non-Sendable stages here is safe
    // because the builder received every stage `sending` and nothing else refers to them.
    private var pendingRunners: [StageRunner]?

    fileprivate init(control: RunControl, runners: [StageRunner]) {
        self.control = control
        self.stageNames = runners.map(\.name)
        self.pendingRunners = runners
    }

    /// Starts every stage on its own queue and returns at once. Later calls do nothing.
    public func start() {
        lock.lock()
        let runners = pendingRunners
        pendingRunners = nil
        lock.unlock()
        guard let runners else { return }
        control.failIfMisconfigured()
        for runner in runners {
            let queue = DispatchQueue(label: "etok.pipeline.\(runner.name)")
            let box = UncheckedTransfer(runner.body)
            queue.async(group: group) { box.value() }
        }
    }

    /// Asks every stage to stop. Blocked producers and consumers wake up at once; a stage busy
    /// in `process` stops at its next `emit` or when it returns; every stage that did not finish
    /// runs its `abort` hook. Idempotent; no effect once the sink has started finishing.
    public func cancel() {
        control.cancel()
    }

    /// Starts the run if needed and blocks until every stage and its hook has returned.
    public func wait() -> PipelineResult {
        start()
        group.wait()
        return control.result ?? .cancelled
    }

    /// Like ``wait()``, but gives up after `seconds`, returning nil (the run goes on).
    public func wait(timeout seconds: Double) -> PipelineResult? {
        start()
        guard group.wait(timeout: .now() + seconds) == .success else { return nil }
        return control.result ?? .cancelled
    }

    /// Starts the run and blocks until it ends: `start()` then `wait()`.
    public func run() -> PipelineResult {
        wait()
    }

    /// Begins a pipeline with its source stage.
    public static func source<S: PipelineSource>(
        _ name: String, _ source: sending S
    ) -> PipelineBuilder<S.Output> {
        var source = source
        let control = RunControl()
        return PipelineBuilder(control: control, runners: []) { outbox in
            StageRunner(name: name) { runSource(&source, name: name, outbox: outbox, control: control) }
        }
    }

    /// Begins a pipeline with a pull closure: it returns the next item, or nil at end of stream.
    public static func source<Output: Sendable>(
        _ name: String, next: sending @escaping () throws -> Output?
    ) -> PipelineBuilder<Output> {
        source(name, ClosureSource(next))
    }
}

/// A pipeline under construction whose last stage produces `Output`. Noncopyable, so each
/// stage ends up in exactly one pipeline; each method consumes the builder.
public struct PipelineBuilder<Output: Sendable>: ~Copyable {
    fileprivate let control: RunControl
    fileprivate var runners: [StageRunner]
    /// The last stage, waiting for the edge it will push into.
    fileprivate var pending: (BoundedBuffer<Output>) -> StageRunner

    fileprivate init(
        control: RunControl, runners: [StageRunner],
        pending: @escaping (BoundedBuffer<Output>) -> StageRunner
    ) {
        self.control = control
        self.runners = runners
        self.pending = pending
    }

    /// The default edge capacity: two items, enough to overlap neighbouring stages.
    public static var defaultCapacity: Int { 2 }

    /// Appends a transform stage fed by an edge holding at most `capacity` items.
    public consuming func then<T: PipelineTransform>(
        _ name: String, capacity: Int = defaultCapacity, _ transform: sending T
    ) -> PipelineBuilder<T.Output> where T.Input == Output {
        var transform = transform
        let control = control
        let inbox = makeEdge(name: name, capacity: capacity)
        var runners = runners
        runners.append(pending(inbox))
        return PipelineBuilder<T.Output>(control: control, runners: runners) { outbox in
            StageRunner(name: name) {
                runTransform(&transform, name: name, inbox: inbox, outbox: outbox, control: control)
            }
        }
    }

    /// Appends a stateless 1-to-1 stage.
    public consuming func map<U: Sendable>(
        _ name: String, capacity: Int = defaultCapacity,
        _ transform: sending @escaping (Output) throws -> U
    ) -> PipelineBuilder<U> {
        then(name, capacity: capacity, MapTransform(transform))
    }

    /// Appends a 1-to-n stage: `body` calls `emit` zero or more times per input.
    public consuming func flatMap<U: Sendable>(
        _ name: String, capacity: Int = defaultCapacity,
        _ body: sending @escaping (Output, (U) throws -> Void) throws -> Void
    ) -> PipelineBuilder<U> {
        then(name, capacity: capacity, FlatMapTransform(body))
    }

    /// Ends the pipeline with its sink stage.
    public consuming func sink<K: PipelineSink>(
        _ name: String, capacity: Int = defaultCapacity, _ sink: sending K
    ) -> Pipeline where K.Input == Output {
        var sink = sink
        let control = control
        let inbox = makeEdge(name: name, capacity: capacity)
        var runners = runners
        runners.append(pending(inbox))
        runners.append(StageRunner(name: name) {
            runSink(&sink, name: name, inbox: inbox, control: control)
        })
        return Pipeline(control: control, runners: runners)
    }

    /// Ends the pipeline with a sink closure and optional finish and abort hooks.
    public consuming func sink(
        _ name: String, capacity: Int = defaultCapacity,
        consume: sending @escaping (Output) throws -> Void,
        finish: sending @escaping () throws -> Void = {},
        abort: sending @escaping () -> Void = {}
    ) -> Pipeline {
        sink(name, capacity: capacity, ClosureSink(consume, finish: finish, abort: abort))
    }

    private func makeEdge(name: String, capacity: Int) -> BoundedBuffer<Output> {
        if capacity < 1 { control.noteMisconfiguration(stage: name, capacity: capacity) }
        let edge = BoundedBuffer<Output>(capacity: max(1, capacity))
        control.register(edge)
        return edge
    }
}

/// One stage's loop, ready to run on its queue.
struct StageRunner {
    let name: String
    let body: () -> Void
}

/// Moves a value to another thread. Used only for stage loops, whose stages were received
/// `sending` and are touched by that one thread afterwards.
private struct UncheckedTransfer<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
