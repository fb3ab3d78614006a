import EtokFormat
import EtokIO
import Foundation
import XCTest
@testable import EtokTokenizer

/// The pieces of `etok import` that need no model run: reading JSON lines and .npy arrays, the
/// checks, chunking by block numbers, times; and how readers show blocks without a measured MSE.
final class TokenImportTests: XCTestCase {
    /// The tiny FSQ model's facts (16 tokens per block, at least 2, codebook 64000).
    let fsq = EtokHeader.Model(name: "t", sha256: "00", imageSize: [16, 16], patchSize: [1, 4, 4], framesPerBlock: 1,
                               minToks: 2, maxToks: 16, contextBlocks: 3, bottleneck: .fsq, fsqQuantLevels: [8, 8, 8, 5, 5, 5])
    let vae = EtokHeader.Model(name: "v", sha256: "00", imageSize: [16, 8], patchSize: [2, 4, 4], framesPerBlock: 4,
                               minToks: 1, maxToks: 16, contextBlocks: 2, bottleneck: .vae, vaeBottleneckDim: 4)

    func lines(_ text: String, model: EtokHeader.Model? = nil) throws -> ImportedSequence {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("etok-lines-\(UUID().uuidString)").path
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        defer { unlink(path) }
        let fd = open(path, O_RDONLY)
        defer { close(fd) }
        return try ImportedSequence.jsonLines(LineReader(fd: fd, file: "t.jsonl"), rules: ImportRules(model: model ?? fsq))
    }

    func refusal(_ text: String, model: EtokHeader.Model? = nil) -> String {
        do {
            let s = try lines(text, model: model)
            try TokenImport.checkOrder(s, framesPerBlock: (model ?? fsq).framesPerBlock)
            _ = try TokenImport.timing(s, fps: nil, framesPerBlock: (model ?? fsq).framesPerBlock)
            return "accepted"
        } catch let error as TokenImportError {
            return error.description
        } catch {
            return "other: \(error)"
        }
    }

    func testJSONLinesAsExportWritesThemAndWithOnlyTokens() throws {
        let s = try lines("""
            {"block":0,"time":0.0,"kept":3,"tokens":[1,2,63999]}
            {"block":1,"time":0.04,"kept":2,"tokens":[5,6]}

            {"tokens":[7,8],"caption":"ignored"}
            """)
        XCTAssertEqual(s.blocks.count, 3)
        XCTAssertEqual(s.blocks[0].tokens, .fsq([1, 2, 63999]))
        XCTAssertEqual(s.blocks[1].time, 0.04)
        XCTAssertEqual(s.blocks[2].kept, 2)
        XCTAssertEqual(s.blocks[2].location, "line 4")   // the blank line counts
        // VAE: flat, or one list per token; kept × dim values.
        let v = try lines("{\"tokens\":[[1,2,3,4],[0.5,-1,2,3]]}\n{\"kept\":1,\"tokens\":[1,2,3,4]}\n", model: vae)
        XCTAssertEqual(v.blocks.map(\.kept), [2, 1])
        XCTAssertEqual(v.blocks[0].tokens, .vae([1, 2, 3, 4, 0.5, -1, 2, 3]))
    }

    func testEveryBadLineIsRefusedNamingTheLine() {
        let cases: [(String, String)] = [
            ("{\"tokens\":[1,2]}\n{\"tokens\":[1,2]\n", "t.jsonl: line 2: malformed JSON"),
            ("[1,2]\n", "t.jsonl: line 1: not a JSON object"),
            ("{\"toks\":[1,2]}\n", "t.jsonl: line 1: no \"tokens\" list"),
            ("{\"tokens\":\"1 2\"}\n", "t.jsonl: line 1: \"tokens\" is not a list of numbers"),
            ("{\"tokens\":[1,2,3],\"kept\":2}\n", "t.jsonl: line 1: 3 tokens, but kept is 2"),
            ("{\"tokens\":[1],\"kept\":1}\n", "t.jsonl: line 1: kept 1 outside 2…16 (the model's min_toks…max_toks)"),
            ("{\"tokens\":[1]}\n", "t.jsonl: line 1: 1 token outside 2…16"),
            ("{\"tokens\":[1,64000]}\n", "t.jsonl: line 1: token 1: FSQ index 64000 outside 0…63999"),
            ("{\"tokens\":[-1,2]}\n", "t.jsonl: line 1: token 0: FSQ index -1 outside"),
            ("{\"tokens\":[1.5,2]}\n", "t.jsonl: line 1: token 0: 1.5 is not an FSQ index"),
            ("{\"tokens\":[1,2],\"kept\":true}\n", "t.jsonl: line 1: \"kept\" is not a whole number"),
            ("{\"tokens\":[1,2],\"time\":\"0\"}\n", "t.jsonl: line 1: \"time\" is not a number of seconds"),
            ("{\"tokens\":[1,2],\"frames\":2}\n", "t.jsonl: line 1: frames 2 outside 1…1"),
            ("{\"tokens\":[1,2],\"block\":-1}\n", "t.jsonl: line 1: block number -1 outside"),
            ("{\"tokens\":[1,2],\"time\":1}\n{\"tokens\":[1,2],\"time\":1}\n", "t.jsonl: line 2: time 1.0 s does not come after line 1's 1.0 s"),
            ("{\"tokens\":[1,2],\"time\":1}\n{\"tokens\":[1,2]}\n", "t.jsonl: line 2: no time, but line 1 has one"),
            ("{\"tokens\":[1,2],\"block\":4}\n{\"tokens\":[1,2],\"block\":4}\n", "t.jsonl: line 2: block number 4 is not above the one before (4, line 1)"),
            ("{\"tokens\":[1,2]}\n{\"tokens\":[1,2],\"block\":1}\n", "t.jsonl: line 2: has a \"block\" number, but line 1 has none"),
            ("", "t.jsonl: no blocks (the input is empty)"),
            ("\n  \n", "t.jsonl: no blocks (the input is empty)"),
            ("{\"tokens\":[1,2],\"chunk\":0}\n{\"tokens\":[1,2]}\n", "t.jsonl: line 2: has no \"chunk\", but line 1 has one"),
        ]
        for (input, expected) in cases {
            let message = refusal(input)
            XCTAssertTrue(message.hasPrefix(expected), "\(input.debugDescription): \(message)")
            XCTAssertFalse(message.contains("\n"), message)
        }
        XCTAssertTrue(refusal("{\"tokens\":[1,2,3]}\n", model: vae).hasPrefix("t.jsonl: line 1: 3 values are not whole tokens of 4"))
        XCTAssertTrue(refusal("{\"tokens\":[1,2,3,1e6]}\n", model: vae).contains("does not fit binary16"))
        XCTAssertTrue(refusal("{\"tokens\":[1,2,3,4],\"frames\":2}\n{\"tokens\":[1,2,3,4]}\n", model: vae)
            .hasPrefix("t.jsonl: line 1: frames 2: only the last block may have fewer than frames_per_block (4)"))
        XCTAssertEqual(refusal("{\"tokens\":[1,2,3,4]}\n{\"tokens\":[1,2,3,4],\"frames\":2}\n", model: vae), "accepted")
    }

    // MARK: npy

    /// .npy v1 bytes of a 1-D or 2-D array with the given descr and raw little-endian items.
    func npy(_ descr: String, shape: [Int], items: [[UInt8]]) -> Data {
        let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shapeText), }"
        header += String(repeating: " ", count: (64 - (10 + header.utf8.count + 1) % 64) % 64) + "\n"
        var data = Data([0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)])
        data.append(contentsOf: Array(header.utf8))
        for item in items { data.append(contentsOf: item) }
        return data
    }

    func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }

    func testNPYReadsTheDtypesNumPyUsersSave() throws {
        let i8 = try NPYArray.parse([UInt8](npy("<i8", shape: [3], items: [le(Int64(5)), le(Int64(-2)), le(Int64(63999))])), file: "a")
        XCTAssertEqual(try i8.importIntegers(file: "a", oneDimensional: true, what: "x"), [5, -2, 63999])
        let i2 = try NPYArray.parse([UInt8](npy("<i2", shape: [2], items: [le(Int16(-3)), le(Int16(7))])), file: "a")
        XCTAssertEqual(try i2.importIntegers(file: "a", oneDimensional: true, what: "x"), [-3, 7])
        let u1 = try NPYArray.parse([UInt8](npy("|u1", shape: [2], items: [[200], [3]])), file: "a")
        XCTAssertEqual(try u1.importIntegers(file: "a", oneDimensional: true, what: "x"), [200, 3])
        let f8 = try NPYArray.parse([UInt8](npy("<f8", shape: [2], items: [le(0.04.bitPattern), le((-1.5).bitPattern)])), file: "a")
        XCTAssertEqual(try f8.importNumbers(file: "a", oneDimensional: true), [0.04, -1.5])
        let f2 = try NPYArray.parse([UInt8](npy("<f2", shape: [1, 2], items: [le(UInt16(0x3C00)), le(UInt16(0xC100))])), file: "a")
        XCTAssertEqual(try f2.importNumbers(file: "a", oneDimensional: false), [1, -2.5])
        XCTAssertEqual(f2.shape, [1, 2])
        // Floats where integers belong, big-endian data, two dimensions where one belongs, short data.
        XCTAssertThrowsError(try f8.importIntegers(file: "a", oneDimensional: true, what: "FSQ indices")) {
            XCTAssertTrue("\($0)".contains("holds floats; FSQ indices are integers"), "\($0)")
        }
        XCTAssertThrowsError(try NPYArray.parse([UInt8](npy(">i4", shape: [1], items: [[0, 0, 0, 1]])), file: "a")) {
            XCTAssertTrue("\($0)".contains("dtype >i4"), "\($0)")
        }
        XCTAssertThrowsError(try f2.importIntegers(file: "a", oneDimensional: true, what: "x"))
        XCTAssertThrowsError(try NPYArray.parse([UInt8](npy("<i4", shape: [3], items: [le(Int32(1))])), file: "a"))
    }

    func testNPYFolderWithOptionalArraysAndMismatches() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("etok-import-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        func write(_ name: String, _ data: Data) throws { try data.write(to: dir.appendingPathComponent(name)) }
        try write("lengths.npy", npy("<i4", shape: [2], items: [le(Int32(2)), le(Int32(3))]))
        try write("tokens.npy", npy("<i8", shape: [5], items: (1...5).map { le(Int64($0)) }))
        let s = try ImportedSequence.read(path: dir.path, model: fsq)
        XCTAssertEqual(s.blocks.map(\.tokens), [.fsq([1, 2]), .fsq([3, 4, 5])])
        XCTAssertEqual(s.blocks.map(\.time), [nil, nil])
        try write("pts.npy", npy("<f8", shape: [2], items: [le(0.0.bitPattern), le(0.25.bitPattern)]))
        try write("blocks.npy", npy("<i8", shape: [2], items: [le(Int64(4)), le(Int64(5))]))
        let timed = try ImportedSequence.read(path: dir.path, model: fsq)
        XCTAssertEqual(timed.blocks.map(\.time), [0, 0.25])
        XCTAssertEqual(timed.blocks.map(\.block), [4, 5])
        func refused(_ expected: String) {
            XCTAssertThrowsError(try ImportedSequence.read(path: dir.path, model: fsq)) {
                XCTAssertTrue("\($0)".hasSuffix(expected), "\($0)")
            }
        }
        try write("tokens.npy", npy("<i8", shape: [4], items: (1...4).map { le(Int64($0)) }))
        refused("tokens.npy: holds 4 tokens, but lengths.npy adds up to 5")
        try write("tokens.npy", npy("<i8", shape: [5], items: [1, 2, 3, 99_999, 5].map { le(Int64($0)) }))
        refused("tokens.npy: entry 1 (block 5): token 1: FSQ index 99999 outside 0…63999 (the model's codebook, the product of fsq_quant_levels)")
        try write("lengths.npy", npy("<i4", shape: [2], items: [le(Int32(2)), le(Int32(17))]))
        refused("lengths.npy: entry 1 (block 5): kept 17 outside 2…16 (the model's min_toks…max_toks)")
        try write("pts.npy", npy("<f8", shape: [1], items: [le(0.0.bitPattern)]))
        refused("pts.npy: has 1 entries, lengths.npy 2: one per block in both")
        try FileManager.default.removeItem(at: dir.appendingPathComponent("lengths.npy"))
        refused("no lengths.npy: an npy token folder holds lengths.npy and tokens.npy (pts.npy and blocks.npy optional), as etok export --format npy writes")
    }

    // MARK: Chunks and times

    func block(_ n: Int?, time: Double? = nil) -> ImportedBlock {
        ImportedBlock(location: "line \(n ?? 0)", block: n, time: time, chunk: nil, kept: 2, frames: nil, tokens: .fsq([0, 0]))
    }

    func testChunksFollowTheBlockNumbersOfTheStreamTheTokensCameFrom() throws {
        // Without numbers: every K blocks.
        XCTAssertEqual(try TokenImport.chunkRuns((0..<7).map { _ in block(nil) }, chunkBlocks: 3, file: "t"), [[0, 1, 2], [3, 4, 5], [6]])
        // Numbered from 0 without gaps: the same.
        XCTAssertEqual(try TokenImport.chunkRuns((0..<7).map { block($0) }, chunkBlocks: 3, file: "t"), [[0, 1, 2], [3, 4, 5], [6]])
        // A damaged chunk (blocks 3-5) left out by --skip-damaged, and a start in mid-chunk: the
        // context resets where the original stream's did.
        let numbers = [1, 2, 6, 7, 8, 9, 11]
        XCTAssertEqual(try TokenImport.chunkRuns(numbers.map { block($0) }, chunkBlocks: 3, file: "t"), [[0, 1], [2, 3, 4], [5], [6]])
        // Named chunks (as exported): a new chunk wherever the name changes, whatever the numbers.
        var named = (0..<7).map { block($0) }
        for (i, c) in [5, 5, 9, 9, 9, 2, 5].enumerated() { named[i].chunk = Int64(c) }
        XCTAssertEqual(try TokenImport.chunkRuns(named, chunkBlocks: 3, file: "t"), [[0, 1], [2, 3, 4], [5], [6]])
        named[1].chunk = 9
        XCTAssertThrowsError(try TokenImport.chunkRuns(named, chunkBlocks: 3, file: "t"))  // 4 blocks named 9
    }

    func sequence(_ blocks: [ImportedBlock]) -> ImportedSequence {
        ImportedSequence(file: "t", blocks: blocks, files: ImportFiles(kept: "t", tokens: "t", time: "t", block: "t", frames: "t", chunk: "t"))
    }

    /// A block whose tokens are of the other bottleneck is refused by name, not emptied.
    func testTokensOfTheOtherBottleneckAreRefusedNotDropped() throws {
        let path = TokenizerFixtures.fsqModelPath
        let loaded = try ModelCatalog.load(path: path)
        let importer = try TokenImport(job: TokenImportJob(input: "t", output: "-"), model: loaded)
        var blocks = (0..<3).map { block($0) }
        blocks[1].tokens = .vae([0.5, 0.25])
        XCTAssertThrowsError(try importer.stream(for: sequence(blocks))) { error in
            XCTAssertEqual(error as? TokenImportError,
                           .badBlock(file: "t", location: "line 1", message: "vae tokens, but the model's bottleneck is fsq"))
        }
    }

    func testTimesOnAFrameClockGetThatClock() throws {
        // As exported from a 25 fps stream: time base 1/25, pts the frame numbers, 25 fps.
        let even = try TokenImport.timing(sequence((0..<5).map { block($0, time: Double($0) * 0.04) }), fps: nil, framesPerBlock: 1)
        XCTAssertEqual(even.timeBase, EtokHeader.Rational(1, 25))
        XCTAssertEqual(even.pts, [0, 1, 2, 3, 4])
        XCTAssertEqual(even.fps, EtokHeader.Rational(25, 1))
        XCTAssertEqual(even.duration ?? 0, 0.2, accuracy: 1e-9)
        // NTSC with a gap (blocks 2-3 missing): the gap does not count as a step.
        let ntsc = [0, 1, 4, 5].map { block($0, time: Double($0) * 1001 / 30000) }
        let n = try TokenImport.timing(sequence(ntsc), fps: nil, framesPerBlock: 1)
        XCTAssertEqual(n.timeBase, EtokHeader.Rational(1001, 30000))
        XCTAssertEqual(n.pts, [0, 1, 4, 5])
        // Uneven times: microseconds, and the median step's rate for players (steps 0.1 and 0.25 s).
        let uneven = try TokenImport.timing(sequence([block(nil, time: 0), block(nil, time: 0.1), block(nil, time: 0.35)]),
                                            fps: nil, framesPerBlock: 1)
        XCTAssertEqual(uneven.timeBase, EtokHeader.Rational(1, 1_000_000))
        XCTAssertEqual(uneven.pts, [0, 100_000, 350_000])
        XCTAssertEqual(uneven.fps, EtokHeader.Rational(4, 1))
        XCTAssertEqual(try XCTUnwrap(uneven.duration), 0.6, accuracy: 1e-12)
        // No times: 4 fps; --fps overrides times; multi-frame blocks count frames.
        let none = try TokenImport.timing(sequence((0..<3).map { _ in block(nil) }), fps: nil, framesPerBlock: 1)
        XCTAssertEqual(none.timeBase, EtokHeader.Rational(1, 4))
        XCTAssertEqual(none.pts, [0, 1, 2])
        let forced = try TokenImport.timing(sequence((0..<3).map { block($0, time: Double($0)) }), fps: 10, framesPerBlock: 4)
        XCTAssertEqual(forced.timeBase, EtokHeader.Rational(1, 10))
        XCTAssertEqual(forced.pts, [0, 4, 8])
        XCTAssertTrue(forced.description.contains("ignored"), forced.description)
    }

    // MARK: Readers and blocks without a measured MSE

    /// A stream of the tiny FSQ model's shape whose blocks have these `mse` values.
    func report(mse: [Float], threshold: Double = 0.01) throws -> StreamReport {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("etok-mse-\(UUID().uuidString).etok").path
        defer { unlink(path) }
        let header = EtokHeader(model: fsq, encoding: EtokHeader.Encoding(threshold: threshold, search: TokenImport.search,
                                                                          chunkBlocks: 3, tokenCoding: .rcFSQ2),
                                source: EtokHeader.Source(timeBase: EtokHeader.Rational(1, 4)))
        let writer = try EtokWriter(sink: FileSink(fd: open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644), name: path, owning: true),
                                    header: header)
        for start in stride(from: 0, to: mse.count, by: 3) {
            let range = start..<min(start + 3, mse.count)
            try writer.append(Chunk(firstBlock: start,
                                    blocks: range.map { BlockRecord(kept: 2, frames: 1, pts: Int64($0), mse: mse[$0]) },
                                    tokens: .fsq(range.map { _ in [1, 2] })))
        }
        try writer.finish()
        return try StreamReport.read(path: path)
    }

    func testThePlotEndsOnAClockWhereATickStepNoLongerMovesTheTime() throws {
        // A block at 2^60 s: a tenth-of-a-second axis step is far below a Double's spacing there,
        // so summing steps never reached the end (the axis loop spun forever, growing memory).
        var far = try report(mse: [0.004])
        far.header.source.timeBase = EtokHeader.Rational(1, 1)
        far.blocks[0].record.pts = 1 << 60
        let svg = TokenPlot.svg(far)
        XCTAssertTrue(svg.hasSuffix("</svg>\n"))
        XCTAssertLessThanOrEqual(svg.components(separatedBy: "text-anchor=\"middle\">").count, 30)
    }

    func testUnmeasuredBlocksAreLeftOutOfTheMeansAndShowAsNull() throws {
        let mixed = try report(mse: [0.004, -1, 0.02, .nan, .infinity, -0.5])
        XCTAssertEqual(mixed.measuredBlocks, 2)
        XCTAssertEqual(mixed.meanPSNR ?? 0, (psnr(mse: Double(Float(0.004))) + psnr(mse: Double(Float(0.02)))) / 2, accuracy: 1e-9)
        XCTAssertEqual(mixed.shareMeetingThreshold, 0.5)
        XCTAssertEqual(mixed.blocks.map { mixed.meetsThreshold($0) }, [true, nil, false, nil, nil, nil])
        let json = mixed.jsonObject(includeBlocks: true)
        let data = try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys])
        let back = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        let perBlock = try XCTUnwrap(back["per_block"] as? [[String: Any]])
        XCTAssertEqual(perBlock.map { $0["psnr"] is NSNull }, [false, true, false, true, true, true])
        XCTAssertEqual(perBlock.map { $0["mse"] is NSNull }, [false, true, false, true, true, true])
        XCTAssertEqual(back["measured_blocks"] as? Int, 2)

        let imported = try report(mse: [-1, -1, -1, -1])
        XCTAssertNil(imported.meanPSNR)
        XCTAssertNil(imported.shareMeetingThreshold)
        let none = try XCTUnwrap(JSONSerialization.jsonObject(with: JSONSerialization.data(withJSONObject: imported.jsonObject(includeBlocks: true))) as? [String: Any])
        XCTAssertTrue(none["mean_psnr"] is NSNull)
        XCTAssertTrue(none["share_meeting_threshold"] is NSNull)
        XCTAssertEqual((none["encoding"] as? [String: Any])?["search"] as? String, "imported")
    }

    func testThePlotDrawsUnmeasuredBlocksGrey() throws {
        let r = try report(mse: [0.004, -1, 0.02, -1, -1])
        let svg = TokenPlot.svg(r)
        func count(_ cls: String) -> Int { svg.components(separatedBy: "<rect class=\"\(cls)\" x=").count - 1 }
        XCTAssertTrue(svg.contains(".unmeasured{fill:"), svg)
        XCTAssertEqual(count("unmeasured"), 4)   // the three bars and the legend's swatch
        XCTAssertFalse(svg.contains("99.00 dB"), "an unmeasured block must not show PSNR 99")
        XCTAssertTrue(svg.contains("PSNR not measured"))
        func greyPixels(_ png: [UInt8]) -> Int {
            stride(from: 0, to: png.count, by: 3).filter { png[$0] == 170 && png[$0 + 1] == 170 && png[$0 + 2] == 170 }.count
        }
        XCTAssertGreaterThan(greyPixels(TokenPlot.render(r, width: 100, height: 40)), 100)
        XCTAssertEqual(greyPixels(TokenPlot.render(try report(mse: [0.004, 0.02]), width: 100, height: 40)), 0)
    }
}
