import EtokPipeline
import Foundation
import XCTest

/// The memory bound: at most (sum of capacities + number of stages) items alive at once.
final class PipelineMemoryTests: XCTestCase {
    func testLiveItemsStayWithinBoundOnLongSource() {
        let counter = LiveCounter()
        let count = 20_000
        let received = SharedCounter()
        let capacities = (map: 3, split: 2, context: 1, sink: 4)
        let edges = capacities.map + capacities.split + capacities.context + capacities.sink
        let bound = edges + 5
        let pausesThatFilledEdges = SharedCounter()
        var next = 0
        /// Remembers the previous value as context, like a conditional encoder; emits new items.
        struct ContextStage: PipelineTransform {
            let counter: LiveCounter
            var previous: Int?
            mutating func process(_ input: TrackedItem, emit: (TrackedItem) throws -> Void) throws {
                let output = TrackedItem(input.value, counter: counter)
                previous = input.value
                try emit(output)
            }
        }
        let pipeline = Pipeline.source("source", next: { () -> TrackedItem? in
                guard next < count else { return nil }
                defer { next += 1 }
                return TrackedItem(next, counter: counter)
            })
            .map("map", capacity: capacities.map) { TrackedItem($0.value * 2, counter: counter) }
            .flatMap("split", capacity: capacities.split) { (item: TrackedItem, emit: (TrackedItem) throws -> Void) in
                // 1-to-2: each output is created just before it is emitted.
                try emit(TrackedItem(item.value, counter: counter))
                try emit(TrackedItem(item.value + 1, counter: counter))
            }
            .then("context", capacity: capacities.context, ContextStage(counter: counter))
            .sink("sink", capacity: capacities.sink, consume: { item in
                // Now and then the sink pauses until the edges behind it are full.
                if item.value % 4001 == 0 {
                    // One reading decides: the count moves while the sink waits (an upstream stage
                    // frees its input after a blocked emit returns), so reading it twice raced.
                    let deadline = Date().addingTimeInterval(10)
                    var live = counter.live
                    while live < edges && Date() < deadline {
                        Thread.sleep(forTimeInterval: 0.0005)
                        live = counter.live
                    }
                    if live >= edges { pausesThatFilledEdges.increment() }
                }
                received.increment()
            })
        let result = runWithTimeout(pipeline, seconds: 120)
        XCTAssertTrue(result?.isCompleted ?? false, "\(String(describing: result))")
        XCTAssertEqual(received.current, 2 * count)
        XCTAssertEqual(counter.createdCount, count * (1 + 1 + 2 + 2), "every stage made its items")
        XCTAssertLessThanOrEqual(counter.peak, bound, "live items must stay within the bound (peak \(counter.peak))")
        XCTAssertEqual(pausesThatFilledEdges.current, 10, "edges fill up behind a paused sink")
        XCTAssertEqual(counter.live, 0, "every item is released after the run")
    }

    func testCancelledRunReleasesEveryItem() {
        let counter = LiveCounter()
        let reached = DispatchSemaphore(value: 0)
        var next = 0
        let pipeline = Pipeline.source("source", next: { () -> TrackedItem? in
                defer { next += 1 }
                return TrackedItem(next, counter: counter)
            })
            .map("map") { TrackedItem($0.value, counter: counter) }
            .sink("sink", consume: { item in
                if item.value == 1000 { reached.signal() }
                Thread.sleep(forTimeInterval: 0.0001)
            })
        pipeline.start()
        XCTAssertEqual(reached.wait(timeout: .now() + 60), .success)
        pipeline.cancel()
        XCTAssertTrue(runWithTimeout(pipeline)?.isCancelled ?? false)
        XCTAssertEqual(counter.live, 0)
    }

    func testOneToManyStageBlocksInEmitInsteadOfPilingUpOutputs() {
        // One input explodes into 2000 outputs ahead of a slowish sink: emit must block, so the
        // outputs never pile up beyond the bound (2 + 2 capacity, 3 stages).
        let counter = LiveCounter()
        let received = SharedCounter()
        var sent = false
        let pipeline = Pipeline.source("source", next: { () -> TrackedItem? in
                guard !sent else { return nil }
                sent = true
                return TrackedItem(0, counter: counter)
            })
            .flatMap("explode") { (item: TrackedItem, emit: (TrackedItem) throws -> Void) in
                for index in 0..<2000 { try emit(TrackedItem(item.value + index, counter: counter)) }
            }
            .sink("sink", consume: { item in
                if item.value % 100 == 0 { Thread.sleep(forTimeInterval: 0.001) }
                received.increment()
            })
        XCTAssertTrue(runWithTimeout(pipeline)?.isCompleted ?? false)
        XCTAssertEqual(received.current, 2000)
        XCTAssertLessThanOrEqual(counter.peak, 2 + 2 + 3)
        XCTAssertEqual(counter.live, 0)
    }
}
