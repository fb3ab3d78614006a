// BlockCoder: encoder and decoder together, for the token-budget search: reconstruct a block for
// several kept counts, measure each reconstruction's error, commit the chosen count to both
// contexts.

/// One candidate of a block: its codes, its reconstruction and the reconstruction's error.
public struct Reconstruction: Sendable {
    public var keptCount: Int
    /// z (tokens × code_dim), zero where not kept.
    public var z: [Float]
    /// FSQ indices (tokens); nil for a VAE.
    public var codes: [Int32]?
    /// Decoded patches (tokens × patch_dim) in [-1, 1].
    public var recon: [Float]
    /// Mean over pixels and channels of (recon − input)² on the [-1, 1] scale.
    public var mse: Float
}

/// The encoder's and the decoder's contexts of one stream, kept in step.
///
/// The reconstruction measured here is bit-identical to what a `BlockDecoder` later produces
/// from the committed codes alone (see `BlockDecoder`). Not thread-safe; one per stream.
public final class BlockCoder {
    public let encoder: BlockEncoder
    public let decoder: BlockDecoder
    private var pendingZ: [Float] = []

    /// A fresh coder with empty contexts.
    public init(model: ElasticTokModel) {
        encoder = BlockEncoder(model: model)
        decoder = BlockDecoder(model: model)
    }

    /// Blocks committed since the last reset.
    public var committedBlocks: Int { encoder.committedBlocks }

    /// The context slot holding the staged candidate (both stacks stage alike); nil: none.
    public var stagedSlot: Int? { encoder.stagedSlot }

    /// Encodes and decodes one block (tokens × patch_dim) at each kept count; nothing is
    /// committed until `commit(candidate:)`. `keeping`: what both stacks keep of the pass's keys
    /// and values for that (`KeyValueKeeping`); it changes no bit of the result.
    public func reconstruct(patches: [Float], keptCounts: [Int], keeping: KeyValueKeeping = .all) throws -> [Reconstruction] {
        let c = encoder.model.config
        let blockSize = c.tokensPerBlock * c.patchDim
        let encoded = try encoder.encode(patches: patches, keptCounts: keptCounts, keeping: keeping)
        pendingZ = encoded.flatMap(\.z)
        let recon = try pendingZ.withUnsafeBufferPointer {
            try decoder.decodeCandidates(z: $0.baseAddress!, count: encoded.count, keeping: keeping)
        }
        return encoded.enumerated().map { i, e in
            let r = Array(recon[(i * blockSize)..<((i + 1) * blockSize)])
            var sum = 0.0
            for j in 0..<blockSize {
                let diff = Double(r[j]) - Double(patches[j])
                sum += diff * diff
            }
            return Reconstruction(keptCount: e.keptCount, z: e.z, codes: e.codes, recon: r,
                                  mse: Float(sum / Double(blockSize)))
        }
    }

    /// Commits candidate `index` of the last `reconstruct` call to both contexts.
    public func commit(candidate index: Int) throws {
        try encoder.commit(candidate: index)
        try decoder.commit(candidate: index)
    }

    /// Sets candidate `index` of the last `reconstruct` call aside in both contexts, to commit
    /// later with `commitStaged()` even after more passes over the same block (staging again
    /// replaces it).
    public func stage(candidate index: Int) throws {
        try encoder.stage(candidate: index)
        try decoder.stage(candidate: index)
    }

    /// Commits the staged candidate to both contexts.
    public func commitStaged() throws {
        try encoder.commitStaged()
        try decoder.commitStaged()
    }

    /// Forgets both contexts (a chunk boundary).
    public func reset() {
        encoder.reset()
        decoder.reset()
    }
}
