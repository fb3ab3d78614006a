import EtokPipeline
import Foundation
import XCTest

/// Items flowing to the end: order, 1-to-n, empty streams, slow and fast stages.
final class PipelineFlowTests: XCTestCase {
    func testItemsPassFourStagesInOrderAndEveryFinishHookRuns() {
        let hooks = EventLog<String>()
        let received = EventLog<Int>()
        let pipeline = Pipeline.source("source", RecordingSource(name: "source", hooks: hooks, pull: countingSource(500)))
            .then("double", RecordingTransform(name: "double", hooks: hooks) { try $1($0 * 2) })
            .then("plusOne", RecordingTransform(name: "plusOne", hooks: hooks) { try $1($0 + 1) })
            .sink("sink", RecordingSink(name: "sink", hooks: hooks, received: received))
        XCTAssertEqual(pipeline.stageNames, ["source", "double", "plusOne", "sink"])
        let result = runWithTimeout(pipeline)
        XCTAssertTrue(result?.isCompleted ?? false, "\(String(describing: result))")
        XCTAssertEqual(received.all, (0..<500).map { $0 * 2 + 1 })
        // End of stream travels downstream, so finish hooks run in stage order.
        XCTAssertEqual(hooks.all, ["source.finish", "double.finish", "plusOne.finish", "sink.finish"])
    }

    func testEmptySourceCompletesWithNoItemsAndFinishesEveryStage() {
        let hooks = EventLog<String>()
        let received = EventLog<Int>()
        let pipeline = Pipeline.source("source", RecordingSource(name: "source", hooks: hooks, pull: { nil }))
            .then("middle", RecordingTransform(name: "middle", hooks: hooks) { try $1($0) })
            .sink("sink", RecordingSink(name: "sink", hooks: hooks, received: received))
        XCTAssertTrue(runWithTimeout(pipeline)?.isCompleted ?? false)
        XCTAssertEqual(received.count, 0)
        XCTAssertEqual(hooks.all, ["source.finish", "middle.finish", "sink.finish"])
    }

    func testOrderIsKeptUnderRandomPerItemDelaysInEveryStage() {
        let count = 300
        let sourceDelays = randomDelays(count: count, maxMicros: 600, seed: 1)
        let middleDelays = randomDelays(count: count, maxMicros: 600, seed: 2)
        let sinkDelays = randomDelays(count: count, maxMicros: 600, seed: 3)
        let received = EventLog<Int>()
        let pipeline = Pipeline.source("source", next: countingSource(count) { sourceDelays[$0] })
            .map("square", capacity: 3) { (value: Int) -> Int in
                Thread.sleep(forTimeInterval: middleDelays[value])
                return value * value
            }
            .map("identity", capacity: 1) { $0 }
            .sink("sink", consume: { value in
                received.append(value)
                Thread.sleep(forTimeInterval: sinkDelays[received.count - 1])
            })
        XCTAssertTrue(runWithTimeout(pipeline)?.isCompleted ?? false)
        XCTAssertEqual(received.all, (0..<count).map { $0 * $0 })
    }

    func testOneToManyStageEmitsEveryOutputInOrderIncludingNone() {
        // Item k becomes k % 4 copies of k: zero, one or several outputs per input.
        let received = EventLog<Int>()
        let pipeline = Pipeline.source("source", next: countingSource(200))
            .flatMap("repeat") { (value: Int, emit: (Int) throws -> Void) in
                for _ in 0..<(value % 4) { try emit(value) }
            }
            .sink("sink", consume: { received.append($0) })
        XCTAssertTrue(runWithTimeout(pipeline)?.isCompleted ?? false)
        let expected = (0..<200).flatMap { Array(repeating: $0, count: $0 % 4) }
        XCTAssertEqual(received.all, expected)
    }

    func testStatefulStageFlushesBufferedItemsInFinish() {
        /// Sums pairs; an odd last item is emitted alone at end of stream.
        struct PairSummer: PipelineTransform {
            var pending: Int?
            mutating func process(_ input: Int, emit: (Int) throws -> Void) throws {
                if let first = pending {
                    pending = nil
                    try emit(first + input)
                } else {
                    pending = input
                }
            }
            mutating func finish(emit: (Int) throws -> Void) throws {
                if let last = pending { try emit(last) }
            }
        }
        let received = EventLog<Int>()
        let pipeline = Pipeline.source("source", next: countingSource(7))
            .then("pairs", PairSummer())
            .sink("sink", consume: { received.append($0) })
        XCTAssertTrue(runWithTimeout(pipeline)?.isCompleted ?? false)
        XCTAssertEqual(received.all, [0 + 1, 2 + 3, 4 + 5, 6])
    }

    func testSlowSinkHoldsFastSourceWithinTheBound() {
        // Back-pressure: the source can run ahead of the sink by at most the items the edges
        // and stages hold, here 2 + 2 capacity and 3 stages.
        let produced = SharedCounter()
        let aheadWhenConsumed = EventLog<Int>()
        let consumed = SharedCounter()
        let pipeline = Pipeline.source("fast source", next: { () -> Int? in
                let next = produced.current
                guard next < 100 else { return nil }
                produced.increment()
                return next
            })
            .map("pass") { $0 }
            .sink("slow sink", consume: { _ in
                aheadWhenConsumed.append(produced.current - consumed.current)
                Thread.sleep(forTimeInterval: 0.002)
                consumed.increment()
            })
        XCTAssertTrue(runWithTimeout(pipeline)?.isCompleted ?? false)
        XCTAssertEqual(consumed.current, 100)
        XCTAssertLessThanOrEqual(aheadWhenConsumed.all.max() ?? .max, 2 + 2 + 3)
        XCTAssertGreaterThanOrEqual(aheadWhenConsumed.all.max() ?? 0, 2,
                                    "a fast source should fill the edges ahead of a slow sink")
    }

    func testSlowSourceFeedsFastStagesCompletely() {
        let received = EventLog<Int>()
        let pipeline = Pipeline.source("slow source", next: countingSource(40) { _ in 0.002 })
            .map("fast") { $0 + 1 }
            .sink("fast sink", consume: { received.append($0) })
        XCTAssertTrue(runWithTimeout(pipeline)?.isCompleted ?? false)
        XCTAssertEqual(received.all, Array(1...40))
    }

    func testLargerCapacitiesDeliverTheSameItems() {
        let received = EventLog<Int>()
        let pipeline = Pipeline.source("source", next: countingSource(1000))
            .map("a", capacity: 16) { $0 &* 3 }
            .sink("sink", capacity: 64, consume: { received.append($0) })
        XCTAssertTrue(runWithTimeout(pipeline)?.isCompleted ?? false)
        XCTAssertEqual(received.all, (0..<1000).map { $0 * 3 })
    }
}
