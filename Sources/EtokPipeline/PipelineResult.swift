/// How a pipeline run ended. The first outcome wins: a failure after a cancel stays `.cancelled`,
/// a cancel after the sink started finishing stays `.completed`.
public enum PipelineResult: Sendable, CustomStringConvertible {
    /// Every item reached the sink and every stage's `finish` hook succeeded.
    case completed
    /// ``Pipeline/cancel()`` was called before the sink started finishing.
    case cancelled
    /// The first error thrown by a stage, with that stage's name. Later errors are dropped.
    case failed(stage: String, error: any Error)

    /// True for `.completed`.
    public var isCompleted: Bool {
        if case .completed = self { return true }
        return false
    }

    /// True for `.cancelled`.
    public var isCancelled: Bool {
        if case .cancelled = self { return true }
        return false
    }

    /// The failed stage's name, or nil.
    public var failedStage: String? {
        if case .failed(let stage, _) = self { return stage }
        return nil
    }

    /// Returns normally for `.completed`; throws ``PipelineError`` otherwise.
    public func get() throws(PipelineError) {
        switch self {
        case .completed: return
        case .cancelled: throw .cancelled
        case .failed(let stage, let error): throw .stageFailed(stage: stage, underlying: error)
        }
    }

    /// One line: "completed", "cancelled" or "failed in stage 'NAME': ERROR".
    public var description: String {
        switch self {
        case .completed: return "completed"
        case .cancelled: return "cancelled"
        case .failed(let stage, let error): return "failed in stage '\(stage)': \(error)"
        }
    }
}

/// Errors of the pipeline itself. Stage errors travel wrapped in `.stageFailed`, so the caller
/// can map the `underlying` error (a media or format error naming its file) to a message.
public enum PipelineError: Error, CustomStringConvertible {
    /// The run was cancelled (SIGINT, a closed output pipe, the caller).
    case cancelled
    /// A stage threw; `underlying` is its error, unchanged.
    case stageFailed(stage: String, underlying: any Error)
    /// An edge was configured with a capacity below 1.
    case invalidCapacity(stage: String, capacity: Int)
    /// A stage called `emit` after the run stopped. Stages see it only if they catch what
    /// `emit` throws; the pipeline never reports it as a failure.
    case stopped

    /// The stage error, when there is one.
    public var underlying: (any Error)? {
        if case .stageFailed(_, let error) = self { return error }
        return nil
    }

    /// One line naming the stage and, through the underlying error, the file and the problem.
    public var description: String {
        switch self {
        case .cancelled:
            return "pipeline: cancelled"
        case .stageFailed(let stage, let error):
            return "pipeline stage '\(stage)': \(error)"
        case .invalidCapacity(let stage, let capacity):
            return "pipeline stage '\(stage)': buffer capacity \(capacity) is below 1"
        case .stopped:
            return "pipeline: stopped (cancelled or failed elsewhere)"
        }
    }
}
