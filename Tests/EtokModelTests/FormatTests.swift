// Config parsing, .npy reading and writing, patchify, half floats, and the reference's RoPE and
// FSQ tables.
import EtokModel
import EtokTensor
import EtokIO
import XCTest

final class FormatTests: XCTestCase {
    func testOfficialOnlyConfigGetsDefaultsAndDerivedFields() throws {
        let json = """
        {"hidden_size": 256, "intermediate_size": 512, "num_encoder_layers": 4, "num_decoder_layers": 4,
         "num_attention_heads": 4, "patch_size": [1, 8, 8], "frames_per_block": 1, "min_toks": 16,
         "max_toks": 256, "max_sequence_length": 1024, "dropout": 0.1}
        """
        let c = try ModelConfig.parse(json: json, file: "cfg")
        XCTAssertEqual(c.fsqQuantLevels, [8, 8, 8, 5, 5, 5])
        XCTAssertEqual(c.theta, 10000)
        XCTAssertEqual(c.rmsNormEps, 1e-6)
        XCTAssertEqual(c.imageSize.height, 128)
        XCTAssertEqual(c.imageSize.width, 128)
        XCTAssertEqual(c.contextBlocks, 4)
        XCTAssertEqual(c.patchDim, 192)
        XCTAssertEqual(c.codeDim, 6)
        XCTAssertEqual(c.maskedIndex, 32036)
        var d = ModelConfig.etokDefault
        d.etokImageSize = nil
        XCTAssertEqual(c, d)
        XCTAssertEqual(try ModelConfig.parse(json: ModelConfig.etokDefault.jsonString(), file: "x"), ModelConfig.etokDefault)
    }

    func testConfigErrorsNameTheField() {
        func field(_ json: String) -> String? {
            do { _ = try ModelConfig.parse(json: json, file: "f"); return nil } catch let ModelError.badConfig(_, field, _) {
                return field
            } catch { return "untyped" }
        }
        let base = #""hidden_size": 32, "intermediate_size": 8, "num_encoder_layers": 1, "num_decoder_layers": 1, "patch_size": [1, 4, 4], "frames_per_block": 1, "min_toks": 1, "max_toks": 16, "max_sequence_length": 32"#
        XCTAssertNil(field("{\(base), \"num_attention_heads\": 2}"))
        XCTAssertEqual(field("{\(base)}"), "num_attention_heads")
        XCTAssertEqual(field("{\(base), \"num_attention_heads\": 3}"), "num_attention_heads")
        XCTAssertEqual(field("{\(base), \"num_attention_heads\": 2, \"etok_typo\": 1}"), "etok_typo")
        XCTAssertEqual(field("{\(base), \"num_attention_heads\": 2, \"bottleneck_type\": \"vae\"}"), "vae_bottleneck_dim")
        XCTAssertEqual(field("{\(base), \"num_attention_heads\": 2, \"etok_image_size\": [4, 4]}"), "etok_image_size")
        XCTAssertEqual(field("[1]"), "config")
        // FSQ levels above 16 are more than the .etok token coding codes (docs/etok-format.md §4).
        XCTAssertNil(field("{\(base), \"num_attention_heads\": 2, \"fsq_quant_levels\": [16, 2]}"))
        XCTAssertEqual(field("{\(base), \"num_attention_heads\": 2, \"fsq_quant_levels\": [17, 5]}"), "fsq_quant_levels")
    }

    func testNPYReadsTheReferenceFixtures() throws {
        let frames = try NPYArray.read(path: Fixtures.path("frames.npy"))
        XCTAssertEqual(frames.shape, [3, 16, 16, 3])
        XCTAssertNotNil(frames.uint8)
        XCTAssertEqual(try NPYArray.read(path: Fixtures.path("vision.npy")).shape, [48, 48])
    }

    func testPatchifyMatchesTheReferenceAndInverts() throws {
        for (framesFile, visionFile, modelFile) in [("frames.npy", "vision.npy", "fsq_tiny_f32.safetensors"),
                                                    ("vae_frames.npy", "vae_vision.npy", "vae_tiny_f32.safetensors")] {
            let config = try Fixtures.model(modelFile).config
            let frames = try NPYArray.read(path: Fixtures.path(framesFile))
            let s = frames.shape
            let patches = try Patchify.patches(frames: try XCTUnwrap(frames.uint8), count: s[0], height: s[1], width: s[2],
                                               config: config)
            XCTAssertEqual(patches, try Fixtures.floats(visionFile), framesFile)
            let back = try Patchify.frames(patches: patches, height: s[1], width: s[2], config: config)
            XCTAssertEqual(Patchify.toUInt8(back), frames.uint8)
        }
    }

    func testHalfFloatConversionIsExact() {
        XCTAssertEqual(HalfFloat.halfToFloat(0x3C00), 1)
        XCTAssertEqual(HalfFloat.halfToFloat(0xC000), -2)
        XCTAssertEqual(HalfFloat.halfToFloat(0x7BFF), 65504)
        XCTAssertEqual(HalfFloat.halfToFloat(0x0001), 0x1p-24)
        XCTAssertEqual(HalfFloat.halfToFloat(0x7C00), .infinity)
        XCTAssertTrue(HalfFloat.halfToFloat(0x7E00).isNaN)
        XCTAssertEqual(HalfFloat.halfToFloat(0x3555), Float(0x3555 & 0x3FF) / 1024 * 0.25 + 0.25)
    }

    func testRoPETablesMatchTheReference() throws {
        let k = try XCTUnwrap(try Fixtures.manifest()["kernels"] as? [String: Any])
        let rope = try XCTUnwrap(k["rope"] as? [String: Any])
        let headDim = try XCTUnwrap(rope["head_dim"] as? Int), positions = try XCTUnwrap(rope["positions"] as? Int)
        let table = RoPETable(positions: positions, headDim: headDim, theta: try XCTUnwrap(rope["theta"] as? Double))
        let cos = try Fixtures.floats(try XCTUnwrap(rope["cos"] as? String))
        let sin = try Fixtures.floats(try XCTUnwrap(rope["sin"] as? String))
        var worst: Float = 0
        for p in 0..<positions {
            for i in 0..<headDim / 2 {
                worst = max(worst, abs(table.cos(position: p, pair: i) - cos[p * headDim / 2 + i]))
                worst = max(worst, abs(table.sin(position: p, pair: i) - sin[p * headDim / 2 + i]))
            }
        }
        XCTAssertLessThanOrEqual(worst, 1.2e-7, "within an ulp of the reference")
    }

    func testFSQKernelMatchesTheReferenceTable() throws {
        let k = try XCTUnwrap(try Fixtures.manifest()["kernels"] as? [String: Any])
        let fsq = try XCTUnwrap(k["fsq"] as? [String: Any])
        let levels = try XCTUnwrap(fsq["levels"] as? [Int])
        let z = try Fixtures.floats(try XCTUnwrap(fsq["z"] as? String))
        let rows = z.count / levels.count
        var codes = [Float](repeating: 0, count: z.count), indices = [Int32](repeating: 0, count: rows)
        Kernels.best.fsq(z, ldz: levels.count, rows: rows, levels: FSQLevel.table(levels: levels), codes: &codes,
                         ldc: levels.count, indices: &indices)
        XCTAssertEqual(indices, try Fixtures.int32(try XCTUnwrap(fsq["indices"] as? String)))
        XCTAssertEqual(codes, try Fixtures.floats(try XCTUnwrap(fsq["codes"] as? String)))
        XCTAssertEqual(Int(indices[0]), try XCTUnwrap(fsq["masked_index"] as? Int))
        // Indices → codes inverts the quantiser.
        var c = ModelConfig.etokDefault
        c.maxToks = rows
        c.maxSequenceLength = rows
        c.etokImageSize = nil
        XCTAssertEqual(try FSQCodes.codes(indices: indices, levels: c, call: "t"), codes)
    }
}
