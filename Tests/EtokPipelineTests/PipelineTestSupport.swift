import Dispatch
import EtokPipeline
import Foundation
import XCTest

/// A value behind an `NSLock` (which ThreadSanitizer understands, unlike a futex-based Mutex).
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) { self.value = value }

    func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}

/// Counts live ``TrackedItem``s and remembers the most that were alive at once.
final class LiveCounter: Sendable {
    private let state = Locked<(live: Int, peak: Int, created: Int)>((0, 0, 0))

    func created() {
        state.withLock { state in
            state.live += 1
            state.created += 1
            state.peak = max(state.peak, state.live)
        }
    }

    func destroyed() { state.withLock { $0.live -= 1 } }

    var live: Int { state.withLock { $0.live } }
    var peak: Int { state.withLock { $0.peak } }
    var createdCount: Int { state.withLock { $0.created } }
}

/// An item whose lifetime is counted: +1 on creation, -1 on deinit.
final class TrackedItem: Sendable {
    let value: Int
    private let counter: LiveCounter

    init(_ value: Int, counter: LiveCounter) {
        self.value = value
        self.counter = counter
        counter.created()
    }

    deinit { counter.destroyed() }
}

/// A thread-safe list of events (hook calls, received values).
final class EventLog<Event: Sendable>: Sendable {
    private let events = Locked<[Event]>([])

    func append(_ event: Event) { events.withLock { $0.append(event) } }
    var all: [Event] { events.withLock { $0 } }
    var count: Int { events.withLock { $0.count } }
}

/// A thread-safe integer.
final class SharedCounter: Sendable {
    private let value = Locked(0)

    @discardableResult
    func increment() -> Int { value.withLock { $0 += 1; return $0 } }
    var current: Int { value.withLock { $0 } }
}

/// The error the throwing test stages use.
struct StageTestError: Error, Equatable {
    let item: Int
}

/// Runs the pipeline with a time limit, so a hang fails the test instead of blocking the suite.
func runWithTimeout(
    _ pipeline: Pipeline, seconds: Double = 30, file: StaticString = #filePath, line: UInt = #line
) -> PipelineResult? {
    guard let result = pipeline.wait(timeout: seconds) else {
        XCTFail("pipeline did not end within \(seconds) s", file: file, line: line)
        pipeline.cancel()
        return nil
    }
    return result
}

/// A source of 0..<count, with an optional delay before each item.
func countingSource(_ count: Int, delay: @escaping @Sendable (Int) -> Double = { _ in 0 })
    -> () throws -> Int?
{
    var next = 0
    return {
        guard next < count else { return nil }
        let delaySeconds = delay(next)
        if delaySeconds > 0 { Thread.sleep(forTimeInterval: delaySeconds) }
        defer { next += 1 }
        return next
    }
}

/// A deterministic pseudo-random generator (SplitMix64) for reproducible delays.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// `count` delays in seconds, uniform in 0..<maxMicros µs, reproducible from `seed`.
func randomDelays(count: Int, maxMicros: Int, seed: UInt64) -> [Double] {
    var generator = SplitMix64(seed: seed)
    return (0..<count).map { _ in Double(Int.random(in: 0..<maxMicros, using: &generator)) / 1e6 }
}

/// A source that logs its hooks ("NAME.finish", "NAME.abort").
struct RecordingSource: PipelineSource {
    let name: String
    let hooks: EventLog<String>
    let pull: () throws -> Int?

    mutating func next() throws -> Int? { try pull() }
    mutating func finish() throws { hooks.append("\(name).finish") }
    mutating func abort() { hooks.append("\(name).abort") }
}

/// A transform that logs its hooks and runs `body` per item.
struct RecordingTransform: PipelineTransform {
    let name: String
    let hooks: EventLog<String>
    let body: (Int, (Int) throws -> Void) throws -> Void

    mutating func process(_ input: Int, emit: (Int) throws -> Void) throws { try body(input, emit) }
    mutating func finish(emit: (Int) throws -> Void) throws { hooks.append("\(name).finish") }
    mutating func abort() { hooks.append("\(name).abort") }
}

/// A sink that records what it receives and logs its hooks.
struct RecordingSink: PipelineSink {
    let name: String
    let hooks: EventLog<String>
    let received: EventLog<Int>
    var onItem: (Int) throws -> Void = { _ in }
    var onFinish: () throws -> Void = {}

    mutating func consume(_ input: Int) throws {
        try onItem(input)
        received.append(input)
    }

    mutating func finish() throws {
        try onFinish()
        hooks.append("\(name).finish")
    }

    mutating func abort() { hooks.append("\(name).abort") }
}

/// A source named "source" producing 0, 1, 2, ... forever.
func endlessRecordingSource(_ hooks: EventLog<String>) -> RecordingSource {
    var next = 0
    return RecordingSource(name: "source", hooks: hooks) {
        defer { next += 1 }
        return next
    }
}

/// Lets a stage reach the pipeline it belongs to (set after the pipeline is built).
final class PipelineHandle: Sendable {
    private let stored = Locked<Pipeline?>(nil)
    var pipeline: Pipeline? {
        get { stored.withLock { $0 } }
        set { stored.withLock { $0 = newValue } }
    }
}
