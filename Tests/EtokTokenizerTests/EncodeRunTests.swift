import EtokFormat
import EtokTensor
import Foundation
import XCTest
@testable import EtokTokenizer

/// Whole encodes of a sample clip with the tiny test models.
final class EncodeRunTests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("etok-encoderun-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: folder)
        BLASThreads.configure(threads: ThreadPolicy.blasThreadsPerWorker)
    }

    func encode(model path: String, workers: Int, settings: EncoderSettings = EncoderSettings(),
                output name: String = "out.etok") throws -> (EncodeSummary, URL) {
        let output = folder.appendingPathComponent(name)
        let job = EncodeJob(input: TokenizerFixtures.sample("carphone_pristine.mp4"), output: output.path,
                            settings: settings, workers: workers)
        let run = try EncodeRun(job: job, model: try ModelCatalog.load(path: path))
        return (try run.run(), output)
    }

    /// A library caller that asks for many workers gets one BLAS thread per worker, not every
    /// core per worker: the run sets the thread count itself.
    func testTheRunSetsOneBLASThreadPerWorkerWhateverTheCallerHad() throws {
        BLASThreads.configure(threads: 2)
        guard BLASThreads.current == 2 else { throw XCTSkip("this OpenBLAS runs a single thread") }
        let (_, etok) = try encode(model: TokenizerFixtures.fsqModelPath, workers: 8)
        XCTAssertEqual(BLASThreads.current, ThreadPolicy.blasThreadsPerWorker, "encode")
        BLASThreads.configure(threads: 2)
        let job = DecodeJob(input: etok.path, output: folder.appendingPathComponent("out.y4m").path, workers: 8)
        let decoded = try DecodeRun(job: job, model: try ModelCatalog.load(path: TokenizerFixtures.fsqModelPath)).run()
        XCTAssertEqual(decoded.framesWritten, 120)
        XCTAssertEqual(BLASThreads.current, ThreadPolicy.blasThreadsPerWorker, "decode")
    }

    func testTheBytesDoNotDependOnTheWorkerCount() throws {
        let (one, a) = try encode(model: TokenizerFixtures.fsqModelPath, workers: 1, output: "a.etok")
        let (three, b) = try encode(model: TokenizerFixtures.fsqModelPath, workers: 3, output: "b.etok")
        XCTAssertEqual(try Data(contentsOf: a), try Data(contentsOf: b))
        XCTAssertEqual(one.blocks, 120)
        XCTAssertEqual(three.perBlock.map(\.kept), one.perBlock.map(\.kept))
        XCTAssertEqual(one.perBlock.map(\.block), Array(0..<120), "blocks numbered once, in order")
    }

    /// Issue 15: a 4-frame-per-block model's summary gives tokens per frame as a quarter of the
    /// tokens per block, and the largest budget per frame likewise.
    func testPerFrameFiguresArePerFrameForMultiFrameBlocks() throws {
        let (summary, _) = try encode(model: TokenizerFixtures.vaeModelPath, workers: 2)
        XCTAssertEqual(summary.framesPerBlock, 4)
        XCTAssertEqual(summary.frames, 120)
        XCTAssertEqual(summary.blocks, 30)
        XCTAssertEqual(summary.meanTokensPerFrame, Double(summary.tokens) / 120, accuracy: 1e-12)
        XCTAssertEqual(summary.meanTokensPerFrame, summary.meanTokens / 4, accuracy: 1e-12)
        XCTAssertEqual(summary.maxTokensPerFrame, Double(summary.maxTokensPerBlock) / 4)
        let json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(summary)) as? [String: Any]
        XCTAssertEqual(json?["frames_per_block"] as? Int, 4)
    }

    func testOneFramePerBlockFiguresAreTheSameEitherWay() throws {
        let (summary, _) = try encode(model: TokenizerFixtures.fsqModelPath, workers: 1)
        XCTAssertEqual(summary.framesPerBlock, 1)
        XCTAssertEqual(summary.meanTokensPerFrame, summary.meanTokens, accuracy: 1e-12)
        XCTAssertEqual(summary.maxTokensPerFrame, Double(summary.maxTokensPerBlock))
    }
}
