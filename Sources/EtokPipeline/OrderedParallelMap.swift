import Dispatch
import Foundation

/// A transform that maps items on several threads at once and emits the results in input order:
/// it gathers up to `workers.count` inputs, maps them side by side (input *i* of a batch on
/// `workers[i]`, with `DispatchQueue.concurrentPerform`), then emits their outputs in the order
/// the inputs came. The last, shorter batch runs at end of stream.
///
/// Use it where items are independent and costly (a chunk of an encode or a decode): the output
/// is the same for any worker count, as long as `transform` gives a worker's result independent
/// of what that worker did before.
///
/// ## Workers
/// A worker is the per-thread state `transform` needs (an encoder with its model context). Each
/// worker serves at most one item at a time, so it needs no locks; it may serve its items on
/// different threads over the run. The stage owns the workers once handed to the pipeline.
///
/// ## Memory and blocking
/// The stage holds at most `workers.count` inputs (the batch being gathered or mapped) and, while
/// it emits, the outputs of one batch: with the pipeline's edges that stays bounded by the
/// settings, whatever the stream's length. The stage's thread blocks while a batch is mapped,
/// then in `emit` while the next edge is full.
///
/// ## Errors and cancellation
/// A `transform` that throws fails the run, as a throwing stage does: the outputs of the inputs
/// before it in the batch are emitted first, then its error is thrown (later inputs of the batch
/// are dropped). Cancellation is the pipeline's: a batch being mapped runs to its end (a stage
/// busy in `process` is not interrupted), then `emit` throws and no further batch starts.
///
/// Cost: one `concurrentPerform` per batch, which runs at most one item per core at once (more
/// workers than cores queue up, they do not oversubscribe); workers that finish early wait for the batch's
/// slowest item, so batches of even-sized items use the cores best.
public struct OrderedParallelMap<Worker, Input: Sendable, Output: Sendable>: PipelineTransform {
    private let workers: [Worker]
    private let transform: (Worker, Input) throws -> Output
    private var batch: [Input] = []

    /// A stage mapping with `transform` on each of `workers` (at least one).
    public init(workers: [Worker], _ transform: @escaping (Worker, Input) throws -> Output) {
        precondition(!workers.isEmpty, "OrderedParallelMap needs at least one worker")
        self.workers = workers
        self.transform = transform
        batch.reserveCapacity(workers.count)
    }

    /// Adds `input` to the batch; maps and emits the batch once it is full.
    public mutating func process(_ input: Input, emit: (Output) throws -> Void) throws {
        batch.append(input)
        if batch.count == workers.count { try mapBatch(emit: emit) }
    }

    /// Maps and emits what is left.
    public mutating func finish(emit: (Output) throws -> Void) throws {
        if !batch.isEmpty { try mapBatch(emit: emit) }
    }

    /// Drops the inputs gathered.
    public mutating func abort() {
        batch.removeAll()
    }

    /// Maps the batch, frees its inputs, then emits the outputs one by one (each released once
    /// emitted).
    private mutating func mapBatch(emit: (Output) throws -> Void) throws {
        var outputs = Self.map(batch, on: workers, transform)
        batch.removeAll(keepingCapacity: true)
        for i in outputs.indices {
            let result = outputs[i]!
            outputs[i] = nil
            try emit(try result.get())
        }
    }

    private static func map(_ inputs: [Input], on workers: [Worker],
                            _ transform: @escaping (Worker, Input) throws -> Output) -> [Result<Output, any Error>?] {
        let results = BatchResults<Output>(count: inputs.count)
        let shared = UncheckedBatch(workers: workers, inputs: inputs, transform: transform)
        DispatchQueue.concurrentPerform(iterations: inputs.count) { i in
            results.set(i, Result { try shared.transform(shared.workers[i], shared.inputs[i]) })
        }
        return results.take()
    }
}

extension PipelineBuilder {
    /// Appends an ``OrderedParallelMap`` stage: `transform` runs on up to `workers.count` items
    /// at once, one per worker, and the outputs leave in input order.
    public consuming func parallelMap<Worker, U: Sendable>(
        _ name: String, capacity: Int = defaultCapacity, workers: sending [Worker],
        _ transform: sending @escaping (Worker, Output) throws -> U
    ) -> PipelineBuilder<U> {
        then(name, capacity: capacity, OrderedParallelMap(workers: workers, transform))
    }
}

/// One batch's workers, inputs and transform, lent to the concurrent iterations: iteration *i*
/// touches only worker *i* and input *i*, so nothing is shared between threads.
private struct UncheckedBatch<Worker, Input, Output>: @unchecked Sendable {
    let workers: [Worker]
    let inputs: [Input]
    let transform: (Worker, Input) throws -> Output
}

/// One result slot per item of a batch, each written by one iteration.
private final class BatchResults<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var slots: [Result<Value, any Error>?]

    init(count: Int) { slots = Array(repeating: nil, count: count) }

    func set(_ i: Int, _ result: Result<Value, any Error>) {
        lock.lock()
        slots[i] = result
        lock.unlock()
    }

    /// Every slot, in order, emptied (call after the batch ended: every slot is set).
    func take() -> [Result<Value, any Error>?] {
        lock.lock()
        defer { lock.unlock() }
        let all = slots
        slots.removeAll()
        return all
    }
}
