import EtokIO
import EtokModel

/// What `etok model run` does, for checking etok's engine against another implementation: every
/// block of an array encoded and decoded with a set kept count, in stream order, each with the
/// earlier blocks of its chunk as context (the streaming engine, `BlockCoder`); the context resets
/// every `contextBlocks` blocks.
public enum ModelRun {
    /// The arrays `etok model run` writes: recon.npy, z.npy and (FSQ) codes.npy.
    public struct Output: Sendable {
        /// float32 (L, patch_dim), the reconstruction in [-1, 1].
        public var recon: NPYArray
        /// float32 (L, code_dim), zero where a token is not kept.
        public var z: NPYArray
        /// int32 (L,), FSQ indices (the all-zero code's index past a block's kept count); nil for a VAE.
        public var codes: NPYArray?

        /// The file names and arrays, in the order written.
        public var files: [(name: String, array: NPYArray)] {
            [("recon.npy", recon), ("z.npy", z)] + (codes.map { [("codes.npy", $0)] } ?? [])
        }
    }

    /// The names `run` produces for a model with `config`, in the order of `Output.files`.
    public static func fileNames(_ config: ModelConfig) -> [String] {
        ["recon.npy", "z.npy"] + (config.isFSQ ? ["codes.npy"] : [])
    }

    /// The patches of `array` (read from `file`): float32 (L, patch_dim) patches in [-1, 1]
    /// covering whole blocks, or uint8 (T, H, W, 3) frames at the model's size (patchified).
    public static func patches(_ array: NPYArray, file: String, config c: ModelConfig) throws -> [Float] {
        let s = array.shape
        if let floats = array.floats {
            guard s.count == 2, s[1] == c.patchDim, s[0] > 0, s[0] % c.tokensPerBlock == 0 else {
                throw ModelError.badInput(call: file, message: "float32 input must be (L, \(c.patchDim)) with L a multiple of "
                                          + "\(c.tokensPerBlock), got \(s)")
            }
            return floats
        }
        if let bytes = array.uint8 {
            let size = c.imageSize
            guard s.count == 4, s[3] == 3, s[1] == size.height, s[2] == size.width, s[0] > 0, s[0] % c.framesPerBlock == 0 else {
                throw ModelError.badInput(call: file, message: "uint8 input must be (T, \(size.height), \(size.width), 3) with T a "
                                          + "multiple of \(c.framesPerBlock), got \(s)")
            }
            return try Patchify.patches(frames: bytes, count: s[0], height: s[1], width: s[2], config: c)
        }
        throw ModelError.badInput(call: file, message: "input must be float32 patches or uint8 frames, got \(array.descr)")
    }

    /// Encodes and decodes each block of `patches` keeping `keptCounts[b]` tokens of block `b`
    /// (one count per block). Cost: one encoder and one decoder pass per block.
    public static func run(model: ElasticTokModel, patches: [Float], keptCounts: [Int]) throws -> Output {
        let c = model.config
        let blockValues = c.tokensPerBlock * c.patchDim
        precondition(patches.count == keptCounts.count * blockValues, "one kept count per block")
        let coder = BlockCoder(model: model)
        var recon: [Float] = [], z: [Float] = [], codes: [Int32] = []
        recon.reserveCapacity(patches.count)
        for (b, n) in keptCounts.enumerated() {
            if b % c.contextBlocks == 0 { coder.reset() }
            let block = Array(patches[(b * blockValues)..<((b + 1) * blockValues)])
            let r = try coder.reconstruct(patches: block, keptCounts: [n])[0]
            try coder.commit(candidate: 0)
            recon += r.recon
            z += r.z
            codes += r.codes ?? []
        }
        let length = keptCounts.count * c.tokensPerBlock
        return Output(recon: NPYArray(shape: [length, c.patchDim], floats: recon),
                      z: NPYArray(shape: [length, c.codeDim], floats: z),
                      codes: c.isFSQ ? NPYArray(shape: [length], int32: codes) : nil)
    }
}
