import EtokTensor

/// How an encode or a decode uses the cores: chunks side by side, one worker thread each, and
/// each worker's GEMMs on one OpenBLAS thread. `EncodeRun` and `DecodeRun` apply it themselves,
/// so a library caller gets it too.
///
/// Why one BLAS thread per chunk, even when a clip has fewer chunks than workers: OpenBLAS's
/// results depend on its thread count (measured with 0.3.21 and Haswell kernels on the default
/// model: a one-chunk encode at 2 threads writes other MSE bits than at 1, and a decoder
/// reproduces the encoder's measurement only at the same count), so the `.etok` bytes are defined
/// at one thread. In the same measurement 2 threads were also slower on these 256-row products.
/// The spare cores go to the passes instead (`passThreads`): a pass splits attention by head and
/// query tile, candidates side by side, and the bf16 path's products by rows, none of which
/// changes a bit; so a one-chunk clip keeps every core busy, and chunks running side by side
/// share the cores instead of piling threads on them.
public enum ThreadPolicy {
    /// Chunks encoded or decoded at once by default: one per active processor.
    public static var defaultWorkers: Int { BLASThreads.defaultCount }

    /// OpenBLAS threads per chunk worker.
    public static let blasThreadsPerWorker = 1

    /// Threads each chunk's passes split into when `running` chunks run at once (the clip's
    /// chunks, if known, up to the workers): the cores shared out, at least 1.
    public static func passThreads(running: Int, cores: Int = BLASThreads.defaultCount) -> Int {
        max(1, cores / max(1, running))
    }

    /// Chunks that run at once: `workers`, or fewer when the clip has fewer `chunks` (nil: unknown).
    public static func running(workers: Int, chunks: Int?) -> Int {
        max(1, min(workers, chunks ?? workers))
    }

    /// Sets OpenBLAS's thread count for a run (process-wide, before its first GEMM). It is not
    /// restored afterwards: two runs in one process must not see each other's count change.
    static func applyToBLAS() {
        BLASThreads.configure(threads: blasThreadsPerWorker)
    }
}
