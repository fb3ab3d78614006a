import Dispatch
import EtokModel
import EtokTensor
import Foundation

/// The engine benchmark behind `etok model bench` (and etok-tools bench engine): the sgemm peak,
/// then per context size the median seconds per block of encode+decode, the model FLOPs and the MFU.
public enum EngineBench {
    /// Wall-clock seconds `body` takes.
    public static func seconds(_ body: () throws -> Void) rethrows -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        try body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }

    /// The median of `v` (not empty).
    public static func median(_ v: [Double]) -> Double {
        let s = v.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }

    /// The best sgemm rate on a large square product (GFLOP/s), as the MFU denominator.
    public static func sgemmPeak(size n: Int = 1024, repeats: Int = 10) -> Double {
        let a = FloatBuffer(count: n * n), b = FloatBuffer(count: n * n), c = FloatBuffer(count: n * n)
        for i in 0..<(n * n) { a.base[i] = Float(i % 7) * 0.01; b.base[i] = Float(i % 5) * 0.01 }
        var best = Double.infinity
        for _ in 0..<repeats {
            best = min(best, seconds {
                GEMM.multiply(m: n, n: n, k: n, a: a.base, lda: n, b: b.base, ldb: n, c: c.base, ldc: n)
            })
        }
        return 2 * Double(n * n * n) / best / 1e9
    }

    /// This process's peak resident set (VmHWM). Not getrusage: Linux carries ru_maxrss across
    /// exec, so a child of a large process (the Python benchmark) would report its parent's size.
    /// 0 where /proc is not available (JSON has no NaN).
    public static func peakRSSMiB() -> Double {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
              let kib = Double(line.split(separator: " ").dropFirst().first ?? "")
        else { return 0 }
        return kib / 1024
    }

    /// The report as a JSON object (keys sorted by the caller's serialiser).
    public static func run(model m: ElasticTokModel, contexts: [Int], repeats: Int, keep: Int?, candidates: Int) throws -> [String: Any] {
        let c = m.config
        var rng: UInt64 = 12345
        func block() -> [Float] {
            (0..<(c.tokensPerBlock * c.patchDim)).map { _ in
                rng = rng &* 6364136223846793005 &+ 1442695040888963407
                return Float(rng >> 40) / Float(1 << 24) * 2 - 1
            }
        }
        let peak = sgemmPeak()
        let n = keep ?? c.tokensPerBlock
        let counts = candidates == 1 ? [n] : (0..<candidates).map { max(1, c.tokensPerBlock * ($0 + 1) / candidates) }
        var rows: [[String: Any]] = []
        let input = block()
        for k in contexts where k < c.contextBlocks {
            let coder = BlockCoder(model: m)
            for _ in 0..<k { _ = try coder.reconstruct(patches: block(), keptCounts: [n]); try coder.commit(candidate: 0) }
            _ = try coder.reconstruct(patches: input, keptCounts: counts)  // warm-up
            var times: [Double] = []
            for _ in 0..<repeats { times.append(try seconds { _ = try coder.reconstruct(patches: input, keptCounts: counts) }) }
            let flops = ModelFLOPs.block(c, contextBlocks: k) * Double(counts.count)
            let t = median(times)
            rows.append(["context_blocks": k, "seconds": t, "seconds_min": times.min() ?? t, "flops": flops,
                         "gflops_per_s": flops / t / 1e9, "mfu": flops / t / 1e9 / peak])
        }
        return ["peak_rss_mib": peakRSSMiB(), "sgemm_peak_gflops": peak, "threads": BLASThreads.current, "kernels": m.kernels.name,
                "blas": BLASKernels.description, "blas_core": BLASKernels.coreName, "candidates": counts.count,
                "tokens_per_block": c.tokensPerBlock, "parameters": m.parameterCount, "results": rows]
    }
}
