// What a chunk's encode keeps of the stacks' keys and values: at most one block less than the
// chunk per stack (plus one layer's), counted structurally by the sessions (the rows of their
// context buffers ever written and of the workspace's every-layer buffers), with contexts and
// results exactly those of committing each chosen count straight from a pass of its own.
import EtokModel
import EtokTensor
import XCTest
@testable import EtokTokenizer

final class ContextMemoryTests: XCTestCase {
    func models() throws -> [(String, ElasticTokModel)] {
        var out = [("fp32", try ElasticTokModel.load(path: TokenizerFixtures.fsqModelPath))]
        if Precision.bf16Available {
            out.append(("bf16", try ElasticTokModel.load(path: TokenizerFixtures.fsqModelPath, precision: .bf16)))
        }
        return out
    }

    /// Thresholds between consecutive errors of the first block over every budget (alone), so
    /// that the searches take several passes and choose different counts.
    func thresholds(_ model: ElasticTokModel, _ block: [Float]) throws -> [Float] {
        let c = model.config
        let r = try BlockCoder(model: model).reconstruct(patches: block, keptCounts: Array(c.minToks...c.maxToks))
        let errors = Set(r.map(\.mse)).sorted()
        return zip(errors, errors.dropFirst()).map { ($0 + $1) / 2 }
    }

    func inputs(_ blocks: ArraySlice<[Float]>, _ model: ElasticTokModel) -> [ConditionalEncoder.BlockInput] {
        blocks.map { (patches: $0, pts: 0, frames: model.config.framesPerBlock) }
    }

    func testAChunkKeepsAtMostOneBlockOfKeysAndValuesLessThanItHolds() throws {
        for (name, model) in try models() {
            let c = model.config, n = c.contextBlocks
            let blocks = try TokenizerFixtures.blocks(n, model: model)
            for search in SearchStrategy.allCases {
                for fixed in [nil, c.maxToks / 2] {
                    let settings = EncoderSettings(threshold: try thresholds(model, blocks[0]).first!, search: search,
                                                   fixedTokens: fixed, batchSize: 1)
                    let encoder = try ConditionalEncoder(model: model, settings: settings)
                    encoder.spareSlotBytes = 0   // as for a large model
                    _ = try encoder.encodeChunk(inputs(blocks[...], model), firstBlock: 0)
                    for (stack, session) in [("encoder", encoder.coder.encoder), ("decoder", encoder.coder.decoder)] as [(String, StackSession)] {
                        let layers = stack == "encoder" ? c.numEncoderLayers : c.numDecoderLayers
                        // Keeping every layer's keys and values of a pass until the commit would
                        // add a block: n blocks (committed, staged and the pass's).
                        XCTAssertLessThanOrEqual(session.keyValueLayerRows, (n - 1) * c.tokensPerBlock * layers,
                                                 "\(name) \(search) fixed \(String(describing: fixed)): \(stack)")
                    }
                }
            }
        }
    }

    func testTheVAEKeepsAtMostOneBlockLessThanItsChunk() throws {
        let model = try ElasticTokModel.load(path: TokenizerFixtures.vaeModelPath)
        let c = model.config, n = c.contextBlocks
        let blocks = try TokenizerFixtures.blocks(n, model: model)
        let encoder = try ConditionalEncoder(model: model, settings: EncoderSettings(threshold: try thresholds(model, blocks[0]).first!))
        encoder.spareSlotBytes = 0
        _ = try encoder.encodeChunk(inputs(blocks[...], model), firstBlock: 0)
        XCTAssertLessThanOrEqual(encoder.coder.encoder.keyValueLayerRows, (n - 1) * c.tokensPerBlock * c.numEncoderLayers)
        XCTAssertLessThanOrEqual(encoder.coder.decoder.keyValueLayerRows, (n - 1) * c.tokensPerBlock * c.numDecoderLayers)
    }

    /// The chunk's results equal a plain replay: each block searched with passes that keep every
    /// candidate's keys and values, and its chosen count committed from a pass of its own. The
    /// encoder's passes exceed the replay's search by one only where the chosen candidate had no
    /// slot left (the chunk's second-to-last block, without a spare slot), and that happens on
    /// these inputs.
    func testResultsAndContextsEqualCommittingEachChoiceFromItsOwnPass() throws {
        var reruns = 0
        for (name, model) in try models() {
            let c = model.config, n = c.contextBlocks
            let blocks = try TokenizerFixtures.blocks(2 * n, model: model)
            for threshold in try thresholds(model, blocks[0]) {
                for (first, search) in [(0, SearchStrategy.fast), (n, .fast), (0, .binary), (n, .binary)] { for spare in [false, true] {
                    let chunk = blocks[first..<(first + n)]
                    // Repeats off: the replay below searches every block (repeat blocks have their own tests).
                    let settings = EncoderSettings(threshold: threshold, search: search, repeatBlocks: false)
                    let encoder = try ConditionalEncoder(model: model, settings: settings)
                    encoder.spareSlotBytes = spare ? 1 << 20 : 0
                    var measured: [[Float]] = []
                    let encoded = try encoder.encodeChunk(inputs(chunk, model), firstBlock: 0) { _, r in measured.append(r) }

                    let plain = BlockCoder(model: model)
                    var hint: Int?
                    for (k, patches) in chunk.enumerated() {
                        let choice = try settings.resolved(for: c).search.choose(hint: hint) { counts in
                            try plain.reconstruct(patches: patches, keptCounts: counts).map(\.mse)
                        }
                        let r = try plain.reconstruct(patches: patches, keptCounts: [choice.keptTokens])[0]
                        try plain.commit(candidate: 0)
                        hint = choice.keptTokens
                        let got = encoded.results[k], at = "\(name) \(search) threshold \(threshold) chunk \(first) block \(k)"
                        XCTAssertEqual(got.keptTokens, choice.keptTokens, at)
                        XCTAssertEqual(got.mse.bitPattern, r.mse.bitPattern, at)
                        XCTAssertEqual(measured[k].map(\.bitPattern), r.recon.map(\.bitPattern), at)
                        let extra = got.passes - choice.passes
                        XCTAssertTrue(extra == 0 || (extra == 1 && k == n - 2 && !spare), "\(at): \(extra) extra passes")
                        reruns += extra
                    }
                } }
            }
        }
        XCTAssertGreaterThan(reruns, 0, "no block ran its chosen count again: the one-slot path went untested")
    }
}
