/// The first stage: produces items until end of stream.
///
/// Threading: the pipeline owns the source once it is handed over (the builder takes it
/// `sending`) and calls it only from the stage's own serial queue, so it needs no locking.
/// Exactly one of ``finish()`` or ``abort()`` is called, once, after the last ``next()``.
public protocol PipelineSource<Output> {
    /// The item type; items cross threads, hence `Sendable`.
    associatedtype Output: Sendable

    /// Produces the next item, or nil at end of stream. May block (reading a file or a pipe).
    /// A throw fails the run, naming this stage. Not interrupted by cancellation: a source
    /// blocked here delays the end of a cancelled run until it returns.
    mutating func next() throws -> Output?

    /// Called after `next()` returned nil, before end of stream is passed on (close a file).
    /// A throw fails the run, naming this stage, and ``abort()`` follows.
    mutating func finish() throws

    /// Called when the run was cancelled or failed before this stage finished.
    mutating func abort()
}

/// A middle stage: turns each input into zero, one or several outputs, in order, possibly
/// keeping state between items (an encoder conditioned on earlier frames).
///
/// Threading: owned by the pipeline once handed over; called only from its own serial queue.
/// Items arrive one at a time in source order. Exactly one of ``finish(emit:)`` or ``abort()``
/// is called, once.
public protocol PipelineTransform<Input, Output> {
    associatedtype Input: Sendable
    associatedtype Output: Sendable

    /// Handles one input. Call `emit` for each output, in order; `emit` blocks while the next
    /// edge is full, and throws once the run is cancelled or failed: let that error propagate
    /// (do not catch it), so the stage stops promptly. `emit` must not escape this call.
    ///
    /// Ownership: the input keeps its slot in the incoming edge until this returns, so the
    /// upstream producer cannot run further ahead than the edge's capacity meanwhile. Outputs
    /// belong to the pipeline once emitted. Items the stage keeps (context) are its own business.
    mutating func process(_ input: Input, emit: (Output) throws -> Void) throws

    /// Called at end of stream: emit what is still buffered (lookahead), release resources.
    /// End of stream is passed on only after this returns. A throw fails the run, naming this
    /// stage, and ``abort()`` follows.
    mutating func finish(emit: (Output) throws -> Void) throws

    /// Called when the run was cancelled or failed before this stage finished.
    mutating func abort()
}

/// The last stage: consumes items (writes a file, prints).
///
/// Threading: owned by the pipeline once handed over; called only from its own serial queue.
/// Exactly one of ``finish()`` or ``abort()`` is called, once. Only a successful ``finish()``
/// makes the run `.completed`, so a writer should make its output final there (write the
/// trailer, rename a temporary file) and remove a partial output in ``abort()``.
public protocol PipelineSink<Input> {
    associatedtype Input: Sendable

    /// Consumes one item; the item keeps its slot in the incoming edge until this returns.
    /// A throw (for example EPIPE on a closed output pipe) fails the run, naming this stage.
    mutating func consume(_ input: Input) throws

    /// Called at end of stream, after every item was consumed. Once the sink starts finishing,
    /// `cancel()` no longer changes the outcome. A throw fails the run and ``abort()`` follows.
    mutating func finish() throws

    /// Called when the run was cancelled or failed, or when ``finish()`` threw.
    mutating func abort()
}

// Hooks are optional: most stages have nothing to finalise or remove.
extension PipelineSource {
    /// Default: nothing to finalise.
    public mutating func finish() throws {}
    /// Default: nothing to remove.
    public mutating func abort() {}
}

extension PipelineTransform {
    /// Default: nothing buffered to flush.
    public mutating func finish(emit: (Output) throws -> Void) throws {}
    /// Default: nothing to remove.
    public mutating func abort() {}
}

extension PipelineSink {
    /// Default: nothing to finalise.
    public mutating func finish() throws {}
    /// Default: nothing to remove.
    public mutating func abort() {}
}

/// A source from a pull closure: returns the next item, or nil at end of stream.
public struct ClosureSource<Output: Sendable>: PipelineSource {
    private let pull: () throws -> Output?

    /// Wraps `pull`; it runs on the source's own queue only.
    public init(_ pull: @escaping () throws -> Output?) { self.pull = pull }

    /// Calls the closure.
    public mutating func next() throws -> Output? { try pull() }
}

/// A stateless 1-to-1 transform from a closure.
public struct MapTransform<Input: Sendable, Output: Sendable>: PipelineTransform {
    private let transform: (Input) throws -> Output

    /// Wraps `transform`; it runs on the stage's own queue only.
    public init(_ transform: @escaping (Input) throws -> Output) { self.transform = transform }

    /// Emits `transform(input)`.
    public mutating func process(_ input: Input, emit: (Output) throws -> Void) throws {
        try emit(transform(input))
    }
}

/// A 1-to-n transform from a closure that calls `emit` zero or more times per input.
public struct FlatMapTransform<Input: Sendable, Output: Sendable>: PipelineTransform {
    private let body: (Input, (Output) throws -> Void) throws -> Void

    /// Wraps `body`; it runs on the stage's own queue only.
    public init(_ body: @escaping (Input, (Output) throws -> Void) throws -> Void) { self.body = body }

    /// Lets `body` emit what it wants for `input`.
    public mutating func process(_ input: Input, emit: (Output) throws -> Void) throws {
        try body(input, emit)
    }
}

/// A sink from a closure, with optional finish and abort hooks.
public struct ClosureSink<Input: Sendable>: PipelineSink {
    private let consumeItem: (Input) throws -> Void
    private let finishHook: () throws -> Void
    private let abortHook: () -> Void

    /// Wraps the closures; they run on the sink's own queue only.
    public init(
        _ consume: @escaping (Input) throws -> Void,
        finish: @escaping () throws -> Void = {},
        abort: @escaping () -> Void = {}
    ) {
        consumeItem = consume
        finishHook = finish
        abortHook = abort
    }

    /// Calls the consume closure.
    public mutating func consume(_ input: Input) throws { try consumeItem(input) }
    /// Calls the finish closure.
    public mutating func finish() throws { try finishHook() }
    /// Calls the abort closure.
    public mutating func abort() { abortHook() }
}
