// Parallel: the engine's one fork-join primitive (Dispatch's concurrentPerform), for work items
// that write disjoint memory through raw pointers (attention heads and tiles, candidates' rows).
import Dispatch

/// Runs `body(0..<count)` on up to `count` threads and returns when all are done.
public enum Parallel {
    /// The caller guarantees that the items touch disjoint outputs; `body` may capture raw
    /// pointers and non-Sendable values (the call does not return before every item ends).
    public static func forEach(_ count: Int, _ body: (Int) -> Void) {
        if count <= 1 {
            if count == 1 { body(0) }
            return
        }
        withoutActuallyEscaping(body) { escaping in
            let box = UncheckedBox(escaping)
            DispatchQueue.concurrentPerform(iterations: count) { box.value($0) }
        }
    }
}

/// A value handed to Dispatch's threads; `Parallel.forEach` keeps it alive and unshared-for-writing.
private struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
