import XCTest
@testable import EtokFormat

final class HeaderTests: XCTestCase {
    /// The JSON example of docs/etok-format.md §4, verbatim apart from the elided hash.
    static let specExample = """
    {
      "etok_version": "0.1.0",
      "model": {
        "name": "etok-default-128",
        "sha256": "9f2c",
        "image_size": [128, 128],
        "patch_size": [1, 8, 8],
        "frames_per_block": 1,
        "min_toks": 16,
        "max_toks": 256,
        "context_blocks": 4,
        "bottleneck": "fsq",
        "fsq_quant_levels": [8, 8, 8, 5, 5, 5],
        "vae_bottleneck_dim": null
      },
      "encoding": {
        "threshold": 0.003,
        "search": "fast",
        "fixed_tokens": null,
        "fit": "crop",
        "fps": null,
        "chunk_blocks": 4,
        "token_coding": "rc-fsq-2"
      },
      "source": {
        "name": "bikes.mp4",
        "width": 640, "height": 272,
        "time_base": [1, 12800],
        "fps": [25, 1],
        "duration": 10.0
      }
    }
    """

    private func decode(_ json: String) throws(FormatError) -> EtokHeader {
        try EtokHeader.decode(Array(json.utf8), file: "h.etok")
    }

    private func assertBadKey(_ json: String, _ key: String, file: StaticString = #filePath, line: UInt = #line) {
        do {
            _ = try decode(json)
            XCTFail("expected bad header at \(key)", file: file, line: line)
        } catch {
            guard case .badHeader(let f, let k, _) = error else { return XCTFail("\(error)", file: file, line: line) }
            XCTAssertEqual(f, "h.etok", file: file, line: line)
            // The path may go deeper than `key` (an array element: `source.time_base[2]`).
            XCTAssertTrue(k == key || k.hasPrefix(key + "[") || k.hasPrefix(key + "."), "\(error)", file: file, line: line)
            XCTAssertTrue(error.description.contains(key), file: file, line: line)
        }
    }

    func testSpecExampleParses() throws {
        let h = try decode(Self.specExample)
        XCTAssertEqual(h.model.maxToks, 256)
        XCTAssertEqual(h.model.fsqQuantLevels, [8, 8, 8, 5, 5, 5])
        XCTAssertEqual(h.encoding.search, .fast)
        XCTAssertEqual(h.encoding.tokenCoding, .rcFSQ2)
        XCTAssertEqual(h.source.timeBase, .init(1, 12800))
        XCTAssertEqual(h.source.fps, .init(25, 1))
        XCTAssertNil(h.encoding.fixedTokens)
        XCTAssertEqual(h.fsqCodebookSize, 64000)
    }

    func testJSONRoundTripsAndIsDeterministic() throws {
        let h = Fixture.fsqHeader()
        let a = h.jsonBytes()
        XCTAssertEqual(a, Fixture.fsqHeader().jsonBytes())
        XCTAssertEqual(try EtokHeader.decode(a, file: "x"), h)
        let v = Fixture.vaeHeader()
        XCTAssertEqual(try EtokHeader.decode(v.jsonBytes(), file: "x"), v)
        // Optional keys are written as null (as in §4's example).
        XCTAssertTrue(String(decoding: v.jsonBytes(), as: UTF8.self).contains("\"fsq_quant_levels\":null"))
    }

    func testUnknownKeysAreIgnored() throws {
        let json = Self.specExample.replacingOccurrences(of: "\"etok_version\"", with: "\"future\": {\"x\": [1]}, \"etok_version\"")
            .replacingOccurrences(of: "\"min_toks\"", with: "\"new_model_fact\": 3, \"min_toks\"")
        XCTAssertEqual(try decode(json), try decode(Self.specExample))
    }

    func testOptionalKeysMayBeAbsent() throws {
        let json = Self.specExample.replacingOccurrences(of: "\"fixed_tokens\": null,", with: "")
            .replacingOccurrences(of: "\"context_blocks\": 4,", with: "")
            .replacingOccurrences(of: "\"fps\": [25, 1],", with: "")
        let h = try decode(json)
        XCTAssertNil(h.model.contextBlocks)
        XCTAssertNil(h.source.fps)
    }

    func testMissingRequiredKeysAreNamed() {
        assertBadKey(Self.specExample.replacingOccurrences(of: "\"max_toks\": 256,", with: ""), "model.max_toks")
        assertBadKey(Self.specExample.replacingOccurrences(of: "\"chunk_blocks\": 4,", with: ""), "encoding.chunk_blocks")
        assertBadKey(Self.specExample.replacingOccurrences(of: "\"time_base\": [1, 12800],", with: ""), "source.time_base")
        assertBadKey(Self.specExample.replacingOccurrences(of: "\"fsq_quant_levels\": [8, 8, 8, 5, 5, 5],", with: ""),
                     "model.fsq_quant_levels")
    }

    func testWrongTypesAndValuesAreNamed() {
        assertBadKey(Self.specExample.replacingOccurrences(of: "\"max_toks\": 256", with: "\"max_toks\": \"256\""), "model.max_toks")
        assertBadKey(Self.specExample.replacingOccurrences(of: "\"max_toks\": 256", with: "\"max_toks\": null"), "model.max_toks")
        assertBadKey(Self.specExample.replacingOccurrences(of: "\"max_toks\": 256", with: "\"max_toks\": 70000"), "model.max_toks")
        assertBadKey(Self.specExample.replacingOccurrences(of: "\"min_toks\": 16", with: "\"min_toks\": 300"), "model.min_toks")
        assertBadKey(Self.specExample.replacingOccurrences(of: "\"bottleneck\": \"fsq\"", with: "\"bottleneck\": \"lfq\""), "model.bottleneck")
        assertBadKey(Self.specExample.replacingOccurrences(of: "[8, 8, 8, 5, 5, 5]", with: "[8, 1]"), "model.fsq_quant_levels")
        assertBadKey(Self.specExample.replacingOccurrences(of: "[8, 8, 8, 5, 5, 5]", with: "[8, 17]"), "model.fsq_quant_levels")
        assertBadKey(Self.specExample.replacingOccurrences(of: "[1, 12800]", with: "[1, 0]"), "source.time_base")
        assertBadKey(Self.specExample.replacingOccurrences(of: "[1, 12800]", with: "[1, 2, 3]"), "source.time_base")
        assertBadKey(Self.specExample.replacingOccurrences(of: "\"rc-fsq-2\"", with: "\"f16-1\""), "encoding.token_coding")
        assertBadKey(Self.specExample.replacingOccurrences(of: "\"chunk_blocks\": 4", with: "\"chunk_blocks\": 0"), "encoding.chunk_blocks")
    }

    func testNotJSONIsABadHeader() {
        assertBadKey("{\"model\": ", "(root)")
        assertBadKey("[1, 2]", "(root)")
    }
}
