// Pipeline overhead per item: items pass four no-op stages (source, two transforms, sink),
// each on its own queue, joined by bounded edges. Baselines in the same run:
//  - the same no-op calls in one plain loop on one thread (no handoff at all);
//  - a bare chain of four threads handing each item over through one-slot edges made of two
//    DispatchSemaphores: the least any thread-per-stage design pays on this machine.
// Reports the median of several runs.
//
//   swift run -c release PipelineOverhead [items] [runs]
import Dispatch
import Foundation
import EtokPipeline

let arguments = CommandLine.arguments
let items = arguments.count > 1 ? Int(arguments[1]) ?? 50_000 : 50_000
let runs = arguments.count > 2 ? Int(arguments[2]) ?? 5 : 5

/// Wall-clock seconds of `body`.
func seconds(_ body: () -> Void) -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted.count % 2 == 1
        ? sorted[sorted.count / 2]
        : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}

/// Defeats dead-code elimination of the no-op work.
nonisolated(unsafe) var sink = 0

func runPipeline(capacity: Int) -> Double {
    seconds {
        var next = 0
        let pipeline = Pipeline.source("source", next: { () -> Int? in
                guard next < items else { return nil }
                defer { next += 1 }
                return next
            })
            .map("noop1", capacity: capacity) { $0 }
            .map("noop2", capacity: capacity) { $0 }
            .sink("sink", capacity: capacity, consume: { sink &+= $0 })
        let result = pipeline.run()
        precondition(result.isCompleted, "benchmark pipeline: \(result)")
    }
}

@inline(never) func identity(_ value: Int) -> Int { value }

func runBaseline() -> Double {
    seconds {
        var next = 0
        while next < items {
            sink &+= identity(identity(identity(next)))
            next += 1
        }
    }
}

/// One-item edge of the bare chain: `emptied` counts free slots, `filled` counts items.
final class Slot: @unchecked Sendable {
    var value = 0
    let filled = DispatchSemaphore(value: 0)
    let emptied = DispatchSemaphore(value: 1)

    func put(_ newValue: Int) {
        emptied.wait()
        value = newValue
        filled.signal()
    }

    func take() -> Int {
        filled.wait()
        let taken = value
        emptied.signal()
        return taken
    }
}

func runSemaphoreChain() -> Double {
    let slots = (0..<3).map { _ in Slot() }
    let count = items
    return seconds {
        let group = DispatchGroup()
        DispatchQueue(label: "chain.source").async(group: group) {
            for index in 0..<count { slots[0].put(index) }
        }
        for edge in 1..<3 {
            DispatchQueue(label: "chain.stage\(edge)").async(group: group) {
                for _ in 0..<count { slots[edge].put(identity(slots[edge - 1].take())) }
            }
        }
        for _ in 0..<count { sink &+= slots[2].take() }
        group.wait()
    }
}

/// The 1-minute load average, to judge how noisy a run was (the machine may be shared).
func loadAverage() -> String {
    let text = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? "?"
    return String(text.split(separator: " ").first ?? "?")
}

// Configurations run interleaved, one round at a time, so drifting background load affects
// the baselines and the pipeline alike.
let capacities = [1, 2, 8, 64]
var loopTimes: [Double] = []
var chainTimes: [Double] = []
var pipelineTimes = [[Double]](repeating: [], count: capacities.count)
let loadBefore = loadAverage()
for _ in 0..<runs {
    loopTimes.append(runBaseline())
    chainTimes.append(runSemaphoreChain())
    for (index, capacity) in capacities.enumerated() {
        pipelineTimes[index].append(runPipeline(capacity: capacity))
    }
}

func nanosPerItem(_ times: [Double]) -> Double { median(times) / Double(items) * 1e9 }

print("pipeline overhead: \(items) items through 4 no-op stages (source, 2 transforms, sink)")
print("median of \(runs) interleaved runs; \(ProcessInfo.processInfo.activeProcessorCount) cores; "
      + "load average \(loadBefore) before, \(loadAverage()) after")
let chain = nanosPerItem(chainTimes)
print(String(format: "  baseline: one loop, one thread     %9.1f ns/item", nanosPerItem(loopTimes)))
print(String(format: "  baseline: bare semaphore chain     %9.1f ns/item", chain))
for (index, capacity) in capacities.enumerated() {
    let perItem = nanosPerItem(pipelineTimes[index])
    print(String(format: "  pipeline, edge capacity %2d         %9.1f ns/item  (%.2fx the bare chain)",
                 capacity, perItem, perItem / chain))
}
if sink == 42 { print("") }
