// The bf16 path on small random models: its forward pass stays within a first-order bound of the
// float32 one, its 16-bit context caches give what the whole-sequence pass gives, and it keeps the
// engine's bit-exactness contracts (threads, candidates, decode from codes).
import EtokTensor
import XCTest
@testable import EtokModel

final class BF16EngineTests: XCTestCase {
    override func setUpWithError() throws {
        try XCTSkipUnless(Precision.bf16Available, "no AVX512-BF16 on this CPU")
    }

    /// Weights drawn here (norms 1 ± 0.2, kernels uniform with std 0.3), optionally with the
    /// stacks' linear kernels rounded to bf16: what the bf16 path multiplies by.
    func weights(_ config: ModelConfig, precision: Precision, roundLinear: Bool = false) -> ModelWeights {
        var state: UInt64 = 11
        func next() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(state >> 40) / Float(1 << 24) * 2 - 1
        }
        let shapes = Dictionary(uniqueKeysWithValues: ModelWeights.expectedTensors(config).map { ($0.name, $0.shape) })
        return try! ModelWeights.build(config, precision: precision) { name in
            let isNorm = name.hasSuffix("norm/kernel") || name.hasSuffix("ln_f/kernel")
            let linear = name.contains("/attention/w") || name.contains("/feed_forward/")
            let values = (0..<shapes[name]!.reduce(1, *)).map { _ in isNorm ? 1 + 0.2 * next() : 0.3 * 1.7320508 * next() }
            return FloatBuffer(roundLinear && linear ? values.map { BF16.float(BF16.round($0)) } : values)
        }
    }

    func model(_ config: ModelConfig, _ precision: Precision, roundLinear: Bool = false) -> ElasticTokModel {
        ElasticTokModel(config: config, weights: weights(config, precision: precision, roundLinear: roundLinear))
    }

    let fsq = EngineConsistencyTests.config
    var vae: ModelConfig {
        var c = fsq
        c.bottleneckType = "vae"
        c.vaeBottleneckDim = 5
        c.patchSize = [2, 4, 4]
        c.framesPerBlock = 2
        c.etokImageSize = [8, 32]
        return c
    }

    func blocks(_ config: ModelConfig, _ n: Int) -> [[Float]] {
        var rng = SeededRandom(seed: 3)
        return (0..<n).map { _ in rng.floats(config.tokensPerBlock * config.patchDim) }
    }

    /// First-order bound: rounding only the linear kernels to bf16 perturbs each product a·w by a
    /// relative u = 2^-8 at most; the bf16 path also rounds the activations entering each linear
    /// layer (another u per product) and the cached keys and values (u on each attention input),
    /// so to first order its deviation from float32 is at most 3 times the kernels-only one. The
    /// test allows 6 times (second-order terms), and checks that bf16 does change the result.
    func testBF16ForwardStaysWithinTheFirstOrderBoundOfFloat32() throws {
        let config = vae   // continuous latents: no FSQ code flips
        let input = blocks(config, 3).flatMap { $0 }, keep = [16, 7, 12].map { min($0, config.tokensPerBlock) }
        let exact = try model(config, .fp32).forwardSequence(patches: input, keep: keep)
        let kernelsOnly = try model(config, .fp32, roundLinear: true).forwardSequence(patches: input, keep: keep)
        let bf16 = try model(config, .bf16).forwardSequence(patches: input, keep: keep)
        let reference = maxAbsDiff(kernelsOnly.recon, exact.recon)
        let got = maxAbsDiff(bf16.recon, exact.recon)
        XCTAssertGreaterThan(reference, 1e-5, "rounding the kernels must matter on this model")
        XCTAssertGreaterThan(got, 0, "bf16 must not silently run float32")
        XCTAssertLessThanOrEqual(got, 6 * reference, "bf16 recon deviates \(got); kernels-only rounding \(reference)")
        XCTAssertLessThanOrEqual(maxAbsDiff(bf16.z, exact.z), 6 * maxAbsDiff(kernelsOnly.z, exact.z) + 1e-6)
    }

    /// The incremental engine with bf16 context caches equals the whole-sequence pass (which never
    /// caches) up to float rounding: what is cached is exactly what attention uses.
    func testBF16ContextCachesMatchTheWholeSequencePass() throws {
        for config in [fsq, vae] {
            let m = model(config, .bf16)
            let input = blocks(config, 4), keep = [16, 5, 0, 11].map { min($0, config.tokensPerBlock) }
            let full = try m.forwardSequence(patches: input.flatMap { $0 }, keep: keep)
            let coder = BlockCoder(model: m)
            var recon: [Float] = []
            for (b, n) in keep.enumerated() {
                recon += try coder.reconstruct(patches: input[b], keptCounts: [n])[0].recon
                try coder.commit(candidate: 0)
            }
            let fp32 = try model(config, .fp32).forwardSequence(patches: input.flatMap { $0 }, keep: keep)
            let precisionGap = maxAbsDiff(full.recon, fp32.recon)
            XCTAssertLessThanOrEqual(maxAbsDiff(recon, full.recon), max(1e-5, 0.05 * precisionGap),
                                     "\(config.bottleneckType): cached differs from whole-sequence by more than rounding")
            XCTAssertEqual(m.precision, .bf16)
            XCTAssertEqual(coder.encoder.cache.keys.count, 0, "no float32 cache in bf16")
            XCTAssertEqual(coder.encoder.cache.keys16.count, config.numEncoderLayers)
        }
    }

    func testBF16KeepsTheBitExactnessContracts() throws {
        let blas = BLASThreads.current
        BLASThreads.configure(threads: 1)
        defer { BLASThreads.configure(threads: blas) }
        let m = model(fsq, .bf16)
        let input = blocks(fsq, 3)
        func run(threads: Int) throws -> [Reconstruction] {
            let coder = BlockCoder(model: m)
            coder.encoder.threads = threads
            coder.decoder.threads = threads
            var out: [Reconstruction] = []
            for b in input {
                out += try coder.reconstruct(patches: b, keptCounts: [16, 3, 9])
                try coder.commit(candidate: 2)
            }
            return out
        }
        let one = try run(threads: 1)
        for threads in [2, 5] {
            let many = try run(threads: threads)
            XCTAssertEqual(one.map { $0.recon.map(\.bitPattern) }, many.map { $0.recon.map(\.bitPattern) }, "\(threads) threads")
        }
        // A candidate alone equals the same candidate among others; decoding its codes alone
        // reproduces the reconstruction the search measured.
        let single = BlockCoder(model: m), decoder = BlockDecoder(model: m)
        for (b, r) in zip(0..<3, stride(from: 2, to: 9, by: 3).map { one[$0] }) {
            let alone = try single.reconstruct(patches: input[b], keptCounts: [9])[0]
            try single.commit(candidate: 0)
            XCTAssertEqual(alone.recon.map(\.bitPattern), r.recon.map(\.bitPattern), "block \(b) alone")
            let decoded = try decoder.decode(codes: try XCTUnwrap(r.codes))
            try decoder.commit()
            XCTAssertEqual(decoded.map(\.bitPattern), r.recon.map(\.bitPattern), "block \(b) from codes")
        }
    }

    /// The MLP's row tiles change no bit (the kernel's rows are independent), whatever the tile.
    func testBF16MLPRowTilesChangeNoBit() throws {
        let m = model(fsq, .bf16)
        let input = blocks(fsq, 2)
        func run(tile: Int) throws -> [[UInt32]] {
            let coder = BlockCoder(model: m)
            coder.encoder.workspace.mlpTileRows = tile
            coder.decoder.workspace.mlpTileRows = tile
            var out: [[UInt32]] = []
            for b in input {
                out += try coder.reconstruct(patches: b, keptCounts: [16, 5]).map { $0.recon.map(\.bitPattern) }
                try coder.commit(candidate: 1)
            }
            XCTAssertLessThanOrEqual(coder.encoder.workspace.gu.count, tile * 2 * fsq.intermediateSize)
            return out
        }
        let whole = try run(tile: 512)
        for tile in [1, 3, 7] { XCTAssertEqual(try run(tile: tile), whole, "tile \(tile)") }
    }

    func testBF16HalvesTheLinearWeights() {
        let c = ModelConfig.etokDefault
        let fp32 = model(c, .fp32).weights.linearBytes, bf16 = model(c, .bf16).weights.linearBytes
        XCTAssertEqual(Double(bf16) / Double(fp32), 0.5, accuracy: 0.01)
    }
}
