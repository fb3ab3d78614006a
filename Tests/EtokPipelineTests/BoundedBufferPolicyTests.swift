import EtokPipeline
import XCTest

final class BoundedBufferPolicyTests: XCTestCase {
    func testNewEdgeIsOpenEmptyAndAcceptsPushes() {
        let policy = BoundedBufferPolicy(capacity: 2)
        XCTAssertEqual(policy.state, .open)
        XCTAssertEqual(policy.count, 0)
        XCTAssertEqual(policy.producerAction, .push)
        XCTAssertEqual(policy.consumerAction, .wait)
        XCTAssertTrue(policy.canPush)
        XCTAssertFalse(policy.canPop)
    }

    func testFullEdgeMakesProducerWaitUntilAPop() {
        var policy = BoundedBufferPolicy(capacity: 2)
        XCTAssertTrue(policy.push())
        XCTAssertTrue(policy.push())
        XCTAssertEqual(policy.producerAction, .wait)
        XCTAssertFalse(policy.push(), "a push beyond capacity must be refused")
        XCTAssertEqual(policy.count, 2)
        XCTAssertTrue(policy.pop())
        XCTAssertEqual(policy.producerAction, .push)
        XCTAssertEqual(policy.count, 1)
    }

    func testEmptyOpenEdgeMakesConsumerWaitAndRefusesPop() {
        var policy = BoundedBufferPolicy(capacity: 1)
        XCTAssertFalse(policy.pop())
        XCTAssertEqual(policy.count, 0)
        policy.push()
        XCTAssertEqual(policy.consumerAction, .pop)
    }

    func testFinishedEdgeDrainsThenReportsEndOfStream() {
        var policy = BoundedBufferPolicy(capacity: 3)
        policy.push()
        policy.push()
        policy.finish()
        XCTAssertEqual(policy.state, .finished)
        XCTAssertEqual(policy.producerAction, .stop, "no push after end of stream")
        XCTAssertFalse(policy.push())
        XCTAssertEqual(policy.consumerAction, .pop)
        policy.pop()
        XCTAssertEqual(policy.consumerAction, .pop)
        policy.pop()
        XCTAssertEqual(policy.consumerAction, .endOfStream)
        XCTAssertFalse(policy.pop())
    }

    func testCloseDropsItemsAndStopsBothSides() {
        var policy = BoundedBufferPolicy(capacity: 2)
        policy.push()
        policy.push()
        policy.close()
        XCTAssertTrue(policy.isClosed)
        XCTAssertEqual(policy.count, 0)
        XCTAssertEqual(policy.producerAction, .stop)
        XCTAssertEqual(policy.consumerAction, .stop)
        XCTAssertFalse(policy.push())
        XCTAssertFalse(policy.pop())
    }

    func testCloseWinsOverFinishAndFinishCannotReopen() {
        var policy = BoundedBufferPolicy(capacity: 2)
        policy.push()
        policy.finish()
        policy.close()
        XCTAssertEqual(policy.consumerAction, .stop, "a closed edge is not drained")
        policy.finish()
        XCTAssertEqual(policy.state, .closed)
    }

    /// Random operations against a plain array model written independently of the policy.
    func testRandomOperationsMatchAnArrayModel() {
        var generator = SplitMix64(seed: 7)
        for capacity in 1...4 {
            var policy = BoundedBufferPolicy(capacity: capacity)
            var model: [Int] = []
            var finished = false
            var closed = false
            for step in 0..<2000 {
                switch Int.random(in: 0..<20, using: &generator) {
                case 0:
                    policy.finish()
                    if !closed { finished = true }
                case 1 where step > 1500:
                    policy.close()
                    closed = true
                    model.removeAll()
                case 2..<11:
                    let allowed = !closed && !finished && model.count < capacity
                    XCTAssertEqual(policy.push(), allowed)
                    if allowed { model.append(step) }
                default:
                    let allowed = !closed && !model.isEmpty
                    XCTAssertEqual(policy.pop(), allowed)
                    if allowed { model.removeFirst() }
                }
                XCTAssertEqual(policy.count, model.count)
                XCTAssertLessThanOrEqual(policy.count, capacity)
                let expected: BoundedBufferPolicy.ConsumerAction =
                    closed ? .stop : !model.isEmpty ? .pop : finished ? .endOfStream : .wait
                XCTAssertEqual(policy.consumerAction, expected, "step \(step)")
            }
        }
    }
}
