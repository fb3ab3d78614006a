import EtokPipeline
import Foundation

/// The run/cancel handshake every job (preview, encode, decode) shares: `cancel()` may come from
/// any thread (a SIGINT handler), before the pipeline exists or while it runs, and must stop it.
///
/// Thread-safe. `run` blocks until the pipeline ends; on cancellation or a stage's error it calls
/// `cleanUp` (remove partial outputs) and throws `PipelineError.cancelled` or the stage's own error.
final class CancellableRun: @unchecked Sendable {
    private let lock = NSLock()
    private var pipeline: Pipeline?
    private var cancelled = false

    /// Runs `pipeline` to the end.
    func run(_ pipeline: Pipeline, cleanUp: () -> Void) throws {
        lock.lock()
        self.pipeline = pipeline
        let stopNow = cancelled
        lock.unlock()
        if stopNow { pipeline.cancel() }
        switch pipeline.run() {
        case .completed:
            return
        case .cancelled:
            cleanUp()
            throw PipelineError.cancelled
        case .failed(_, let error):
            cleanUp()
            throw error
        }
    }

    /// Stops the run (idempotent); before `run` it makes `run` stop at once.
    func cancel() {
        lock.lock()
        cancelled = true
        let pipeline = self.pipeline
        lock.unlock()
        pipeline?.cancel()
    }
}
