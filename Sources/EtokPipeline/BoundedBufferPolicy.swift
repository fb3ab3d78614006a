/// The back-pressure rule of one pipeline edge, as a plain value: how many items the edge holds,
/// whether its producer may push, and what its consumer should do next.
///
/// It owns no items and never blocks; ``BoundedBuffer`` applies it under a lock and turns `.wait`
/// into a condition wait. Keeping the rule here lets it be tested without threads.
///
/// States: `open` (items flow), `finished` (the producer sent end of stream; the consumer drains
/// what is left, then sees `.endOfStream`) and `closed` (cancelled or failed: both sides stop at
/// once and the items still held are dropped). `closed` is final and wins over `finished`.
public struct BoundedBufferPolicy: Sendable, Hashable, CustomStringConvertible {
    /// Where the edge is in its life. Transitions: open → finished → closed, open → closed.
    public enum State: Sendable, Hashable {
        case open
        case finished
        case closed
    }

    /// What a producer holding one item should do.
    public enum ProducerAction: Sendable, Hashable {
        /// There is room: push the item now.
        case push
        /// The edge is full: block until the consumer removes an item (back-pressure).
        case wait
        /// The edge is closed or already finished: drop the item and stop.
        case stop
    }

    /// What a consumer should do.
    public enum ConsumerAction: Sendable, Hashable {
        /// An item is at the head: take it.
        case pop
        /// Nothing is there yet and the producer has not finished: block.
        case wait
        /// The producer finished and everything it sent has been taken.
        case endOfStream
        /// The edge is closed: stop without draining.
        case stop
    }

    /// The most items the edge holds at once; at least 1.
    public let capacity: Int
    /// Items the edge holds now, between 0 and `capacity`.
    public private(set) var count: Int
    /// The current state.
    public private(set) var state: State

    /// An empty, open edge. `capacity` must be at least 1 (``Pipeline`` validates it before it
    /// gets here and reports a bad one as an error).
    public init(capacity: Int) {
        precondition(capacity >= 1, "BoundedBufferPolicy capacity must be at least 1")
        self.capacity = capacity
        self.count = 0
        self.state = .open
    }

    /// True when a producer may push now.
    public var canPush: Bool { producerAction == .push }
    /// True when a consumer may take an item now.
    public var canPop: Bool { consumerAction == .pop }
    /// True once the edge is closed (cancelled or failed).
    public var isClosed: Bool { state == .closed }

    /// The rule for the producer side.
    public var producerAction: ProducerAction {
        switch state {
        case .closed, .finished: return .stop
        case .open: return count < capacity ? .push : .wait
        }
    }

    /// The rule for the consumer side. Items left in a finished edge are still delivered.
    public var consumerAction: ConsumerAction {
        switch state {
        case .closed: return .stop
        case .finished: return count > 0 ? .pop : .endOfStream
        case .open: return count > 0 ? .pop : .wait
        }
    }

    /// Records one pushed item. Returns false (and changes nothing) when the rule forbids it.
    @discardableResult
    public mutating func push() -> Bool {
        guard canPush else { return false }
        count += 1
        return true
    }

    /// Records one removed item. Returns false (and changes nothing) when the rule forbids it.
    @discardableResult
    public mutating func pop() -> Bool {
        guard canPop else { return false }
        count -= 1
        return true
    }

    /// Records end of stream from the producer. No effect unless the edge is open.
    public mutating func finish() {
        if state == .open { state = .finished }
    }

    /// Closes the edge: the items it held are dropped (count becomes 0) and both sides stop.
    public mutating func close() {
        state = .closed
        count = 0
    }

    /// For logs: "BoundedBufferPolicy(count/capacity, state)".
    public var description: String { "BoundedBufferPolicy(\(count)/\(capacity), \(state))" }
}
