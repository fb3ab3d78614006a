// Properties of the incremental engine on random models: cached == full forward, batched
// candidates == one at a time, decode from codes == the reconstruction the search measured,
// context limits and reset.
import EtokModel
import EtokTensor
import XCTest

final class EngineConsistencyTests: XCTestCase {
    /// A small random FSQ model with several heads and a non-square-free shape.
    static let config = ModelConfig(
        hiddenSize: 32, intermediateSize: 40, numEncoderLayers: 2, numDecoderLayers: 2, numAttentionHeads: 4,
        rmsNormEps: 1e-6, patchSize: [1, 4, 4], framesPerBlock: 1, minToks: 1, maxToks: 16,
        bottleneckType: "fsq", fsqQuantLevels: [8, 8, 8, 5, 5, 5], vaeBottleneckDim: nil, theta: 10000,
        maxSequenceLength: 64, etokImageSize: nil)

    func model(_ config: ModelConfig = config, seed: UInt64 = 7) -> ElasticTokModel {
        // A larger weight scale than training init, so that attention and the MLP matter.
        ElasticTokModel(config: config, weights: ModelWeights.random(config, seed: seed, std: 0.3))
    }

    func blocks(_ config: ModelConfig, _ n: Int, seed: UInt64 = 3) -> [[Float]] {
        var rng = SeededRandom(seed: seed)
        return (0..<n).map { _ in rng.floats(config.tokensPerBlock * config.patchDim) }
    }

    func testCachedIncrementalEqualsFullForward() throws {
        for config in [Self.config, vaeConfig()] {
            let m = model(config)
            let input = blocks(config, 4), keep = [16, 5, 0, 11]
            let full = try m.forwardSequence(patches: input.flatMap { $0 }, keep: keep)
            let coder = BlockCoder(model: m)
            var recon: [Float] = [], z: [Float] = [], codes: [Int32] = []
            for (b, n) in keep.enumerated() {
                let r = try XCTUnwrap(try coder.reconstruct(patches: input[b], keptCounts: [n]).first)
                try coder.commit(candidate: 0)
                recon += r.recon; z += r.z; codes += r.codes ?? []
            }
            // The two paths sum in different orders, so they may differ by float rounding, which
            // these deliberately large random weights amplify. Calibrate: the same full forward
            // with the double-precision reference kernels differs from it by that much too.
            let exact = ElasticTokModel(config: config, weights: m.weights, kernels: .reference)
            let oracle = try exact.forwardSequence(patches: input.flatMap { $0 }, keep: keep)
            let noiseRecon = max(maxAbsDiff(oracle.recon, full.recon), 1e-6)
            let noiseZ = max(maxAbsDiff(oracle.z, full.z), 1e-6)
            XCTAssertLessThanOrEqual(maxAbsDiff(recon, full.recon), 4 * noiseRecon, "recon \(config.bottleneckType)")
            XCTAssertLessThanOrEqual(maxAbsDiff(z, full.z), 4 * noiseZ, "z \(config.bottleneckType)")
            XCTAssertLessThanOrEqual(noiseRecon, 1e-4, "rounding noise itself must stay small")
            XCTAssertEqual(codes, full.codes ?? [])
            XCTAssertGreaterThan(maxAbsDiff(recon, full.recon.reversed()), 0.01, "outputs must not be trivial")
        }
    }

    func testContextChangesTheResult() throws {
        // The cache is really used: the same block after different contexts decodes differently.
        let m = model()
        let input = blocks(Self.config, 2)
        let a = BlockCoder(model: m), b = BlockCoder(model: m)
        _ = try a.reconstruct(patches: input[0], keptCounts: [16]); try a.commit(candidate: 0)
        _ = try b.reconstruct(patches: input[0], keptCounts: [1]); try b.commit(candidate: 0)
        let ra = try a.reconstruct(patches: input[1], keptCounts: [8])[0].recon
        let rb = try b.reconstruct(patches: input[1], keptCounts: [8])[0].recon
        XCTAssertGreaterThan(maxAbsDiff(ra, rb), 1e-4)
    }

    func testBatchedCandidatesEqualOneAtATimeBitForBit() throws {
        let m = model()
        let input = blocks(Self.config, 3), keeps = [0, 3, 16, 9, 3]
        let batched = BlockCoder(model: m)
        _ = try batched.reconstruct(patches: input[0], keptCounts: [7]); try batched.commit(candidate: 0)
        let all = try batched.reconstruct(patches: input[1], keptCounts: keeps)
        for (i, n) in keeps.enumerated() {
            let single = BlockCoder(model: m)
            _ = try single.reconstruct(patches: input[0], keptCounts: [7]); try single.commit(candidate: 0)
            let one = try XCTUnwrap(try single.reconstruct(patches: input[1], keptCounts: [n]).first)
            XCTAssertEqual(one.z.map(\.bitPattern), all[i].z.map(\.bitPattern), "z of keep \(n)")
            XCTAssertEqual(one.codes, all[i].codes)
            XCTAssertEqual(one.recon.map(\.bitPattern), all[i].recon.map(\.bitPattern), "recon of keep \(n)")
            XCTAssertEqual(one.mse, all[i].mse)
        }
        // Committing a candidate from the batch leaves the same context as committing it alone.
        try batched.commit(candidate: 2)
        let single = BlockCoder(model: m)
        _ = try single.reconstruct(patches: input[0], keptCounts: [7]); try single.commit(candidate: 0)
        _ = try single.reconstruct(patches: input[1], keptCounts: [16]); try single.commit(candidate: 0)
        let x = try batched.reconstruct(patches: input[2], keptCounts: [5])[0]
        let y = try single.reconstruct(patches: input[2], keptCounts: [5])[0]
        XCTAssertEqual(x.recon.map(\.bitPattern), y.recon.map(\.bitPattern))
    }

    /// Issue 15: a pass split across threads (candidates' GEMMs side by side, attention by head
    /// and query tile) gives the same bits as on one thread, with context, for both bottlenecks.
    func testThreadsChangeNoBitOfAnyCandidate() throws {
        // A pass splits only while OpenBLAS runs one thread per call (as encode and decode set it).
        let blas = BLASThreads.current
        BLASThreads.configure(threads: 1)
        defer { BLASThreads.configure(threads: blas) }
        for config in [Self.config, vaeConfig()] {
            let m = model(config)
            let input = blocks(config, 3)
            func run(threads: Int) throws -> [Reconstruction] {
                let coder = BlockCoder(model: m)
                coder.encoder.threads = threads
                coder.decoder.threads = threads
                var out: [Reconstruction] = []
                for b in input {
                    let r = try coder.reconstruct(patches: b, keptCounts: [16, 3, 9, 0])
                    try coder.commit(candidate: 2)
                    out += r
                }
                return out
            }
            let one = try run(threads: 1)
            for threads in [2, 5] {
                let many = try run(threads: threads)
                XCTAssertEqual(one.map { $0.recon.map(\.bitPattern) }, many.map { $0.recon.map(\.bitPattern) }, "\(threads) threads: recon")
                XCTAssertEqual(one.map { $0.z.map(\.bitPattern) }, many.map { $0.z.map(\.bitPattern) }, "\(threads) threads: z")
                XCTAssertEqual(one.map(\.mse.bitPattern), many.map(\.mse.bitPattern), "\(threads) threads: mse")
            }
        }
    }

    func testStagedCandidateFromAnEarlierPassCommitsTheSameContext() throws {
        // The search stages its current answer and keeps measuring: the context a staged
        // candidate leaves after more passes equals committing it straight from its own pass.
        let m = model()
        let input = blocks(Self.config, 3)
        let staged = BlockCoder(model: m), direct = BlockCoder(model: m)
        for coder in [staged, direct] {
            _ = try coder.reconstruct(patches: input[0], keptCounts: [7]); try coder.commit(candidate: 0)
        }
        _ = try staged.reconstruct(patches: input[1], keptCounts: [3, 11])
        try staged.stage(candidate: 1)
        _ = try staged.reconstruct(patches: input[1], keptCounts: [2, 16])   // later passes overwrite the workspace
        _ = try staged.reconstruct(patches: input[1], keptCounts: [5])
        try staged.commitStaged()
        _ = try direct.reconstruct(patches: input[1], keptCounts: [11]); try direct.commit(candidate: 0)
        XCTAssertEqual(staged.committedBlocks, 2)
        let x = try staged.reconstruct(patches: input[2], keptCounts: [9])[0]
        let y = try direct.reconstruct(patches: input[2], keptCounts: [9])[0]
        XCTAssertEqual(x.recon.map(\.bitPattern), y.recon.map(\.bitPattern))
        XCTAssertEqual(x.codes, y.codes)
        // Without the staging the context would differ (the last pass's candidate is not 11).
        let other = BlockCoder(model: m)
        _ = try other.reconstruct(patches: input[0], keptCounts: [7]); try other.commit(candidate: 0)
        _ = try other.reconstruct(patches: input[1], keptCounts: [5]); try other.commit(candidate: 0)
        XCTAssertNotEqual(try other.reconstruct(patches: input[2], keptCounts: [9])[0].recon, x.recon)
        // Nothing staged, nothing to commit; a reset drops what was staged.
        XCTAssertThrowsError(try staged.commitStaged())
        _ = try staged.reconstruct(patches: input[2], keptCounts: [4]); try staged.stage(candidate: 0)
        staged.reset()
        XCTAssertThrowsError(try staged.commitStaged())
        XCTAssertThrowsError(try staged.stage(candidate: 0))
    }

    func testDecodingFromCodesReproducesTheSearchReconstructionExactly() throws {
        let m = model()
        let input = blocks(Self.config, 3)
        let coder = BlockCoder(model: m)
        let decoder = BlockDecoder(model: m)
        for (b, choice) in [1, 0, 2].enumerated() {
            let candidates = try coder.reconstruct(patches: input[b], keptCounts: [4, 12, 16])
            try coder.commit(candidate: choice)
            let codes = try XCTUnwrap(candidates[choice].codes)
            let recon = try decoder.decode(codes: codes)
            try decoder.commit()
            XCTAssertEqual(recon.map(\.bitPattern), candidates[choice].recon.map(\.bitPattern), "block \(b)")
        }
    }

    func testContextFullIsAnErrorAndResetStartsAFreshChunk() throws {
        let m = model()
        let input = blocks(Self.config, 5)
        let coder = BlockCoder(model: m)
        let first = try coder.reconstruct(patches: input[0], keptCounts: [6])[0]
        try coder.commit(candidate: 0)
        for b in 1..<4 { _ = try coder.reconstruct(patches: input[b], keptCounts: [6]); try coder.commit(candidate: 0) }
        XCTAssertEqual(coder.committedBlocks, 4)
        XCTAssertThrowsError(try coder.reconstruct(patches: input[4], keptCounts: [6])) { error in
            guard case ModelError.contextFull = error else { return XCTFail("\(error)") }
        }
        coder.reset()
        XCTAssertEqual(coder.committedBlocks, 0)
        let again = try coder.reconstruct(patches: input[0], keptCounts: [6])[0]
        XCTAssertEqual(again.recon, first.recon)
    }

    func testBadInputsAreTypedErrors() throws {
        let m = model()
        let encoder = BlockEncoder(model: m)
        XCTAssertThrowsError(try encoder.encode(patches: [0, 1], keptCounts: [1]))
        let block = blocks(Self.config, 1)[0]
        XCTAssertThrowsError(try encoder.encode(patches: block, keptCounts: [17]))
        XCTAssertThrowsError(try encoder.encode(patches: block, keptCounts: []))
        XCTAssertThrowsError(try encoder.commit(candidate: 0), "nothing encoded yet")
        _ = try encoder.encode(patches: block, keptCounts: [3])
        XCTAssertThrowsError(try encoder.commit(candidate: 1))
        let decoder = BlockDecoder(model: m)
        XCTAssertThrowsError(try decoder.decode(codes: [Int32](repeating: 64000, count: 16))) { error in
            XCTAssertTrue("\(error)".contains("outside"), "\(error)")
        }
        XCTAssertThrowsError(try m.forwardSequence(patches: block, keep: [3, 4]))
    }

    func testMaskedTokensGetZeroZAndTheMaskedIndex() throws {
        let m = model()
        let e = try BlockEncoder(model: m).encode(patches: blocks(Self.config, 1)[0], keptCounts: [5])[0]
        let codes = try XCTUnwrap(e.codes)
        XCTAssertEqual(Array(codes[5...]), [Int32](repeating: 32036, count: 11))
        XCTAssertTrue(e.z[(5 * 6)...].allSatisfy { $0 == 0 })
        XCTAssertFalse(e.z[..<(5 * 6)].allSatisfy { $0 == 0 })
    }

    func vaeConfig() -> ModelConfig {
        var c = Self.config
        c.bottleneckType = "vae"
        c.vaeBottleneckDim = 5
        c.patchSize = [2, 4, 4]
        c.framesPerBlock = 2
        c.etokImageSize = [8, 32]
        return c
    }
}
