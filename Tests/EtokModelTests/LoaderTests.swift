// The strict model loader: broken safetensors files and configs give typed errors naming the
// file and the tensor; a good file round-trips.
import EtokModel
import XCTest

final class LoaderTests: XCTestCase {
    /// The tiny FSQ fixture's tensors, rewritten by our own writer so they can be damaged.
    func goodTensors() throws -> (metadata: [String: String], tensors: [(name: String, dtype: String, shape: [Int], bytes: [UInt8])]) {
        let file = try SafeTensorsFile(path: Fixtures.path("fsq_tiny_f32.safetensors"))
        let tensors = try file.entries.values.sorted { $0.name < $1.name }.map { e in
            (name: e.name, dtype: "F32", shape: e.shape, bytes: f32Bytes(try file.floats(e.name).toArray()))
        }
        return (file.metadata, tensors)
    }

    func load(_ dir: URL, _ name: String, metadata: [String: String],
              _ tensors: [(name: String, dtype: String, shape: [Int], bytes: [UInt8])], rawHeader: String? = nil) throws -> ElasticTokModel {
        let path = dir.appendingPathComponent(name).path
        try writeSafeTensors(to: path, metadata: metadata, tensors: tensors, rawHeader: rawHeader)
        return try ElasticTokModel.load(path: path)
    }

    func expectError(_ body: @autoclosure () throws -> ElasticTokModel, _ check: (ModelError) -> Bool,
                     file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            guard let e = error as? ModelError else { return XCTFail("untyped \(error)", file: file, line: line) }
            XCTAssertTrue(check(e), "unexpected \(e)", file: file, line: line)
            XCTAssertFalse(e.description.contains("\n"), file: file, line: line)
        }
    }

    func testRewrittenGoodFileLoadsWithTheSameOutputs() throws {
        let dir = try temporaryDirectory(self)
        let (meta, tensors) = try goodTensors()
        let m = try load(dir, "good.safetensors", metadata: meta, tensors)
        let original = try Fixtures.model("fsq_tiny_f32.safetensors")
        let vision = try Fixtures.floats("vision.npy")
        XCTAssertEqual(try m.forwardSequence(patches: vision, keep: [1, 2, 3]).recon,
                       try original.forwardSequence(patches: vision, keep: [1, 2, 3]).recon)
        XCTAssertEqual(m.parameterCount, tensors.reduce(0) { $0 + $1.shape.reduce(1, *) })
    }

    func testBadHeaderIsRefused() throws {
        let dir = try temporaryDirectory(self)
        let (meta, tensors) = try goodTensors()
        expectError(try load(dir, "a.safetensors", metadata: meta, tensors, rawHeader: "{not json")) {
            if case let .badHeader(file, _) = $0 { return file.hasSuffix("a.safetensors") } else { return false }
        }
        // A length prefix larger than the file.
        let path = dir.appendingPathComponent("b.safetensors").path
        try Data([0xFF, 0xFF, 0, 0, 0, 0, 0, 0, 0x7B, 0x7D]).write(to: URL(fileURLWithPath: path))
        expectError(try ElasticTokModel.load(path: path)) { if case .badHeader = $0 { return true } else { return false } }
        // Offsets outside the data section.
        let bad = tensors.enumerated().map { i, t in i == 0 ? (name: t.name, dtype: t.dtype, shape: t.shape, bytes: Array(t.bytes.dropLast(4))) : t }
        expectError(try load(dir, "c.safetensors", metadata: meta, bad)) {
            if case let .badHeader(_, message) = $0 { return message.contains(tensors[0].name) } else { return false }
        }
        // No config in the metadata.
        expectError(try load(dir, "d.safetensors", metadata: ["format": "etok-elastictok"], tensors)) {
            if case .badHeader = $0 { return true } else { return false }
        }
        // Not a file at all.
        expectError(try ElasticTokModel.load(path: dir.appendingPathComponent("none").path)) {
            if case .unreadable = $0 { return true } else { return false }
        }
    }

    func testMissingTensorIsNamed() throws {
        let dir = try temporaryDirectory(self)
        let (meta, tensors) = try goodTensors()
        let victim = "params/decoder/decoder_blocks/1/feed_forward/w3/kernel"
        XCTAssertTrue(tensors.contains { $0.name == victim })
        expectError(try load(dir, "m.safetensors", metadata: meta, tensors.filter { $0.name != victim })) {
            $0 == .missingTensor(file: dir.appendingPathComponent("m.safetensors").path, name: victim)
        }
    }

    func testUnknownTensorIsNamed() throws {
        let dir = try temporaryDirectory(self)
        let (meta, tensors) = try goodTensors()
        let extra = (name: "params/encoder/encoder_blocks/9/attention/wq/kernel", dtype: "F32", shape: [2], bytes: f32Bytes([1, 2]))
        expectError(try load(dir, "u.safetensors", metadata: meta, tensors + [extra])) {
            if case let .unknownTensor(_, name) = $0 { return name == extra.name } else { return false }
        }
    }

    func testWrongShapeIsNamed() throws {
        let dir = try temporaryDirectory(self)
        let (meta, tensors) = try goodTensors()
        let victim = "params/encoder/in_proj/kernel"
        let changed = tensors.map { t in t.name == victim ? (name: t.name, dtype: t.dtype, shape: [t.shape[1], t.shape[0]], bytes: t.bytes) : t }
        expectError(try load(dir, "s.safetensors", metadata: meta, changed)) {
            if case let .wrongShape(_, name, shape, expected) = $0 { return name == victim && shape == [32, 48] && expected == [48, 32] }
            return false
        }
    }

    func testWrongDTypeIsNamed() throws {
        let dir = try temporaryDirectory(self)
        let (meta, tensors) = try goodTensors()
        let victim = "params/decoder/ln_f/kernel"
        let changed = tensors.map { t in t.name == victim ? (name: t.name, dtype: "I32", shape: t.shape, bytes: t.bytes) : t }
        expectError(try load(dir, "t.safetensors", metadata: meta, changed)) {
            if case let .wrongDType(_, name, dtype) = $0 { return name == victim && dtype == "I32" } else { return false }
        }
    }

    func testBadConfigNamesTheField() throws {
        let dir = try temporaryDirectory(self)
        let (meta, tensors) = try goodTensors()
        var m = meta
        m["config"] = meta["config"]!.replacingOccurrences(of: "\"max_toks\": 16", with: "\"max_toks\": 15")
        XCTAssertNotEqual(m["config"], meta["config"])
        expectError(try load(dir, "c.safetensors", metadata: m, tensors)) {
            if case let .badConfig(_, field, _) = $0 { return field == "max_sequence_length" || field == "max_toks" } else { return false }
        }
        m["format"] = "something-else"
        expectError(try load(dir, "f.safetensors", metadata: m, tensors)) {
            if case .badHeader = $0 { return true } else { return false }
        }
    }
}
