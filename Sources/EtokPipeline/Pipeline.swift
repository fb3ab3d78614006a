import Dispatch
import Foundation

/// A linear, bounded, ordered, cancellable pipeline: a source, transforms and a sink, each on its
/// own serial Dispatch queue, neighbours joined by an edge holding at most `capacity` items
/// (default 2) under the rule of ``BoundedBufferPolicy``. A pipeline runs once.
///
///     let pipeline = Pipeline.source("decode", videoSource)     // PipelineSource
///         .then("preprocess", preprocessor)                     // PipelineTransform
///         .map("stamp", capacity: 4) { frame in frame }          // closure transform
///         .sink("write", writer)                                 // PipelineSink
///     signalSource.setEventHandler { pipeline.cancel() }         // e.g. on SIGINT
///     switch pipeline.run() {                                    // blocks until the end
///     case .completed: ...                                       // every finish hook succeeded
///     case .cancelled: ...                                       // cancel() came first
///     case .failed(let stage, let error): ...                    // first error, with its stage
///     }
///
/// ## Ownership
/// - Stages are handed over `sending`: from then on the pipeline owns them and calls each only
///   from its own queue, so a stage needs no locks and may hold non-Sendable state (an encoder's
///   context). The builder is noncopyable, so a stage joins exactly one pipeline. A stage whose
///   results the caller reads afterwards (counts, a summary) should keep them in a `Sendable`
///   object (a `Sendable` stage may be shared; its thread safety is then its own).
/// - Items are `Sendable` values. A pushed item belongs to the edge; the consumer borrows it
///   during `process`/`consume`, and the edge releases it when that call returns (the item's
///   `deinit` runs on the consumer's thread then). Items a stage keeps on purpose (context
///   frames) are the stage's own.
///
/// ## Blocking and memory
/// - A producer (the source after `next()`, a transform inside `emit`) blocks while its outgoing
///   edge is full, until the consumer finishes an item (back-pressure).
/// - A consumer blocks while its incoming edge is empty and not finished.
/// - An item being processed keeps its slot in the incoming edge, so at most (sum of edge
///   capacities + number of stages) items exist at once, whatever the stream's length: each edge
///   holds up to its capacity and each stage at most one item it has not yet pushed.
/// - Cost: one lock round trip per item per edge, plus a thread wake-up whenever the other side
///   was waiting; see Benchmarks/ for the measured overhead.
///
/// ## End of stream
/// The source's `next()` returns nil, its `finish()` runs, and only then is the edge marked
/// finished; each transform drains what is left, runs `finish(emit:)` (which may emit buffered
/// outputs) and passes end of stream on; the sink drains and runs `finish()` (make the output
/// final). Only a successful sink `finish()` makes the run `.completed`. Order is kept end to end.
///
/// ## Cancellation and errors
/// - ``cancel()`` (from any thread) and the first error thrown by any stage both decide the run;
///   the first decision wins, later errors are dropped. Deciding closes every edge: blocked
///   producers and consumers wake at once, items still held are released, `emit` throws
///   ``PipelineError/stopped`` (let it propagate), and every stage that had not finished runs its
///   `abort()` hook, exactly once (a writer removes its partial output there).
/// - A stage busy inside `next()`/`process`/`consume` (a read on a pipe, a long encode) is not
///   interrupted: it stops when that call returns. Stages blocked on edges do not wait for it, so
///   a sink's `abort()` runs promptly even while the source is stuck in a read; ``wait()`` returns
///   once every stage has returned, and ``wait(timeout:)`` lets a caller give up sooner.
/// - Once the sink has begun `finish()`, `cancel()` has no effect: the output is being completed.
/// - A `finish` hook that throws is that stage's failure, and its `abort()` runs next.
/// - ``wait()`` and ``run()`` return only after every stage and its hook have returned.
///
/// Threading: `start` and `cancel` may be called from any thread, stages included; `wait` and
/// `run` from any thread but a stage's own (a stage waiting for its own run never returns).
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

    /// A pipeline dropped without being started still owes its stages their hook: it cancels
    /// and runs each stage loop here, on the releasing thread (each aborts at once).
    deinit {
        guard let runners = pendingRunners else { return }
        control.cancel()
        for runner in runners { runner.body() }
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
