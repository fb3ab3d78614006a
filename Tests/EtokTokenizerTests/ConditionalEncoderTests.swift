import EtokIO
import EtokFormat
import EtokModel
import EtokTensor
import XCTest
@testable import EtokTokenizer

final class ConditionalEncoderTests: XCTestCase {
    /// A threshold that some budgets meet and others miss on the first block of `blocks`.
    func midThreshold(_ model: ElasticTokModel, _ blocks: [[Float]]) throws -> Float {
        let coder = BlockCoder(model: model)
        let c = model.config
        let r = try coder.reconstruct(patches: blocks[0], keptCounts: [c.minToks, c.maxToks])
        return (r[0].mse + r[1].mse) / 2
    }

    /// The exactness guarantee: the decoder, reading the container, reproduces bit for bit
    /// the reconstruction the encoder measured for every block; so every block's error is within
    /// the threshold unless it kept the largest budget.
    func checkExactRoundTrip(modelPath: String, blockCount: Int, search: SearchStrategy) throws {
        let model = try ElasticTokModel.load(path: modelPath)
        let blocks = try TokenizerFixtures.blocks(blockCount, model: model)
        var settings = EncoderSettings(threshold: try midThreshold(model, blocks), search: search)
        settings.batchSize = 3
        let (results, chunks, reconstructions) = try encodeAll(model, blocks, settings: settings)
        let chunkBlocks = model.config.contextBlocks
        XCTAssertEqual(chunks.count, (blockCount + chunkBlocks - 1) / chunkBlocks)

        let sink = MemorySink()
        let writer = try EtokWriter(sink: sink, header: header(for: model, settings: settings, chunkBlocks: chunkBlocks))
        for chunk in chunks { try writer.append(chunk) }
        try writer.finish()
        let reader = try EtokReader(bytes: sink.bytes, name: "t.etok")
        let decoder = try ChunkDecoder(model: model, header: reader.header, fileName: "t.etok")
        var decoded: [DecodedBlock] = []
        for i in reader.chunks.indices { decoded += try decoder.decode(try reader.chunk(at: i)) }

        XCTAssertEqual(decoded.count, results.count)
        for (r, d) in zip(results, decoded) {
            XCTAssertEqual(d.record.kept, r.keptTokens)
            XCTAssertEqual(d.reconstruction, reconstructions[r.index], "block \(r.index): decoder differs from the encoder's measurement")
            XCTAssertEqual(meanSquaredError(d.reconstruction, blocks[r.index]), r.mse)
            if r.keptTokens < model.config.maxToks {
                XCTAssertLessThanOrEqual(r.mse, settings.threshold, "block \(r.index)")
            }
        }
    }

    /// Decoding a chunk writes each pass's keys and values straight into the context's slot and
    /// keeps none for the chunk's last block: the decoder holds at most one block of keys and
    /// values less than the chunk (per layer), in both precisions and on 1 or 3 threads, and
    /// still reproduces the encoder's reconstruction bit for bit. (Keeping every layer's until
    /// the commit, as before, held a whole chunk plus one block.)
    func testDecoderKeepsOneBlockLessThanItsChunkAndStillReproducesTheEncoder() throws {
        var models = [try ElasticTokModel.load(path: TokenizerFixtures.fsqModelPath)]
        if Precision.bf16Available { models.append(try ElasticTokModel.load(path: TokenizerFixtures.fsqModelPath, precision: .bf16)) }
        for model in models {
            let c = model.config, n = c.contextBlocks
            let blocks = try TokenizerFixtures.blocks(n, model: model)
            let settings = EncoderSettings(threshold: try midThreshold(model, blocks), search: .fast)
            let (_, chunks, reconstructions) = try encodeAll(model, blocks, settings: settings)
            XCTAssertEqual(chunks.count, 1)
            for threads in [1, 3] {
                let decoder = try ChunkDecoder(model: model, header: header(for: model, settings: settings, chunkBlocks: n), fileName: "t.etok")
                decoder.passThreads = threads
                let decoded = try decoder.decode(chunks[0])
                XCTAssertEqual(decoded.map(\.reconstruction), reconstructions, "\(model.precision) \(threads) threads")
                XCTAssertLessThanOrEqual(decoder.decoder.keyValueLayerRows, (n - 1) * c.tokensPerBlock * c.numDecoderLayers,
                                         "\(model.precision): the decoder kept more than the chunk's blocks but one")
            }
        }
    }

    func testDecoderReproducesTheEncodersFSQReconstructionBitForBit() throws {
        for search in SearchStrategy.allCases {
            try checkExactRoundTrip(modelPath: TokenizerFixtures.fsqModelPath, blockCount: 7, search: search)
        }
    }

    func testDecoderReproducesTheEncodersVAEReconstructionFromF16Latents() throws {
        try checkExactRoundTrip(modelPath: TokenizerFixtures.vaeModelPath, blockCount: 5, search: .binary)
    }

    func testBinaryAndFastAgreeWithTheSearchOnTheRealModel() throws {
        let model = try ElasticTokModel.load(path: TokenizerFixtures.fsqModelPath)
        let blocks = try TokenizerFixtures.blocks(6, model: model)
        let threshold = try midThreshold(model, blocks)
        let (binary, _, _) = try encodeAll(model, blocks, settings: EncoderSettings(threshold: threshold, search: .binary))
        // Brute force over every budget, with the same committed context as binary chose.
        let coder = BlockCoder(model: model)
        for (i, r) in binary.enumerated() {
            if i % model.config.contextBlocks == 0 { coder.reset() }
            let all = Array(model.config.minToks...model.config.maxToks)
            let errors = try coder.reconstruct(patches: blocks[i], keptCounts: all)
            let passing = errors.filter { $0.mse <= threshold }.map(\.keptCount)
            // Binary finds a passing budget with a failing budget just below it (or the minimum).
            if r.keptTokens < model.config.maxToks {
                XCTAssertTrue(passing.contains(r.keptTokens))
                if r.keptTokens > model.config.minToks {
                    XCTAssertFalse(passing.contains(r.keptTokens - 1), "block \(i): \(r.keptTokens - 1) also passes")
                }
            }
            try coder.commit(candidate: all.firstIndex(of: r.keptTokens)!)
        }
    }

    func testFixedBudgetKeepsExactlyThatManyTokens() throws {
        let model = try ElasticTokModel.load(path: TokenizerFixtures.fsqModelPath)
        let blocks = try TokenizerFixtures.blocks(4, model: model)
        let (results, chunks, _) = try encodeAll(model, blocks, settings: EncoderSettings(fixedTokens: 5))
        XCTAssertEqual(results.map(\.keptTokens), [5, 5, 5, 5])
        XCTAssertEqual(results.map(\.passes), [1, 1, 1, 1])
        guard case .fsq(let tokens) = chunks[0].tokens else { return XCTFail("FSQ model gave VAE tokens") }
        XCTAssertEqual(tokens.map(\.count), [5, 5, 5])
    }

    func testSameInputGivesIdenticalTokens() throws {
        let model = try ElasticTokModel.load(path: TokenizerFixtures.fsqModelPath)
        let blocks = try TokenizerFixtures.blocks(5, model: model)
        let settings = EncoderSettings(threshold: try midThreshold(model, blocks))
        let (_, a, _) = try encodeAll(model, blocks, settings: settings)
        let (_, b, _) = try encodeAll(model, blocks, settings: settings)
        XCTAssertEqual(a, b)
    }

    /// A chunk whose tokens are of the other bottleneck is refused, not decoded as if they fit.
    func testTheDecoderRefusesTokensOfTheOtherBottleneck() throws {
        let model = try ElasticTokModel.load(path: TokenizerFixtures.fsqModelPath)
        let decoder = try ChunkDecoder(model: model, header: header(for: model, settings: EncoderSettings(), chunkBlocks: 3),
                                       fileName: "t.etok")
        let c = model.config
        let chunk = Chunk(firstBlock: 0, blocks: [BlockRecord(kept: 2, frames: 1, pts: 0, mse: 0)],
                          tokens: .vae([[Float](repeating: 0.5, count: 2 * c.codeDim)]))
        XCTAssertThrowsError(try decoder.decode(chunk)) { error in
            XCTAssertTrue("\(error)".contains("holds vae tokens"), "\(error)")
        }
    }

    func testSettingsThatDoNotFitTheModelAreRejectedByName() throws {
        let model = try ElasticTokModel.load(path: TokenizerFixtures.fsqModelPath)
        let bad: [(EncoderSettings, String)] = [
            (EncoderSettings(fixedTokens: 17), "--fixed"),
            (EncoderSettings(chunkBlocks: 4), "--chunk"),
            (EncoderSettings(minTokens: 9, maxTokens: 4), "token range"),
            (EncoderSettings(threshold: -1), "threshold"),
        ]
        for (settings, word) in bad {
            XCTAssertThrowsError(try ConditionalEncoder(model: model, settings: settings)) { error in
                XCTAssertTrue("\(error)".contains(word), "\(error)")
            }
        }
    }
}
