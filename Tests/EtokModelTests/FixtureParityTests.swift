// Parity with the PyTorch reference: every case in cases.json, through both the full-sequence
// forward pass and the incremental (cached, block by block) engine.
import EtokModel
import XCTest

final class FixtureParityTests: XCTestCase {
    struct Case {
        let name: String, model: String, vision: String, tokens: Int, keep: [Int]
        let recon: String, z: String, codes: String?, tolerance: Float
    }

    func cases() throws -> [Case] {
        let list = try XCTUnwrap(try Fixtures.manifest()["cases"] as? [[String: Any]])
        return try list.map { c in
            Case(name: try XCTUnwrap(c["name"] as? String), model: try XCTUnwrap(c["model"] as? String),
                 vision: try XCTUnwrap(c["vision"] as? String), tokens: try XCTUnwrap(c["tokens"] as? Int),
                 keep: try XCTUnwrap(c["keep"] as? [Int]), recon: try XCTUnwrap(c["recon"] as? String),
                 z: try XCTUnwrap(c["z"] as? String), codes: c["codes"] as? String,
                 tolerance: Float(try XCTUnwrap(c["tolerance"] as? Double)))
        }
    }

    func testFullForwardMatchesEveryReferenceCase() throws {
        let all = try cases()
        XCTAssertGreaterThanOrEqual(all.count, 3)
        for c in all {
            let model = try Fixtures.model(c.model)
            let vision = Array(try Fixtures.floats(c.vision).prefix(c.tokens * model.config.patchDim))
            let out = try model.forwardSequence(patches: vision, keep: c.keep)
            try check(c, recon: out.recon, z: out.z, codes: out.codes)
        }
    }

    func testIncrementalEngineMatchesEveryReferenceCase() throws {
        for c in try cases() {
            let model = try Fixtures.model(c.model)
            let cfg = model.config
            let block = cfg.tokensPerBlock * cfg.patchDim
            let vision = try Fixtures.floats(c.vision)
            let encoder = BlockEncoder(model: model), decoder = BlockDecoder(model: model)
            var recon: [Float] = [], z: [Float] = [], codes: [Int32] = []
            for (b, n) in c.keep.enumerated() {
                let patches = Array(vision[(b * block)..<((b + 1) * block)])
                let e = try XCTUnwrap(try encoder.encode(patches: patches, keptCounts: [n]).first)
                try encoder.commit(candidate: 0)
                recon += try decoder.decode(z: e.z)
                try decoder.commit()
                z += e.z
                codes += e.codes ?? []
            }
            try check(c, recon: recon, z: z, codes: c.codes == nil ? nil : codes)
        }
    }

    func check(_ c: Case, recon: [Float], z: [Float], codes: [Int32]?,
               file: StaticString = #filePath, line: UInt = #line) throws {
        let wantRecon = try Fixtures.floats(c.recon), wantZ = try Fixtures.floats(c.z)
        XCTAssertLessThanOrEqual(maxAbsDiff(recon, wantRecon), c.tolerance, "\(c.name): recon", file: file, line: line)
        XCTAssertLessThanOrEqual(maxAbsDiff(z, wantZ), c.tolerance, "\(c.name): z", file: file, line: line)
        if let codesFile = c.codes {
            XCTAssertEqual(codes, try Fixtures.int32(codesFile), "\(c.name): FSQ indices", file: file, line: line)
        } else {
            XCTAssertNil(codes, "\(c.name): a VAE has no codes", file: file, line: line)
        }
    }

    func testIncrementalStepsMatchTheReferenceRun() throws {
        let runs = try XCTUnwrap(try Fixtures.manifest()["incremental"] as? [[String: Any]])
        XCTAssertFalse(runs.isEmpty)
        for run in runs {
            let model = try Fixtures.model(try XCTUnwrap(run["model"] as? String))
            let cfg = model.config, block = cfg.tokensPerBlock * cfg.patchDim
            let vision = try Fixtures.floats(try XCTUnwrap(run["vision"] as? String))
            let tolerance = Float(try XCTUnwrap(run["tolerance"] as? Double))
            let coder = BlockCoder(model: model)
            for step in try XCTUnwrap(run["steps"] as? [[String: Any]]) {
                let b = try XCTUnwrap(step["block"] as? Int), n = try XCTUnwrap(step["keep"] as? Int)
                XCTAssertEqual(coder.committedBlocks, try XCTUnwrap(step["context_blocks"] as? Int))
                let r = try XCTUnwrap(try coder.reconstruct(patches: Array(vision[(b * block)..<((b + 1) * block)]),
                                                            keptCounts: [n]).first)
                XCTAssertLessThanOrEqual(maxAbsDiff(r.recon, try Fixtures.floats(try XCTUnwrap(step["recon"] as? String))),
                                         tolerance, "step \(b) recon")
                XCTAssertLessThanOrEqual(maxAbsDiff(r.z, try Fixtures.floats(try XCTUnwrap(step["z"] as? String))),
                                         tolerance, "step \(b) z")
                XCTAssertEqual(r.codes, try Fixtures.int32(try XCTUnwrap(step["codes"] as? String)), "step \(b) codes")
                try coder.commit(candidate: 0)
            }
        }
    }

    func testCandidatesMatchTheReferenceIncludingMSE() throws {
        let sets = try XCTUnwrap(try Fixtures.manifest()["candidates"] as? [[String: Any]])
        XCTAssertFalse(sets.isEmpty)
        for set in sets {
            let model = try Fixtures.model(try XCTUnwrap(set["model"] as? String))
            let cfg = model.config, block = cfg.tokensPerBlock * cfg.patchDim
            let vision = try Fixtures.floats(try XCTUnwrap(set["vision"] as? String))
            let tolerance = Float(try XCTUnwrap(set["tolerance"] as? Double))
            let coder = BlockCoder(model: model)
            for (b, n) in try XCTUnwrap(set["context_keep"] as? [Int]).enumerated() {
                _ = try coder.reconstruct(patches: Array(vision[(b * block)..<((b + 1) * block)]), keptCounts: [n])
                try coder.commit(candidate: 0)
            }
            let b = try XCTUnwrap(set["block"] as? Int), keeps = try XCTUnwrap(set["keeps"] as? [Int])
            let out = try coder.reconstruct(patches: Array(vision[(b * block)..<((b + 1) * block)]), keptCounts: keeps)
            let recon = try Fixtures.floats(try XCTUnwrap(set["recon"] as? String))
            let z = try Fixtures.floats(try XCTUnwrap(set["z"] as? String))
            let codes = try Fixtures.int32(try XCTUnwrap(set["codes"] as? String))
            let mse = try Fixtures.floats(try XCTUnwrap(set["mse"] as? String))
            XCTAssertEqual(out.map(\.keptCount), keeps)
            XCTAssertLessThanOrEqual(maxAbsDiff(out.flatMap(\.recon), recon), tolerance, "candidate recon")
            XCTAssertLessThanOrEqual(maxAbsDiff(out.flatMap(\.z), z), tolerance, "candidate z")
            XCTAssertEqual(out.flatMap { $0.codes ?? [] }, codes, "candidate codes")
            XCTAssertLessThanOrEqual(maxAbsDiff(out.map(\.mse), mse), tolerance, "candidate mse")
        }
    }

    func testHalfPrecisionWeightsAgreeWithFloat32WithinHalfTolerance() throws {
        // The f16/bf16 files hold the f32 model's weights rounded (their own fixtures above check
        // them exactly). Against the f32 model, the decoder is compared on the same z: through the
        // encoder, rounding may flip an FSQ code, which moves a token by a whole level.
        let manifest = try XCTUnwrap(try Fixtures.manifest()["models"] as? [String: Any])
        let f32 = try Fixtures.model("fsq_tiny_f32.safetensors")
        let vision = try Fixtures.floats("vision.npy")
        let keep = [3, 16, 7]
        let reference = try f32.forwardSequence(patches: vision, keep: keep)
        let block = f32.config.tokensPerBlock * f32.config.codeDim
        for (name, dtype, tolerance) in [("fsq_tiny_f16.safetensors", "F16", Float(5e-3)),
                                         ("fsq_tiny_bf16.safetensors", "BF16", Float(5e-2))] {
            XCTAssertNotNil(manifest[name], "\(name) missing from the manifest")
            let half = try Fixtures.model(name)
            XCTAssertEqual(half.config, f32.config)
            XCTAssertTrue(half.tensors.allSatisfy { $0.dtype == dtype }, name)
            let decoder = BlockDecoder(model: half)
            var recon: [Float] = []
            for b in 0..<keep.count {
                recon += try decoder.decode(z: Array(reference.z[(b * block)..<((b + 1) * block)]))
                try decoder.commit()
            }
            let diff = maxAbsDiff(recon, reference.recon)
            XCTAssertLessThanOrEqual(diff, tolerance, name)
            XCTAssertGreaterThan(diff, 0, "\(name) should differ from f32 at all")
        }
    }

    func testConvertedOfficialCheckpointLoadsWithTheSameWeights() throws {
        let official = try XCTUnwrap(try Fixtures.manifest()["official"] as? [String: Any])
        let converted = try Fixtures.model(try XCTUnwrap(official["converted"] as? String))
        let original = try Fixtures.model(try XCTUnwrap(official["same_weights_as"] as? String))
        XCTAssertEqual(converted.config, original.config)
        // The official config (official fields only) parses to the same architecture.
        let json = try String(contentsOfFile: Fixtures.path(try XCTUnwrap(official["config"] as? String)), encoding: .utf8)
        XCTAssertEqual(try ModelConfig.parse(json: json, file: "official"), original.config)
        let vision = try Fixtures.floats("vision.npy")
        let a = try converted.forwardSequence(patches: vision, keep: [3, 16, 7])
        let b = try original.forwardSequence(patches: vision, keep: [3, 16, 7])
        XCTAssertEqual(a.recon, b.recon)
        XCTAssertEqual(a.codes, b.codes)
    }
}
