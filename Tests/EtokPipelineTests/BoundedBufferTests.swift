import Dispatch
@testable import EtokPipeline
import XCTest

/// The Dispatch plumbing of one edge: blocking and waking.
final class BoundedBufferTests: XCTestCase {
    func testProducerBlocksOnFullEdgeUntilConsumerRemovesHead() {
        let edge = BoundedBuffer<Int>(capacity: 1)
        XCTAssertTrue(edge.push(1))
        let pushed = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            _ = edge.push(2)
            pushed.signal()
        }
        XCTAssertEqual(pushed.wait(timeout: .now() + 0.2), .timedOut, "push into a full edge must block")
        guard case .item(let head) = edge.next() else { return XCTFail("expected an item") }
        XCTAssertEqual(head, 1)
        XCTAssertEqual(pushed.wait(timeout: .now() + 0.2), .timedOut, "peeking must not free the slot")
        edge.removeHead()
        XCTAssertEqual(pushed.wait(timeout: .now() + 10), .success, "removing the head must wake the producer")
        guard case .item(let second) = edge.next() else { return XCTFail("expected an item") }
        XCTAssertEqual(second, 2)
    }

    func testConsumerBlocksOnEmptyEdgeUntilPushOrFinish() {
        let edge = BoundedBuffer<Int>(capacity: 2)
        let got = EventLog<String>()
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            while true {
                switch edge.next() {
                case .item(let value):
                    got.append("item \(value)")
                    edge.removeHead()
                case .endOfStream:
                    got.append("end")
                    done.signal()
                    return
                case .stopped:
                    got.append("stopped")
                    done.signal()
                    return
                }
            }
        }
        XCTAssertEqual(done.wait(timeout: .now() + 0.1), .timedOut)
        XCTAssertTrue(edge.push(5))
        edge.finish()
        XCTAssertEqual(done.wait(timeout: .now() + 10), .success)
        XCTAssertEqual(got.all, ["item 5", "end"])
    }

    func testCloseWakesBlockedProducerAndConsumer() {
        let full = BoundedBuffer<Int>(capacity: 1)
        let empty = BoundedBuffer<Int>(capacity: 1)
        XCTAssertTrue(full.push(0))
        let outcomes = EventLog<String>()
        let group = DispatchGroup()
        DispatchQueue.global().async(group: group) {
            outcomes.append(full.push(1) ? "pushed" : "push refused")
        }
        DispatchQueue.global().async(group: group) {
            if case .stopped = empty.next() { outcomes.append("consumer stopped") }
        }
        XCTAssertEqual(group.wait(timeout: .now() + 0.1), .timedOut)
        full.close()
        empty.close()
        XCTAssertEqual(group.wait(timeout: .now() + 10), .success)
        XCTAssertEqual(Set(outcomes.all), ["push refused", "consumer stopped"])
    }

    func testCloseReleasesHeldItems() {
        let counter = LiveCounter()
        let edge = BoundedBuffer<TrackedItem>(capacity: 3)
        for index in 0..<3 { XCTAssertTrue(edge.push(TrackedItem(index, counter: counter))) }
        XCTAssertEqual(counter.live, 3)
        edge.close()
        XCTAssertEqual(counter.live, 0)
    }
}
