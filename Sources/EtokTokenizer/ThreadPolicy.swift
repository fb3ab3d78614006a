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
/// The spare cores of a clip shorter than `workers` chunks stay idle.
public enum ThreadPolicy {
    /// Chunks encoded or decoded at once by default: one per active processor.
    public static var defaultWorkers: Int { BLASThreads.defaultCount }

    /// OpenBLAS threads per chunk worker.
    public static let blasThreadsPerWorker = 1

    /// Sets OpenBLAS's thread count for a run (process-wide, before its first GEMM). It is not
    /// restored afterwards: two runs in one process must not see each other's count change.
    static func applyToBLAS() {
        BLASThreads.configure(threads: blasThreadsPerWorker)
    }
}
