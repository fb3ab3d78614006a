import EtokIO
import EtokFormat
import EtokModel
import XCTest
@testable import EtokTokenizer

/// Repeat blocks (docs/etok-format.md §5, `RepeatBlock`): kept 0, the previous block's last frame
/// shown again, nothing added to the model's context.
final class RepeatBlockTests: XCTestCase {
    /// Writes the chunks, reads them back and decodes every block.
    func writeAndDecode(_ model: ElasticTokModel, _ chunks: [Chunk], header: EtokHeader) throws -> (bytes: [UInt8], decoded: [DecodedBlock]) {
        let sink = MemorySink()
        let writer = try EtokWriter(sink: sink, header: header)
        for chunk in chunks { try writer.append(chunk) }
        try writer.finish()
        let reader = try EtokReader(bytes: sink.bytes, name: "r.etok")
        let decoder = try ChunkDecoder(model: model, header: reader.header, fileName: "r.etok")
        var decoded: [DecodedBlock] = []
        var resolver = ChunkStartResolver(config: model.config, file: "r.etok")
        for i in reader.chunks.indices {
            let (blocks, lost) = try resolver.resolve(try decoder.decode(try reader.chunk(at: i)))
            XCTAssertNil(lost)
            decoded += blocks
        }
        return (sink.bytes, decoded)
    }

    /// Encodes `blocks` as `EncodeRun` does with repeats on: each chunk on its own (as a parallel
    /// worker), then `ChunkStartRepeats` in stream order.
    func encodeAcrossChunks(_ model: ElasticTokModel, _ blocks: [[Float]], settings: EncoderSettings)
        throws -> (results: [BlockResult], chunks: [Chunk])
    {
        let encoder = try ConditionalEncoder(model: model, settings: settings)
        let starts = ChunkStartRepeats(model: model, settings: settings)
        var results: [BlockResult] = [], chunks: [Chunk] = []
        for first in stride(from: 0, to: blocks.count, by: encoder.chunkBlocks) {
            let inputs = blocks[first..<min(first + encoder.chunkBlocks, blocks.count)].enumerated().map { k, patches in
                (patches: patches, pts: Int64((first + k) * 10), frames: model.config.framesPerBlock)
            }
            var last: [Float] = []
            var encoded = try encoder.encodeChunk(inputs, firstBlock: first) { _, recon in last = recon }
            encoded.carry = RepeatCarry(blocks: inputs, lastReconstruction: last)
            let out = try starts.process(encoded)
            XCTAssertNil(out.carry)
            results += out.results
            chunks.append(out.chunk)
        }
        return (results, chunks)
    }

    /// A static shot across chunks: every block after the stream's first is a repeat, chunk starts
    /// included (they repeat the previous chunk's last frame, §5), each within the threshold; the
    /// decoder (chunks decoded apart, then `ChunkStartResolver`) reproduces exactly the MSE the
    /// encoder measured, and every frame is the first block's reconstruction.
    func testAStaticShotCostsNothingAfterItsFirstBlockAcrossChunks() throws {
        let model = try ElasticTokModel.load(path: TokenizerFixtures.fsqModelPath)
        let chunkBlocks = model.config.contextBlocks
        let blocks = try stills(Array(repeating: 0, count: 2 * chunkBlocks + 1), model: model)
        let settings = EncoderSettings(threshold: try passableThreshold(model, blocks[0]))
        let (results, chunks) = try encodeAcrossChunks(model, blocks, settings: settings)
        XCTAssertEqual(chunks.count, 3)
        XCTAssertEqual(results.map(\.isRepeat), [false] + Array(repeating: true, count: blocks.count - 1))
        XCTAssertGreaterThan(results[0].keptTokens, 0)
        for r in results.dropFirst() {
            XCTAssertEqual(r.keptTokens, 0, "block \(r.index)")
            XCTAssertLessThanOrEqual(r.mse, settings.threshold, "block \(r.index)")
            XCTAssertTrue(r.meetsThreshold)
        }
        let (_, decoded) = try writeAndDecode(model, chunks, header: header(for: model, settings: settings, chunkBlocks: chunkBlocks))
        XCTAssertEqual(decoded.count, blocks.count)
        for (r, d) in zip(results, decoded) {
            XCTAssertEqual(meanSquaredError(d.reconstruction, blocks[r.index]), r.mse, "block \(r.index): decoder differs from the encoder")
            XCTAssertEqual(d.reconstruction, decoded[0].reconstruction, "block \(r.index)")
            XCTAssertFalse(d.repeatsPreviousChunk)
        }
    }

    /// A chunk that starts with repeats and then changes: only its leading repeats depend on the
    /// previous chunk. Decoded without that chunk (dropped as damaged), they are one lost range and
    /// the chunk's coded blocks decode as they do with it; its coded block, coded with an empty
    /// context, is the block a chunk starting there would code.
    func testLeadingRepeatsAreLostWithoutThePreviousChunkAndTheRestDecodes() throws {
        let model = try ElasticTokModel.load(path: TokenizerFixtures.fsqModelPath)
        let chunkBlocks = model.config.contextBlocks
        XCTAssertGreaterThanOrEqual(chunkBlocks, 3, "the fixture model's context")
        let still = try stills([0], model: model)[0]
        let white = [Float](repeating: 1, count: still.count)
        // Chunk 1: the still once more (a repeat of chunk 0's last frame), then white.
        let blocks = Array(repeating: still, count: chunkBlocks + 1) + Array(repeating: white, count: chunkBlocks - 1)
        let settings = EncoderSettings(threshold: try passableThreshold(model, still))
        let (results, chunks) = try encodeAcrossChunks(model, blocks, settings: settings)
        XCTAssertEqual(chunks.count, 2)
        XCTAssertEqual(chunks[1].blocks.map { $0.kept == 0 }, [true, false] + Array(repeating: true, count: chunkBlocks - 2))
        // Its coded block: as the first block of a chunk of its own.
        let alone = try encodeAll(model, [white], settings: settings)
        XCTAssertEqual(results[chunkBlocks + 1].keptTokens, alone.results[0].keptTokens)
        let (bytes, full) = try writeAndDecode(model, chunks, header: header(for: model, settings: settings, chunkBlocks: chunkBlocks))

        let reader = try EtokReader(bytes: bytes, name: "r.etok")
        let decoder = try ChunkDecoder(model: model, header: reader.header, fileName: "r.etok")
        var resolver = ChunkStartResolver(config: model.config, file: "r.etok")
        let (rest, lost) = try resolver.resolve(try decoder.decode(try reader.chunk(at: 1)))
        let range = try XCTUnwrap(lost)
        XCTAssertEqual(range.firstBlock, chunkBlocks)
        XCTAssertEqual(range.endBlock, chunkBlocks + 1)
        XCTAssertEqual(range.reason, .repeatsMissingFrame(file: "r.etok", block: chunkBlocks - 1))
        XCTAssertTrue(range.description.contains("block \(chunkBlocks) unreadable: repeat blocks of block \(chunkBlocks - 1)'s last frame"),
                      range.description)
        XCTAssertEqual(rest.map(\.index), Array((chunkBlocks + 1)..<(2 * chunkBlocks)))
        XCTAssertEqual(rest.map(\.reconstruction), full[(chunkBlocks + 1)...].map(\.reconstruction))
    }

    /// Still frames: `pattern[i]` picks which of the moving clip's frames block i shows.
    func stills(_ pattern: [Int], model: ElasticTokModel) throws -> [[Float]] {
        let all = try TokenizerFixtures.blocks((pattern.max() ?? 0) + 1, model: model)
        return pattern.map { all[$0] }
    }

    /// A threshold the first block meets at some budget below the largest.
    func passableThreshold(_ model: ElasticTokModel, _ block: [Float]) throws -> Float {
        let r = try BlockCoder(model: model).reconstruct(patches: block, keptCounts: [model.config.maxToks])
        return r[0].mse * 1.5
    }

    /// The FSQ model on a static shot: after each chunk's first block, every block is a repeat (0
    /// tokens, no model pass), its measured MSE is the error of the previous reconstruction shown
    /// again, and the decoder reproduces exactly what the encoder measured.
    func testAStaticShotCostsNothingAfterEachChunksFirstBlockAndDecodesBitForBit() throws {
        let model = try ElasticTokModel.load(path: TokenizerFixtures.fsqModelPath)
        let blocks = try stills(Array(repeating: 0, count: 7), model: model)
        let settings = EncoderSettings(threshold: try passableThreshold(model, blocks[0]))
        let chunkBlocks = model.config.contextBlocks
        let (results, chunks, reconstructions) = try encodeAll(model, blocks, settings: settings)
        for r in results {
            let position = r.index % chunkBlocks
            XCTAssertEqual(r.isRepeat, position > 0, "block \(r.index)")
            XCTAssertEqual(r.keptTokens == 0, position > 0, "block \(r.index)")
            XCTAssertLessThanOrEqual(r.mse, settings.threshold, "block \(r.index)")
            if r.isRepeat {
                XCTAssertEqual(r.passes, 0)
                // Independently: the previous block's reconstruction (one frame per block) shown again.
                XCTAssertEqual(reconstructions[r.index], reconstructions[r.index - 1])
                XCTAssertEqual(r.mse, meanSquaredError(reconstructions[r.index - 1], blocks[r.index]))
            }
        }
        let (bytes, decoded) = try writeAndDecode(model, chunks, header: header(for: model, settings: settings, chunkBlocks: chunkBlocks))
        XCTAssertEqual(Array(bytes[8..<12]), [1, 0, 2, 0], "a stream with repeat blocks is format 1.2")
        XCTAssertEqual(decoded.count, results.count)
        for (r, d) in zip(results, decoded) {
            XCTAssertEqual(d.record.kept, r.keptTokens)
            XCTAssertEqual(d.reconstruction, reconstructions[r.index], "block \(r.index): decoder differs from the encoder")
            XCTAssertEqual(meanSquaredError(d.reconstruction, blocks[r.index]), r.mse)
        }
    }

    /// The model never sees a repeat: a coded block after repeats is coded exactly as if the
    /// repeats were not in the chunk (same context, same positions), so it gets the same tokens and
    /// reconstruction as in a chunk without them.
    func testACodedBlockAfterRepeatsSeesOnlyTheChunksCodedBlocks() throws {
        let model = try ElasticTokModel.load(path: TokenizerFixtures.fsqModelPath)
        let still = try stills([0], model: model)[0]
        // The third block is white: far from what the first reconstruction shows.
        let withRepeats = [still, still, [Float](repeating: 1, count: still.count)]
        let settings = EncoderSettings(threshold: try passableThreshold(model, withRepeats[0]))
        let a = try encodeAll(model, withRepeats, settings: settings)
        XCTAssertEqual(a.results.map(\.isRepeat), [false, true, false])
        let b = try encodeAll(model, [withRepeats[0], withRepeats[2]], settings: settings)
        XCTAssertEqual(a.results[2].keptTokens, b.results[1].keptTokens)
        XCTAssertEqual(a.reconstructions[2], b.reconstructions[1])
        guard case .fsq(let ta) = a.chunks[0].tokens, case .fsq(let tb) = b.chunks[0].tokens else { return XCTFail("not FSQ") }
        XCTAssertEqual(ta[2], tb[1])
        XCTAssertEqual(ta[1], [])
        // And the decoder agrees.
        let (_, decoded) = try writeAndDecode(model, a.chunks, header: header(for: model, settings: settings, chunkBlocks: model.config.contextBlocks))
        XCTAssertEqual(decoded.map(\.reconstruction), a.reconstructions)
    }

    /// Frames that change: a repeat is written only where it meets the threshold, its MSE measured
    /// against the block's own frames; blocks that differ are coded.
    func testChangingFramesAreNotRepeatedWrongly() throws {
        let model = try ElasticTokModel.load(path: TokenizerFixtures.fsqModelPath)
        let blocks = try TokenizerFixtures.blocks(9, model: model)
        for scale in [0.5, 1.0, 4.0] as [Float] {
            let settings = EncoderSettings(threshold: try passableThreshold(model, blocks[0]) * scale)
            let (results, chunks, reconstructions) = try encodeAll(model, blocks, settings: settings)
            for r in results where r.isRepeat {
                XCTAssertNotEqual(r.index % model.config.contextBlocks, 0, "a chunk's first block is never a repeat")
                XCTAssertLessThanOrEqual(r.mse, settings.threshold)
                XCTAssertEqual(r.mse, meanSquaredError(reconstructions[r.index - 1], blocks[r.index]))
            }
            // A coded block is one whose predecessor's repeat would have missed the threshold.
            for r in results where !r.isRepeat && r.index % model.config.contextBlocks != 0 {
                XCTAssertGreaterThan(meanSquaredError(reconstructions[r.index - 1], blocks[r.index]), settings.threshold,
                                     "block \(r.index) was coded although repeating met the threshold")
            }
            let (_, decoded) = try writeAndDecode(model, chunks, header: header(for: model, settings: settings, chunkBlocks: model.config.contextBlocks))
            XCTAssertEqual(decoded.map(\.reconstruction), reconstructions)
        }
    }

    /// Several frames per block (the tiny VAE: 4 frames, patches 2 frames deep): a repeat block
    /// shows the previous block's *last* frame in each of its frames, exactly as decoded.
    func testARepeatBlockShowsThePreviousBlocksLastFrameInEveryFrame() throws {
        let model = try ElasticTokModel.load(path: TokenizerFixtures.vaeModelPath)
        let blocks = try TokenizerFixtures.blocks(3, model: model)
        // An MSE bound every reconstruction meets (pixels in [−1, 1]: any error is at most 4).
        let settings = EncoderSettings(threshold: 4.5)
        let (results, chunks, reconstructions) = try encodeAll(model, blocks, settings: settings)
        XCTAssertEqual(results.map(\.isRepeat), [false, true, false], "chunks of 2: the third block starts a chunk")
        let (_, decoded) = try writeAndDecode(model, chunks, header: header(for: model, settings: settings, chunkBlocks: model.config.contextBlocks))
        XCTAssertEqual(decoded.map(\.reconstruction), reconstructions)
        let last = try XCTUnwrap(decoded[0].frames.last)
        XCTAssertEqual(decoded[1].frames.count, model.config.framesPerBlock)
        for frame in decoded[1].frames { XCTAssertEqual(frame, last) }
        XCTAssertNotEqual(decoded[0].frames.first, last, "the fixture's frames move, so the last frame is a real choice")
    }

    /// Rate control on a static shot (`RateAllocator.bestRepeats`): the chunk keeps exactly the
    /// counts the allocator gives its measured curves and repeat curves (repeats included: this
    /// still makes some), keeps the cap to the token, each repeat's error is the previous
    /// reconstruction's against its own frames, and the decoder reproduces every block; with
    /// repeats turned off nothing is measured for them and every block is coded.
    func testRateControlRepeatsAStaticShotAndDecodesBitForBit() throws {
        let model = try ElasticTokModel.load(path: TokenizerFixtures.fsqModelPath)
        let c = model.config
        let blocks = try stills(Array(repeating: 0, count: c.contextBlocks), model: model)
        let inputs = blocks.enumerated().map { (patches: $1, pts: Int64($0 * 10), frames: c.framesPerBlock) }
        let cap = c.maxToks
        for repeats in [true, false] {
            let settings = EncoderSettings(rateTarget: .tokensPerSecond(100), repeatBlocks: repeats)
            XCTAssertEqual(settings.writesRepeats, repeats)
            let encoder = try ConditionalEncoder(model: model, settings: settings)
            let measured = try encoder.measureChunk(inputs, provisional: encoder.provisionalCount(share: Double(cap) / Double(inputs.count)))
            XCTAssertEqual(measured.repeats.isEmpty, !repeats)
            let planned = RateAllocator.allocate(curves: measured.curves, repeats: measured.repeats, cap: cap,
                                                 objective: settings.rateObjective).counts
            XCTAssertEqual(planned.contains(0), repeats, "the fixture makes repeats pay: \(planned)")
            var reconstructions: [[Float]] = []
            let encoded = try encoder.encodeChunk(inputs, firstBlock: 0, plan: .cap(cap)) { k, recon in
                XCTAssertEqual(k, reconstructions.count)
                reconstructions.append(recon)
            }
            XCTAssertEqual(encoded.results.map(\.keptTokens).reduce(0, +), cap)
            XCTAssertEqual(encoded.results.map(\.keptTokens), planned)
            XCTAssertEqual(encoded.results.map(\.isRepeat), planned.map { $0 == 0 })
            for r in encoded.results where r.isRepeat {
                XCTAssertEqual(r.keptTokens, 0)
                XCTAssertEqual(r.mse, meanSquaredError(reconstructions[r.index - 1], blocks[r.index]))
                XCTAssertNotNil(r.predictedMSE)
            }
            let (bytes, decoded) = try writeAndDecode(model, [encoded.chunk], header: header(for: model, settings: settings, chunkBlocks: c.contextBlocks))
            XCTAssertEqual(Array(bytes[8..<12]), repeats ? [1, 0, 2, 0] : [1, 0, 1, 0])
            XCTAssertEqual(decoded.map(\.reconstruction), reconstructions)
            for (r, d) in zip(encoded.results, decoded) { XCTAssertEqual(meanSquaredError(d.reconstruction, blocks[r.index]), r.mse) }
        }
    }

    /// The keyframe lookahead's rule (`RepeatLookahead`) on worked figures: the counts it tries,
    /// and which it keeps: the largest saving (repeats gained at `n` tokens each, less the extra
    /// tokens), only among candidates that meet the threshold, none without a saving.
    func testTheKeyframeLookaheadKeepsTheCountThatSavesMost() {
        XCTAssertEqual(RepeatLookahead.counts(n: 40, max: 256), [60, 80, 120, 256])
        XCTAssertEqual(RepeatLookahead.counts(n: 100, max: 256), [150, 200, 256])
        XCTAssertEqual(RepeatLookahead.counts(n: 200, max: 256), [256])
        XCTAssertEqual(RepeatLookahead.counts(n: 256, max: 256), [])
        let t: Float = 0.01
        // 60 tokens buy 3 repeats (3 × 40 − 20 = 100 saved); 80 the same for more tokens.
        XCTAssertEqual(RepeatLookahead.pick(n: 40, base: 0, candidates: [(60, 0.009, 3), (80, 0.008, 3), (120, 0.007, 3)], threshold: t), 0)
        // 80 buys one repeat more than 60: 3 × 40 − 40 = 80 against 2 × 40 − 20 = 60.
        XCTAssertEqual(RepeatLookahead.pick(n: 40, base: 0, candidates: [(60, 0.009, 2), (80, 0.008, 3)], threshold: t), 1)
        // A candidate over the threshold is never kept, whatever it saves.
        XCTAssertNil(RepeatLookahead.pick(n: 40, base: 0, candidates: [(60, 0.02, 3)], threshold: t))
        // Repeats that cost more tokens than they save, or none gained: keep n.
        XCTAssertNil(RepeatLookahead.pick(n: 40, base: 1, candidates: [(256, 0.001, 3)], threshold: t))
        XCTAssertNil(RepeatLookahead.pick(n: 40, base: 2, candidates: [(60, 0.009, 2)], threshold: t))
    }

    /// With the lookahead on nearly still frames (a still with small noise per frame), every block
    /// still meets the threshold the search met, each repeat is the previous reconstruction's
    /// error, and the decoder reproduces every block exactly.
    func testTheKeyframeLookaheadKeepsTheThresholdAndDecodesBitForBit() throws {
        let model = try ElasticTokModel.load(path: TokenizerFixtures.fsqModelPath)
        let still = try stills([0], model: model)[0]
        var rng = SplitMix64(state: 3)
        let blocks = (0..<7).map { _ in still.map { min(1, max(-1, $0 + Float.random(in: -0.05...0.05, using: &rng))) } }
        for scale in [1.0, 1.1, 1.3] as [Float] {
            let settings = EncoderSettings(threshold: try passableThreshold(model, blocks[0]) / 1.5 * scale)
            let (results, chunks, reconstructions) = try encodeAll(model, blocks, settings: settings)
            for r in results {
                if r.isRepeat { XCTAssertEqual(r.mse, meanSquaredError(reconstructions[r.index - 1], blocks[r.index])) }
                XCTAssertEqual(r.meetsThreshold, r.mse <= settings.threshold)
                XCTAssertTrue(r.meetsThreshold || r.keptTokens == model.config.maxToks, "block \(r.index): \(r.mse)")
            }
            let (_, decoded) = try writeAndDecode(model, chunks, header: header(for: model, settings: settings, chunkBlocks: model.config.contextBlocks))
            XCTAssertEqual(decoded.map(\.reconstruction), reconstructions)
        }
    }

    /// A range inside a chunk of repeats decodes back from the nearest earlier chunk with a coded
    /// block; when that chunk itself starts with repeats of a chunk the run does not read, those
    /// are before the range and not needed: the range decodes (it used to fail as damage on a
    /// healthy file) to the frames the whole decode gives. A range that shows them decodes too
    /// (the lead-in then reaches back further), and a whole decode is unchanged.
    func testARangeDecodesWhenItsLeadInChunkStartsWithRepeatsItDoesNotNeed() throws {
        let loaded = try ModelCatalog.load(path: TokenizerFixtures.fsqModelPath)
        let model = loaded.model, n = model.config.contextBlocks, c = model.config
        // Chunk 0: a coded block, then repeats; chunk 1: leading repeats, then a coded block;
        // chunk 2: repeats only (kept counts written as a stream may hold them, §5).
        let kept = [[c.minToks] + Array(repeating: 0, count: n - 1),
                    Array(repeating: 0, count: n - 1) + [c.maxToks],
                    Array(repeating: 0, count: n)]
        var rng = SplitMix64(state: 7)
        let levels = c.codebookSize
        let chunks = try kept.enumerated().map { k, counts in
            try Chunk(firstBlock: k * n,
                      blocks: counts.enumerated().map { i, m in BlockRecord(kept: m, frames: 1, pts: Int64(k * n + i), mse: 0) },
                      tokens: ChunkTokens(blocks: counts.map { m in .fsq((0..<m).map { _ in Int32.random(in: 0..<Int32(levels), using: &rng) }) },
                                          bottleneck: .fsq))
        }
        let blocks = kept.joined()
        let settings = EncoderSettings()
        let sink = MemorySink()
        let header = EtokHeader(model: loaded.headerModel,
                                encoding: .init(threshold: Double(settings.threshold), search: .fast, chunkBlocks: n,
                                                tokenCoding: .preferred(for: loaded.headerModel), repeatBlocks: true),
                                source: .init(timeBase: .init(1, 10)))
        let writer = try EtokWriter(sink: sink, header: header)
        for chunk in chunks { try writer.append(chunk) }
        try writer.finish()
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("etok-leadin-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("s.etok").path
        try Data(sink.bytes).write(to: URL(fileURLWithPath: file))
        func decode(_ selection: FrameSelection) throws -> Data {
            let out = folder.appendingPathComponent("\(UUID().uuidString).rgb").path
            _ = try DecodeRun(job: DecodeJob(input: file, output: out, selection: selection, workers: 1), model: loaded).run()
            return try Data(contentsOf: URL(fileURLWithPath: out))
        }
        let all = try decode(.all)
        let frameBytes = all.count / blocks.count
        for (lower, upper) in [(2 * n + 1, 2 * n + 2), (2 * n, 3 * n), (n + 1, 2 * n + 1)] {
            XCTAssertEqual(try decode(.frames(lower: lower, upper: upper)), all[(lower * frameBytes)..<(upper * frameBytes)],
                           "frames \(lower):\(upper)")
        }
    }

    /// Under `--max-tokens-per-chunk` the threshold search still writes repeats: a chunk under the
    /// cap is exactly as without it; one over it is encoded again within it (repeats where they pay).
    func testACapPerChunkKeepsRepeats() throws {
        let model = try ElasticTokModel.load(path: TokenizerFixtures.fsqModelPath)
        let c = model.config
        let blocks = try stills(Array(repeating: 0, count: c.contextBlocks), model: model)
        let inputs = blocks.enumerated().map { (patches: $1, pts: Int64($0 * 10), frames: c.framesPerBlock) }
        let threshold = try passableThreshold(model, blocks[0])
        let free = try ConditionalEncoder(model: model, settings: EncoderSettings(threshold: threshold)).encodeChunk(inputs, firstBlock: 0)
        XCTAssertTrue(free.results.dropFirst().allSatisfy(\.isRepeat))
        let loose = EncoderSettings(threshold: threshold, maxTokensPerChunk: c.contextBlocks * c.maxToks)
        XCTAssertTrue(loose.writesRepeats && loose.searchRepeats && loose.rateRepeats)
        XCTAssertEqual(try ConditionalEncoder(model: model, settings: loose).encodeChunk(inputs, firstBlock: 0).chunk, free.chunk)
        // A threshold no count meets: the search keeps every token and no frame repeats; the cap
        // then binds and the chunk is encoded again within it.
        let cap = c.contextBlocks * c.minToks + 1
        let tight = try ConditionalEncoder(model: model, settings: EncoderSettings(threshold: 1e-9, maxTokensPerChunk: cap))
            .encodeChunk(inputs, firstBlock: 0)
        XCTAssertEqual(tight.results.map(\.keptTokens).reduce(0, +), cap)
    }

    /// Rate control's counts are kept exactly, under settings whose threshold search writes
    /// repeats and keyframes (a cap alone): with a threshold every repeat meets, a planned count is
    /// neither turned into a repeat nor raised (a raise would break the cap).
    func testPlannedCountsAreKeptWhereTheThresholdSearchWouldRepeat() throws {
        let model = try ElasticTokModel.load(path: TokenizerFixtures.fsqModelPath)
        let blocks = try stills([0, 0, 0], model: model).enumerated().map { (patches: $1, pts: Int64($0), frames: 1) }
        let settings = EncoderSettings(threshold: 4.5, maxTokensPerChunk: 30)
        XCTAssertTrue(settings.searchRepeats)
        let encoder = try ConditionalEncoder(model: model, settings: settings)
        XCTAssertEqual(try encoder.encodeChunk(blocks, firstBlock: 0, plan: .counts([4, 6, 8])).results.map(\.keptTokens), [4, 6, 8])
        XCTAssertEqual(try encoder.encodeChunk(blocks, firstBlock: 0).results.map(\.isRepeat), [false, true, true],
                       "the threshold search itself repeats them")
    }

    /// Repeats are off with a fixed budget or when asked: those streams are the 1.1 streams of before.
    func testNoRepeatsWithFixedBudgetsRateControlOrWhenTurnedOff() throws {
        let model = try ElasticTokModel.load(path: TokenizerFixtures.fsqModelPath)
        let blocks = try stills([0, 0, 0], model: model)
        let threshold = try passableThreshold(model, blocks[0])
        for settings in [EncoderSettings(threshold: threshold, repeatBlocks: false), EncoderSettings(fixedTokens: 5),
                         EncoderSettings(threshold: threshold, maxTokensPerChunk: 40, repeatBlocks: false),
                         EncoderSettings(rateTarget: .budget(40), repeatBlocks: false)] {
            XCTAssertFalse(settings.writesRepeats)
            let (results, chunks, _) = try encodeAll(model, blocks, settings: settings)
            XCTAssertFalse(results.contains { $0.isRepeat || $0.keptTokens == 0 })
            let (bytes, _) = try writeAndDecode(model, chunks, header: header(for: model, settings: settings, chunkBlocks: model.config.contextBlocks))
            XCTAssertEqual(Array(bytes[8..<12]), [1, 0, 1, 0])
        }
        XCTAssertTrue(EncoderSettings(threshold: threshold).writesRepeats)
    }
}
