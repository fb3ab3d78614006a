import Foundation

/// One pipeline edge: a fixed-size FIFO between exactly one producer thread and one consumer
/// thread, applying ``BoundedBufferPolicy`` under an `NSCondition`.
///
/// The consumer borrows the head (``withHead(_:)``), works on it, and only then removes it. An item being worked on therefore still occupies its slot, which is what
/// makes the pipeline's bound exact: at most the sum of capacities plus one item per stage.
///
/// Cost: one lock/unlock per call, plus a condition signal when the other side is waiting.
/// Producer and consumer share one condition: they never wait at once (full and empty exclude
/// each other since capacity >= 1), so `signal` reaches the right thread; state changes that
/// end the stream (finish, close) broadcast.
/// Thread safety: every stored property is guarded by `condition` (hence `@unchecked Sendable`).
final class BoundedBuffer<Item: Sendable>: @unchecked Sendable {
    /// What the consumer gets from ``next()``.
    enum Next {
        case item(Item)
        case endOfStream
        case stopped
    }

    private let condition = NSCondition()
    private var policy: BoundedBufferPolicy
    private var slots: [Item?]
    private var head = 0
    // Whether a side is blocked in `wait()`: signalling only then saves a futex call per item.
    private var producerWaiting = false
    private var consumerWaiting = false

    init(capacity: Int) {
        policy = BoundedBufferPolicy(capacity: capacity)
        slots = Array(repeating: nil, count: capacity)
    }

    /// Producer side. Blocks while the edge is full. Returns false when the edge is closed (the
    /// item is dropped and the producer should stop).
    func push(_ item: Item) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while true {
            switch policy.producerAction {
            case .push:
                slots[(head + policy.count) % policy.capacity] = item
                policy.push()
                if consumerWaiting { condition.signal() }
                return true
            case .wait:
                producerWaiting = true
                condition.wait()
                producerWaiting = false
            case .stop:
                return false
            }
        }
    }

    /// Producer side: end of stream. Items already pushed are still delivered.
    func finish() {
        condition.lock()
        policy.finish()
        condition.broadcast()
        condition.unlock()
    }

    /// Either side, or the pipeline: stop both sides now and drop the items held.
    func close() {
        condition.lock()
        policy.close()
        // Release the items here, so a cancelled run gives back its memory promptly.
        for index in slots.indices { slots[index] = nil }
        condition.broadcast()
        condition.unlock()
    }

    /// Consumer side: blocks while the edge is empty and open, lends the head item to `body`,
    /// then frees its slot (waking a producer blocked on a full edge). Returns what happened.
    ///
    /// The item keeps its slot while `body` runs, and the consumer's reference is gone before
    /// the slot is freed, so a producer can never create a new item while this one lingers.
    /// The slot's reference is dropped under the lock: the item's `deinit` runs there and must
    /// not touch the pipeline.
    func withHead(_ body: (Item) throws -> Void) rethrows -> HeadResult {
        let result = try lendHead(body)
        if case .processed = result { removeHead() }
        return result
    }

    /// What ``withHead(_:)`` did.
    enum HeadResult {
        case processed
        case endOfStream
        case stopped
    }

    // A separate function so that its copy of the item is released when it returns, before
    // `removeHead` frees the slot.
    private func lendHead(_ body: (Item) throws -> Void) rethrows -> HeadResult {
        switch next() {
        case .item(let item):
            try body(item)
            return .processed
        case .endOfStream:
            return .endOfStream
        case .stopped:
            return .stopped
        }
    }

    /// Consumer side. Blocks while the edge is empty and open. Returns the head item without
    /// removing it; call ``removeHead()`` once done with it (after dropping the reference).
    func next() -> Next {
        condition.lock()
        defer { condition.unlock() }
        while true {
            switch policy.consumerAction {
            case .pop:
                // The slot is filled whenever the policy counts it.
                return .item(slots[head]!)
            case .wait:
                consumerWaiting = true
                condition.wait()
                consumerWaiting = false
            case .endOfStream:
                return .endOfStream
            case .stop:
                return .stopped
            }
        }
    }

    /// Consumer side: frees the head slot and wakes a producer blocked on a full edge.
    /// No effect when the edge was closed meanwhile.
    func removeHead() {
        condition.lock()
        if policy.pop() {
            slots[head] = nil
            head = (head + 1) % policy.capacity
            if producerWaiting { condition.signal() }
        }
        condition.unlock()
    }
}
