import EtokPipeline
import Foundation
import XCTest

/// Errors and cancellation: named failures, prompt stops, the right hook for every stage.
final class PipelineStopTests: XCTestCase {
    func testThrowingStageIsNamedAndEveryOtherStageAborts() {
        let hooks = EventLog<String>()
        let received = EventLog<Int>()
        let pipeline = Pipeline.source("source", endlessRecordingSource(hooks))
            .then("before", RecordingTransform(name: "before", hooks: hooks) { try $1($0) })
            .then("faulty", RecordingTransform(name: "faulty", hooks: hooks) { value, emit in
                if value == 50 { throw StageTestError(item: value) }
                try emit(value)
            })
            .then("after", RecordingTransform(name: "after", hooks: hooks) { try $1($0) })
            .sink("sink", RecordingSink(name: "sink", hooks: hooks, received: received))
        let result = runWithTimeout(pipeline)
        guard case .failed(let stage, let error)? = result else {
            return XCTFail("expected a failure, got \(String(describing: result))")
        }
        XCTAssertEqual(stage, "faulty")
        XCTAssertEqual(error as? StageTestError, StageTestError(item: 50))
        XCTAssertEqual(Set(hooks.all), ["source.abort", "before.abort", "faulty.abort", "after.abort", "sink.abort"])
        XCTAssertEqual(hooks.count, 5, "each stage runs exactly one hook: \(hooks.all)")
        XCTAssertEqual(received.all, Array(0..<received.count), "what arrived before the error is in order")
        XCTAssertLessThanOrEqual(received.count, 50, "nothing after the failing item arrives")
        XCTAssertThrowsError(try result?.get()) { error in
            guard case PipelineError.stageFailed(let stage, let underlying)? = error as? PipelineError else {
                return XCTFail("unexpected \(error)")
            }
            XCTAssertEqual(stage, "faulty")
            XCTAssertEqual(underlying as? StageTestError, StageTestError(item: 50))
        }
    }

    func testSourceErrorFailsRunAfterDeliveredItemsAndAbortsDownstream() {
        let hooks = EventLog<String>()
        let received = EventLog<Int>()
        var next = 0
        let source = RecordingSource(name: "decode", hooks: hooks) {
            if next == 10 { throw StageTestError(item: next) }
            defer { next += 1 }
            return next
        }
        let pipeline = Pipeline.source("decode", source)
            .sink("sink", RecordingSink(name: "sink", hooks: hooks, received: received))
        let result = runWithTimeout(pipeline)
        XCTAssertEqual(result?.failedStage, "decode")
        XCTAssertEqual(Set(hooks.all), ["decode.abort", "sink.abort"])
        XCTAssertLessThanOrEqual(received.count, 10)
    }

    func testSinkFinishErrorFailsRunAndRunsAbortToRemoveOutput() {
        let hooks = EventLog<String>()
        let received = EventLog<Int>()
        var sink = RecordingSink(name: "writer", hooks: hooks, received: received)
        sink.onFinish = { throw StageTestError(item: -1) }
        let pipeline = Pipeline.source("source", RecordingSource(name: "source", hooks: hooks, pull: countingSource(5)))
            .sink("writer", sink)
        let result = runWithTimeout(pipeline)
        XCTAssertEqual(result?.failedStage, "writer")
        XCTAssertEqual(received.all, [0, 1, 2, 3, 4])
        XCTAssertEqual(hooks.all, ["source.finish", "writer.abort"])
    }

    func testTransformFinishErrorIsNamedAndSinkAborts() {
        struct FailingFlush: PipelineTransform {
            mutating func process(_ input: Int, emit: (Int) throws -> Void) throws { try emit(input) }
            mutating func finish(emit: (Int) throws -> Void) throws { throw StageTestError(item: 0) }
        }
        let hooks = EventLog<String>()
        let pipeline = Pipeline.source("source", next: countingSource(3))
            .then("flush", FailingFlush())
            .sink("sink", RecordingSink(name: "sink", hooks: hooks, received: EventLog<Int>()))
        XCTAssertEqual(runWithTimeout(pipeline)?.failedStage, "flush")
        XCTAssertEqual(hooks.all, ["sink.abort"])
    }

    func testCancelMidStreamStopsPromptlyAndAbortsEveryStage() {
        let hooks = EventLog<String>()
        let received = EventLog<Int>()
        let reached = DispatchSemaphore(value: 0)
        var sink = RecordingSink(name: "sink", hooks: hooks, received: received)
        sink.onItem = { value in if value == 100 { reached.signal() } }
        let pipeline = Pipeline.source("source", endlessRecordingSource(hooks))
            .then("middle", RecordingTransform(name: "middle", hooks: hooks) { try $1($0) })
            .sink("sink", sink)
        pipeline.start()
        XCTAssertEqual(reached.wait(timeout: .now() + 30), .success)
        pipeline.cancel()
        let result = runWithTimeout(pipeline, seconds: 10)
        XCTAssertTrue(result?.isCancelled ?? false, "\(String(describing: result))")
        XCTAssertEqual(Set(hooks.all), ["source.abort", "middle.abort", "sink.abort"])
        XCTAssertEqual(received.all, Array(0..<received.count))
        XCTAssertThrowsError(try result?.get())
    }

    func testCancelWakesStagesBlockedOnFullAndEmptyEdges() {
        // The sink blocks in consume until released; upstream fills its edges and blocks.
        let hooks = EventLog<String>()
        let release = DispatchSemaphore(value: 0)
        let entered = DispatchSemaphore(value: 0)
        var sink = RecordingSink(name: "sink", hooks: hooks, received: EventLog<Int>())
        sink.onItem = { _ in
            entered.signal()
            release.wait()
        }
        let pipeline = Pipeline.source("source", endlessRecordingSource(hooks))
            .then("middle", RecordingTransform(name: "middle", hooks: hooks) { try $1($0) })
            .sink("sink", sink)
        pipeline.start()
        XCTAssertEqual(entered.wait(timeout: .now() + 30), .success)
        Thread.sleep(forTimeInterval: 0.05)  // let source and middle block on full edges
        pipeline.cancel()
        // Source and middle stop while the sink is still stuck in consume.
        let deadline = Date().addingTimeInterval(10)
        while hooks.count < 2 && Date() < deadline { Thread.sleep(forTimeInterval: 0.001) }
        XCTAssertEqual(Set(hooks.all), ["source.abort", "middle.abort"])
        release.signal()
        XCTAssertTrue(runWithTimeout(pipeline, seconds: 10)?.isCancelled ?? false)
        XCTAssertEqual(Set(hooks.all), ["source.abort", "middle.abort", "sink.abort"])
    }

    func testCancelWakesSinkWaitingOnSlowSource() {
        let hooks = EventLog<String>()
        let pipeline = Pipeline.source("source", RecordingSource(name: "source", hooks: hooks) {
                Thread.sleep(forTimeInterval: 0.05)
                return 1
            })
            .sink("sink", RecordingSink(name: "sink", hooks: hooks, received: EventLog<Int>()))
        pipeline.start()
        Thread.sleep(forTimeInterval: 0.01)
        pipeline.cancel()
        XCTAssertTrue(runWithTimeout(pipeline, seconds: 10)?.isCancelled ?? false)
        XCTAssertEqual(Set(hooks.all), ["source.abort", "sink.abort"])
    }

    func testCancelBeforeStartAbortsEveryStageWithoutProcessingItems() {
        let hooks = EventLog<String>()
        let received = EventLog<Int>()
        let pipeline = Pipeline.source("source", endlessRecordingSource(hooks))
            .sink("sink", RecordingSink(name: "sink", hooks: hooks, received: received))
        pipeline.cancel()
        XCTAssertTrue(runWithTimeout(pipeline)?.isCancelled ?? false)
        XCTAssertEqual(received.count, 0)
        XCTAssertEqual(Set(hooks.all), ["source.abort", "sink.abort"])
    }

    func testCancelAfterCompletionKeepsTheRunCompleted() {
        let hooks = EventLog<String>()
        let pipeline = Pipeline.source("source", next: countingSource(3))
            .sink("sink", RecordingSink(name: "sink", hooks: hooks, received: EventLog<Int>()))
        XCTAssertTrue(runWithTimeout(pipeline)?.isCompleted ?? false)
        pipeline.cancel()
        XCTAssertTrue(pipeline.wait().isCompleted)
        XCTAssertEqual(hooks.all, ["sink.finish"])
    }

    func testCancelDuringSinkFinishDoesNotUndoTheOutput() {
        let hooks = EventLog<String>()
        let finishing = DispatchSemaphore(value: 0)
        let proceed = DispatchSemaphore(value: 0)
        var sink = RecordingSink(name: "sink", hooks: hooks, received: EventLog<Int>())
        sink.onFinish = {
            finishing.signal()
            proceed.wait()
        }
        let pipeline = Pipeline.source("source", next: countingSource(3)).sink("sink", sink)
        pipeline.start()
        XCTAssertEqual(finishing.wait(timeout: .now() + 30), .success)
        pipeline.cancel()
        proceed.signal()
        XCTAssertTrue(runWithTimeout(pipeline)?.isCompleted ?? false)
        XCTAssertEqual(hooks.all, ["sink.finish"])
    }

    func testErrorAfterCancelLeavesTheRunCancelled() {
        let hooks = EventLog<String>()
        let pipeline = Pipeline.source("source", endlessRecordingSource(hooks))
            .then("thrower", RecordingTransform(name: "thrower", hooks: hooks) { value, emit in
                do {
                    try emit(value)
                } catch {
                    // A stage that swallows the stop and throws its own error instead.
                    throw StageTestError(item: value)
                }
            })
            .sink("sink", RecordingSink(name: "sink", hooks: hooks, received: EventLog<Int>()))
        pipeline.start()
        Thread.sleep(forTimeInterval: 0.02)
        pipeline.cancel()
        XCTAssertTrue(runWithTimeout(pipeline)?.isCancelled ?? false)
    }

    func testInvalidCapacityFailsTheRunNamingTheStage() {
        let hooks = EventLog<String>()
        let pipeline = Pipeline.source("source", RecordingSource(name: "source", hooks: hooks, pull: countingSource(3)))
            .map("bad edge", capacity: 0) { $0 }
            .sink("sink", RecordingSink(name: "sink", hooks: hooks, received: EventLog<Int>()))
        let result = runWithTimeout(pipeline)
        guard case .failed(let stage, let error)? = result,
              case PipelineError.invalidCapacity(_, let capacity)? = error as? PipelineError else {
            return XCTFail("expected invalidCapacity, got \(String(describing: result))")
        }
        XCTAssertEqual(stage, "bad edge")
        XCTAssertEqual(capacity, 0)
        XCTAssertEqual(Set(hooks.all), ["source.abort", "sink.abort"])
    }

    func testStageMayCancelTheRunFromInsideWithoutDeadlock() {
        // A writer that sees its output pipe closed cancels rather than fails.
        let handle = PipelineHandle()
        let hooks = EventLog<String>()
        var sink = RecordingSink(name: "sink", hooks: hooks, received: EventLog<Int>())
        sink.onItem = { value in if value == 20 { handle.pipeline?.cancel() } }
        let pipeline = Pipeline.source("source", endlessRecordingSource(hooks))
            .map("middle") { $0 }
            .sink("sink", sink)
        handle.pipeline = pipeline
        XCTAssertTrue(runWithTimeout(pipeline)?.isCancelled ?? false)
        XCTAssertEqual(Set(hooks.all), ["source.abort", "sink.abort"])
    }

    func testSinkAbortsPromptlyWhileSourceIsStuckInARead() {
        // The source blocks in next() like a read on a silent pipe; cancel must still let the
        // sink remove its output at once, and the run ends when the read returns.
        let hooks = EventLog<String>()
        let readReturns = DispatchSemaphore(value: 0)
        let inRead = DispatchSemaphore(value: 0)
        let sinkAborted = DispatchSemaphore(value: 0)
        var first = true
        let source = RecordingSource(name: "source", hooks: hooks) {
            if first {
                first = false
                return 0
            }
            inRead.signal()
            readReturns.wait()
            return 1
        }
        let pipeline = Pipeline.source("source", source)
            .sink("sink", consume: { _ in }, abort: { sinkAborted.signal() })
        pipeline.start()
        XCTAssertEqual(inRead.wait(timeout: .now() + 30), .success)
        pipeline.cancel()
        XCTAssertEqual(sinkAborted.wait(timeout: .now() + 10), .success, "the sink must not wait for the stuck source")
        XCTAssertNil(pipeline.wait(timeout: 0.05), "the run is not over while the source is in its read")
        readReturns.signal()
        XCTAssertTrue(runWithTimeout(pipeline, seconds: 10)?.isCancelled ?? false)
        XCTAssertEqual(hooks.all, ["source.abort"])
    }

    func testSendableStageStaysReadableByTheCallerAfterTheRun() {
        /// A sink that keeps its total in a lock, so the caller may share it.
        final class SummingSink: PipelineSink, Sendable {
            let total = SharedCounter()
            func consume(_ input: Int) throws { for _ in 0..<input { total.increment() } }
        }
        let sink = SummingSink()
        let pipeline = Pipeline.source("source", next: countingSource(10)).sink("sum", sink)
        XCTAssertTrue(runWithTimeout(pipeline)?.isCompleted ?? false)
        XCTAssertEqual(sink.total.current, (0..<10).reduce(0, +))
    }

    func testPipelineDroppedWithoutStartAbortsEveryStage() {
        let hooks = EventLog<String>()
        let pulls = SharedCounter()
        do {
            let source = RecordingSource(name: "source", hooks: hooks) {
                pulls.increment()
                return 1
            }
            _ = Pipeline.source("source", source)
                .then("middle", RecordingTransform(name: "middle", hooks: hooks) { try $1($0) })
                .sink("sink", RecordingSink(name: "sink", hooks: hooks, received: EventLog<Int>()))
        }
        XCTAssertEqual(hooks.all, ["source.abort", "middle.abort", "sink.abort"])
        XCTAssertEqual(pulls.current, 0, "a cancelled source is not pulled")
    }
}
