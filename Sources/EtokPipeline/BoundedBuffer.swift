import Foundation

/// One pipeline edge: a fixed-size FIFO between exactly one producer thread and one consumer
/// thread, applying ``BoundedBufferPolicy`` under an `NSCondition`.
///
/// The consumer *peeks* at the head (``next()``), works on it, and only then removes it
/// (``removeHead()``). An item being worked on therefore still occupies its slot, which is what
/// makes the pipeline's bound exact: at most the sum of capacities plus one item per stage.
///
/// Cost: one lock/unlock per call, plus a condition signal when the other side may be waiting.
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
                condition.broadcast()
                return true
            case .wait:
                condition.wait()
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

    /// Consumer side. Blocks while the edge is empty and open. Returns the head item without
    /// removing it; call ``removeHead()`` once done with it.
    func next() -> Next {
        condition.lock()
        defer { condition.unlock() }
        while true {
            switch policy.consumerAction {
            case .pop:
                // The slot is filled whenever the policy counts it.
                return .item(slots[head]!)
            case .wait:
                condition.wait()
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
            condition.broadcast()
        }
        condition.unlock()
    }
}
