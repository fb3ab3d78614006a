// The loop each stage runs on its own queue. Every loop ends in exactly one of the stage's
// hooks: `finish` after end of stream, `abort` after a stop (cancel, or a failure anywhere,
// its own included). A stage's end of stream goes downstream only after its `finish` returned.

/// Source loop: pull, push (blocking while the edge is full), repeat until nil or a stop.
/// It checks for a stop before each pull, so a cancelled run decodes no further frame.
func runSource<S: PipelineSource>(
    _ source: inout S, name: String, outbox: BoundedBuffer<S.Output>, control: RunControl
) {
    do {
        while true {
            if control.isStopping { throw PipelineError.stopped }
            guard let item = try source.next() else { break }
            guard outbox.push(item) else { throw PipelineError.stopped }
        }
        try source.finish()
    } catch {
        record(error, stage: name, control: control)
        source.abort()
        return
    }
    outbox.finish()
}

/// Transform loop: borrow the head input, process it (emitting into the next edge), free its slot.
func runTransform<T: PipelineTransform>(
    _ transform: inout T, name: String,
    inbox: BoundedBuffer<T.Input>, outbox: BoundedBuffer<T.Output>, control: RunControl
) {
    let emit: (T.Output) throws -> Void = { output in
        guard outbox.push(output) else { throw PipelineError.stopped }
    }
    do {
        drain: while true {
            switch try inbox.withHead({ try transform.process($0, emit: emit) }) {
            case .processed: continue
            case .endOfStream: break drain
            case .stopped: throw PipelineError.stopped
            }
        }
        try transform.finish(emit: emit)
    } catch {
        record(error, stage: name, control: control)
        transform.abort()
        return
    }
    outbox.finish()
}

/// Sink loop: borrow the head, consume it, free its slot; at end of stream claim the finish.
func runSink<K: PipelineSink>(
    _ sink: inout K, name: String, inbox: BoundedBuffer<K.Input>, control: RunControl
) {
    do {
        drain: while true {
            switch try inbox.withHead({ try sink.consume($0) }) {
            case .processed: continue
            case .endOfStream: break drain
            case .stopped: throw PipelineError.stopped
            }
        }
        guard control.beginFinishing() else { throw PipelineError.stopped }
        try sink.finish()
        control.complete()
    } catch {
        record(error, stage: name, control: control)
        sink.abort()
    }
}

/// A stage's own error fails the run; `.stopped` only means the run was already decided.
private func record(_ error: any Error, stage: String, control: RunControl) {
    if let pipelineError = error as? PipelineError, case .stopped = pipelineError { return }
    control.fail(stage: stage, error: error)
}
