import EtokPipeline
import Foundation
import XCTest

/// A worker that notices being used by two threads at once and counts how many workers are busy.
final class ProbeWorker: Sendable {
    let id: Int
    private let busy = Locked(false)
    private let shared: ConcurrencyGauge

    init(id: Int, gauge: ConcurrencyGauge) {
        self.id = id
        self.shared = gauge
    }

    /// Runs `body` as this worker's one job; records a violation if the worker was already busy.
    func serve<T>(_ body: () throws -> T) rethrows -> T {
        let wasBusy = busy.withLock { state -> Bool in
            defer { state = true }
            return state
        }
        if wasBusy { shared.noteOverlap() }
        shared.enter()
        defer {
            shared.leave()
            busy.withLock { $0 = false }
        }
        return try body()
    }
}

/// How many workers run at once (now and at most), and whether a worker ever ran twice at once.
final class ConcurrencyGauge: Sendable {
    private let state = Locked<(now: Int, peak: Int, overlaps: Int)>((0, 0, 0))
    func enter() { state.withLock { $0.now += 1; $0.peak = max($0.peak, $0.now) } }
    func leave() { state.withLock { $0.now -= 1 } }
    func noteOverlap() { state.withLock { $0.overlaps += 1 } }
    var peak: Int { state.withLock { $0.peak } }
    var overlaps: Int { state.withLock { $0.overlaps } }
}

final class OrderedParallelMapTests: XCTestCase {
    func workers(_ count: Int, _ gauge: ConcurrencyGauge) -> [ProbeWorker] {
        (0..<count).map { ProbeWorker(id: $0, gauge: gauge) }
    }

    func testOutputsKeepInputOrderUnderRandomDelays() {
        // 103 items: the last batch (3 of 4) runs at end of stream.
        let count = 103
        let delays = randomDelays(count: count, maxMicros: 3000, seed: 13)
        let gauge = ConcurrencyGauge()
        let received = EventLog<Int>()
        let pipeline = Pipeline.source("source", next: countingSource(count))
            .parallelMap("square", workers: workers(4, gauge)) { worker, n in
                worker.serve {
                    Thread.sleep(forTimeInterval: delays[n])
                    return n * n
                }
            }
            .sink("sink", consume: { received.append($0) })
        let result = runWithTimeout(pipeline)
        XCTAssertTrue(result?.isCompleted ?? false, "\(String(describing: result))")
        XCTAssertEqual(received.all, (0..<count).map { $0 * $0 })
        XCTAssertEqual(gauge.overlaps, 0, "a worker served two items at once")
        // Dispatch runs at most one iteration per core at once.
        XCTAssertGreaterThanOrEqual(gauge.peak, min(2, ProcessInfo.processInfo.activeProcessorCount),
                                    "items of a batch run side by side")
        XCTAssertLessThanOrEqual(gauge.peak, 4)
    }

    func testOneWorkerMapsInOrderOneAtATime() {
        let gauge = ConcurrencyGauge()
        let received = EventLog<String>()
        let pipeline = Pipeline.source("source", next: countingSource(5))
            .parallelMap("text", workers: workers(1, gauge)) { worker, n in worker.serve { "\(worker.id):\(n)" } }
            .sink("sink", consume: { received.append($0) })
        XCTAssertTrue(runWithTimeout(pipeline)?.isCompleted ?? false)
        XCTAssertEqual(received.all, ["0:0", "0:1", "0:2", "0:3", "0:4"])
        XCTAssertEqual(gauge.peak, 1)
    }

    func testLiveItemsStayWithinTheBatchAndEdgeBounds() {
        let inputs = LiveCounter(), outputs = LiveCounter()
        let gauge = ConcurrencyGauge()
        let workerCount = 3, inCapacity = 2, outCapacity = 2
        var next = 0
        let pipeline = Pipeline.source("source", next: { () -> TrackedItem? in
                guard next < 500 else { return nil }
                defer { next += 1 }
                return TrackedItem(next, counter: inputs)
            })
            .parallelMap("map", capacity: inCapacity, workers: workers(workerCount, gauge)) { worker, item in
                worker.serve { TrackedItem(item.value, counter: outputs) }
            }
            .sink("sink", capacity: outCapacity, consume: { item in
                // A slow sink: everything upstream fills up and waits.
                if item.value % 50 == 0 { Thread.sleep(forTimeInterval: 0.02) }
            })
        XCTAssertTrue(runWithTimeout(pipeline, seconds: 60)?.isCompleted ?? false)
        XCTAssertEqual(inputs.createdCount, 500)
        // Inputs: one held by the source while it pushes, the edge, and one batch in the stage.
        XCTAssertLessThanOrEqual(inputs.peak, 1 + inCapacity + workerCount, "inputs alive at once")
        // Outputs: one batch in the stage (released as emitted), the edge, one in the sink.
        XCTAssertLessThanOrEqual(outputs.peak, workerCount + outCapacity + 1, "outputs alive at once")
        XCTAssertGreaterThanOrEqual(outputs.peak, outCapacity, "the slow sink let the edge fill")
        XCTAssertEqual(inputs.live, 0)
        XCTAssertEqual(outputs.live, 0)
    }

    func testAThrowingItemFailsTheRunAfterTheOutputsBeforeIt() {
        let mapped = SharedCounter()
        let received = EventLog<Int>()
        let gauge = ConcurrencyGauge()
        let pipeline = Pipeline.source("source", next: countingSource(1000))
            .parallelMap("map", workers: workers(4, gauge)) { worker, n -> Int in
                try worker.serve {
                    mapped.increment()
                    if n == 9 { throw StageTestError(item: n) }
                    return n
                }
            }
            .sink("sink", consume: { received.append($0) })
        let result = runWithTimeout(pipeline)
        guard case .failed(let stage, let error)? = result else { return XCTFail("\(String(describing: result))") }
        XCTAssertEqual(stage, "map")
        XCTAssertEqual(error as? StageTestError, StageTestError(item: 9))
        // Item 9 is in the batch 8..<12: nothing after that batch was mapped, nothing after 8 left.
        XCTAssertLessThanOrEqual(mapped.current, 12)
        let got = received.all
        XCTAssertEqual(got, Array(0..<got.count), "a prefix, in order")
        XCTAssertLessThanOrEqual(got.count, 9)
    }

    func testCancelStopsAfterTheBatchInFlight() {
        let mapped = SharedCounter()
        let hooks = EventLog<String>()
        let handle = PipelineHandle()
        let gauge = ConcurrencyGauge()
        let pipeline = Pipeline.source("source", endlessRecordingSource(hooks))
            .parallelMap("map", workers: workers(2, gauge)) { worker, n -> Int in
                worker.serve {
                    if mapped.increment() == 5 { handle.pipeline?.cancel() }
                    Thread.sleep(forTimeInterval: 0.002)
                    return n
                }
            }
            .sink("sink", RecordingSink(name: "sink", hooks: hooks, received: EventLog<Int>()))
        handle.pipeline = pipeline
        let result = runWithTimeout(pipeline)
        XCTAssertTrue(result?.isCancelled ?? false, "\(String(describing: result))")
        // The fifth item is in the third batch (4, 5): that batch ends, none starts after it.
        XCTAssertLessThanOrEqual(mapped.current, 6)
        XCTAssertEqual(hooks.all.filter { $0.hasSuffix(".abort") }.sorted(), ["sink.abort", "source.abort"])
    }
}
