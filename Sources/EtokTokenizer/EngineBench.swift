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

    /// sgemm against the bf16 kernel on linear-layer shapes (m rows, k in, n out), interleaved,
    /// median GFLOP/s of each, and the largest relative difference of the bf16 result from
    /// sgemm's (inputs uniform in ±1). Both on `BLASThreads.current` threads. bf16 figures are
    /// absent where the CPU lacks AVX512-BF16.
    public static func gemmShapes(_ shapes: [(m: Int, k: Int, n: Int)], repeats: Int) -> [[String: Any]] {
        let threads = BLASThreads.current
        return shapes.map { s in
            let a = FloatBuffer(count: s.m * s.k), w = Matrix(rows: s.k, cols: s.n)
            let c = FloatBuffer(count: s.m * s.n), c16 = FloatBuffer(count: s.m * s.n)
            var rng: UInt64 = 99
            func next() -> Float { rng = rng &* 6364136223846793005 &+ 1442695040888963407; return Float(rng >> 40) / Float(1 << 24) * 2 - 1 }
            for i in 0..<a.count { a.base[i] = next() }
            for i in 0..<(s.k * s.n) { w.base[i] = next() }
            let fp32 = LinearWeight.fp32(w)
            let bf16 = Precision.bf16Available ? LinearWeight(w, precision: .bf16) : nil
            var t32: [Double] = [], t16: [Double] = []
            for _ in 0..<repeats {
                t32.append(seconds { GEMM.linear(a.base, ldx: s.k, rows: s.m, weight: fp32, into: c.base, ldy: s.n) })
                if let bf16 { t16.append(seconds { GEMM.linear(a.base, ldx: s.k, rows: s.m, weight: bf16, into: c16.base, ldy: s.n, threads: threads) }) }
            }
            let flops = 2 * Double(s.m) * Double(s.k) * Double(s.n)
            var row: [String: Any] = ["shape": "\(s.m)x\(s.k)x\(s.n)", "sgemm_gflops": flops / median(t32) / 1e9]
            if bf16 != nil {
                var worst = 0.0, scale = 0.0
                for i in 0..<c.count { worst = max(worst, Double(abs(c16.base[i] - c.base[i]))); scale = max(scale, Double(abs(c.base[i]))) }
                row["bf16_gflops"] = flops / median(t16) / 1e9
                row["bf16_max_abs_diff_over_max_abs"] = worst / max(scale, 1e-30)
            }
            return row
        }
    }

    /// The best bf16-kernel rate on a large square product (GFLOP/s) on `threads` threads (rows
    /// split as the model's products split them); nil without AVX512-BF16.
    public static func bf16Peak(size n: Int = 1024, repeats: Int = 10, threads: Int = 1) -> Double? {
        guard Precision.bf16Available else { return nil }
        let a = FloatBuffer(count: n * n), b = Matrix(rows: n, cols: n), c = FloatBuffer(count: n * n)
        for i in 0..<(n * n) { a.base[i] = Float(i % 7) * 0.01; b.base[i] = Float(i % 5) * 0.01 }
        let w = LinearWeight(b, precision: .bf16)
        var best = Double.infinity
        for _ in 0..<repeats {
            best = min(best, seconds { GEMM.linear(a.base, ldx: n, rows: n, weight: w, into: c.base, ldy: n, threads: threads) })
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

    /// The report as a JSON object (keys sorted by the caller's serialiser). Everything runs on
    /// `BLASThreads.current` threads: OpenBLAS's for sgemm, the passes' own (`StackSession.threads`)
    /// for the bf16 kernel and attention, so both peaks and the MFU divide rates on one count.
    public static func run(model m: ElasticTokModel, contexts: [Int], repeats: Int, keep: Int?, candidates: Int) throws -> [String: Any] {
        let c = m.config
        var rng: UInt64 = 12345
        func block() -> [Float] {
            (0..<(c.tokensPerBlock * c.patchDim)).map { _ in
                rng = rng &* 6364136223846793005 &+ 1442695040888963407
                return Float(rng >> 40) / Float(1 << 24) * 2 - 1
            }
        }
        let threads = BLASThreads.current
        let peak = sgemmPeak()
        let bf16 = bf16Peak(threads: threads)
        // MFU against the peak of the kernel the model's linear layers run on.
        let denominator = m.precision == .bf16 ? (bf16 ?? peak) : peak
        let n = keep ?? c.tokensPerBlock
        let counts = candidates == 1 ? [n] : (0..<candidates).map { max(1, c.tokensPerBlock * ($0 + 1) / candidates) }
        var rows: [[String: Any]] = []
        let input = block()
        for k in contexts where k < c.contextBlocks {
            let coder = BlockCoder(model: m)
            coder.encoder.threads = threads
            coder.decoder.threads = threads
            for _ in 0..<k { _ = try coder.reconstruct(patches: block(), keptCounts: [n]); try coder.commit(candidate: 0) }
            _ = try coder.reconstruct(patches: input, keptCounts: counts)  // warm-up
            var times: [Double] = []
            for _ in 0..<repeats { times.append(try seconds { _ = try coder.reconstruct(patches: input, keptCounts: counts) }) }
            let flops = ModelFLOPs.block(c, contextBlocks: k) * Double(counts.count)
            let t = median(times)
            rows.append(["context_blocks": k, "seconds": t, "seconds_min": times.min() ?? t, "flops": flops,
                         "gflops_per_s": flops / t / 1e9, "mfu": flops / t / 1e9 / denominator])
        }
        var report: [String: Any] = ["peak_rss_mib": peakRSSMiB(), "sgemm_peak_gflops": peak, "precision": m.precision.rawValue, "threads": threads, "kernels": m.kernels.name,
                "blas": BLASKernels.description, "blas_core": BLASKernels.coreName, "candidates": counts.count,
                "tokens_per_block": c.tokensPerBlock, "parameters": m.parameterCount, "results": rows]
        if let bf16 { report["bf16_peak_gflops"] = bf16 }
        return report
    }
}
