// EtokPipeline: a bounded, ordered, cancellable multi-stage pipeline on Dispatch.
// See Package.swift for where it sits in the module graph (a leaf: it imports no etok module).
//
// # Shape
//
//     let pipeline = Pipeline.source("decode", decoder)          // PipelineSource
//         .then("preprocess", capacity: 2, preprocessor)         // PipelineTransform
//         .map("count") { frame in frame }                        // closure transform
//         .sink("write", writer)                                  // PipelineSink
//     switch pipeline.run() {                                     // blocks until the end
//     case .completed: ...
//     case .cancelled: ...                                        // pipeline.cancel() was called
//     case .failed(let stage, let error): ...                     // first error, named
//     }
//
// Each stage runs on its own serial Dispatch queue; neighbouring stages are joined by an edge, a
// FIFO holding at most `capacity` items (default 2) whose rule is `BoundedBufferPolicy`.
//
// # Ownership
//
// - Stages are handed to the builder `sending`: from then on the pipeline owns them and calls
//   each only from its own queue, so stages need no locks and may hold non-Sendable state (an
//   encoder's context). The builder is noncopyable, so a stage joins exactly one pipeline.
// - Items are `Sendable` values. An item a producer pushes belongs to the edge; its consumer
//   borrows it during `process`/`consume` and the edge releases it when that call returns.
//   Whatever a stage keeps beyond that (context frames) is its own and outside the bound.
//
// # Blocking (back-pressure)
//
// - A producer (the source after `next()`, a transform inside `emit`) blocks while the outgoing
//   edge is full, until its consumer finishes an item.
// - A consumer blocks while its incoming edge is empty and not finished.
// - An item being processed keeps its slot in the incoming edge. Hence at most
//   (sum of edge capacities + number of stages) items exist at once: each edge holds up to its
//   capacity, and each stage holds at most one item not yet pushed. Whatever the video length.
//
// # End of stream
//
// The source's `next()` returns nil → its `finish()` runs → the edge is marked finished; the next
// stage drains what is left, runs its `finish(emit:)` (which may emit buffered outputs) and
// passes end of stream on; the sink drains, then runs `finish()` (make the output final). Only
// a successful sink `finish()` makes the run `.completed`. Order is kept end to end.
//
// # Cancellation and errors
//
// - `cancel()` (any thread, e.g. on SIGINT) and the first error thrown by any stage (recorded
//   with the stage's name) both decide the run; the first decision wins. Deciding closes every
//   edge: blocked producers and consumers wake at once, items still held are released, `emit`
//   throws `PipelineError.stopped` (let it propagate), and each stage that had not finished runs
//   its `abort()` hook (remove a partial output). A stage busy inside `next()`/`process` is not
//   interrupted: it stops when that call returns.
// - Once the sink has begun `finish()`, `cancel()` has no effect: the output is being completed.
// - If a `finish` hook throws, that is the stage's failure, and its `abort()` runs next.
// - `wait()`/`run()` return only after every stage and its hook returned; `wait(timeout:)`
//   gives up after a time limit (tests use it so a bug fails rather than hangs).
