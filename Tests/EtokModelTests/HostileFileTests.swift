// Crafted model files (issue 14): every class is refused with a typed error naming the file and
// the problem, before anything the file sizes is allocated. Each file is built here, small,
// from the tiny FSQ fixture.
import EtokModel
import Foundation
import XCTest

final class HostileFileTests: XCTestCase {
    typealias Tensor = (name: String, dtype: String, shape: [Int], bytes: [UInt8])

    /// The tiny FSQ fixture's metadata, config (as a JSON object) and tensors in float32.
    func fixture() throws -> (metadata: [String: String], config: [String: Any], tensors: [Tensor]) {
        let file = try SafeTensorsFile(path: Fixtures.path("fsq_tiny_f32.safetensors"))
        let tensors = try file.entries.values.sorted { $0.name < $1.name }.map { e in
            (name: e.name, dtype: "F32", shape: e.shape, bytes: f32Bytes(try file.floats(e.name).toArray()))
        }
        let config = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(file.metadata["config"]!.utf8)) as? [String: Any])
        return (file.metadata, config, tensors)
    }

    /// Loads `path` and returns the error's description, failing when it loads or the error is
    /// not a one-line ModelError naming the file.
    func refusal(_ path: String, file: StaticString = #filePath, line: UInt = #line) -> ModelError? {
        do {
            _ = try ElasticTokModel.load(path: path)
            XCTFail("\(path) loaded", file: file, line: line)
        } catch let error as ModelError {
            XCTAssertTrue(error.description.hasPrefix(path + ": "), error.description, file: file, line: line)
            XCTAssertFalse(error.description.contains("\n"), file: file, line: line)
            return error
        } catch {
            XCTFail("untyped \(error)", file: file, line: line)
        }
        return nil
    }

    /// Writes the fixture with `change` applied to its config and returns the refusal.
    func configRefusal(_ change: (inout [String: Any]) -> Void, file: StaticString = #filePath,
                       line: UInt = #line) throws -> ModelError? {
        var (metadata, config, tensors) = try fixture()
        change(&config)
        metadata["config"] = String(decoding: try JSONSerialization.data(withJSONObject: config), as: UTF8.self)
        let path = try temporaryDirectory(self).appendingPathComponent("c.safetensors").path
        try writeSafeTensors(to: path, metadata: metadata, tensors: tensors)
        return refusal(path, file: file, line: line)
    }

    /// Writes a file whose header is `json` followed by `dataBytes` zero bytes.
    func rawFile(_ json: String, dataBytes: Int) throws -> String {
        let path = try temporaryDirectory(self).appendingPathComponent("r.safetensors").path
        var out = Data()
        withUnsafeBytes(of: UInt64(json.utf8.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(Data(json.utf8))
        out.append(Data(count: dataBytes))
        try out.write(to: URL(fileURLWithPath: path))
        return path
    }

    func message(_ error: ModelError?) -> String { error?.description ?? "" }

    func testShapesWhoseCountOrByteSizeOverflowAreRefused() throws {
        for (shape, what) in [("[2147483648, 2147483648]", "byte size"), ("[3037000500, 3037000500]", "element count"),
                              ("[4294967296, 4294967296, 4294967296]", "element count")] {
            let path = try rawFile(#"{"x": {"dtype": "F32", "shape": \#(shape), "data_offsets": [0, 16]}}"#, dataBytes: 16)
            let error = refusal(path)
            XCTAssertTrue(message(error).contains("the \(what) of shape"), message(error))
        }
        // A dimension past 2^53 is not an integer a Double holds: a bad dimension, not a trap.
        let path = try rawFile(#"{"x": {"dtype": "F32", "shape": [4611686018427387904], "data_offsets": [0, 16]}}"#, dataBytes: 16)
        XCTAssertTrue(message(refusal(path)).contains("bad shape dimension"))
        let rank = try rawFile(#"{"x": {"dtype": "F32", "shape": [1,1,1,1,1,1,1,1,1], "data_offsets": [0, 4]}}"#, dataBytes: 4)
        XCTAssertTrue(message(refusal(rank)).contains("9 dimensions"))
    }

    func testOffsetsMustTileTheDataSectionExactly() throws {
        let cases: [(String, Int, String)] = [
            (#"{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}"#, 12, "overlap"),
            // An empty entry between two overlapping ones hides nothing.
            (#"{"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}, "b": {"dtype": "F32", "shape": [0], "data_offsets": [8, 8]}, "c": {"dtype": "F32", "shape": [2], "data_offsets": [12, 20]}}"#, 20, "overlap"),
            (#"{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [2], "data_offsets": [12, 20]}}"#, 20, "hole"),
            (#"{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}"#, 12, "trailing"),
            (#"{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 12]}}"#, 12, "needs 8"),
            (#"{"a": {"dtype": "F16", "shape": [2], "data_offsets": [0, 8]}}"#, 4, "outside"),
            (#"{"a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}}"#, 8, "outside"),
            (#"{"a": {"dtype": "F32", "shape": [2], "data_offsets": [-8, 0]}}"#, 8, "outside"),
            (#"{"a": {"dtype": "F32", "shape": [2]}}"#, 8, "lacks"),
            (#"[1, 2]"#, 0, "not a JSON object"),
        ]
        for (json, size, expected) in cases {
            let error = refusal(try rawFile(json, dataBytes: size))
            if case .badHeader? = error {} else { XCTFail("\(json): \(message(error))") }
            XCTAssertTrue(message(error).contains(expected), "\(json): \(message(error))")
        }
    }

    func testHeaderLengthIsCheckedBeforeReading() throws {
        let dir = try temporaryDirectory(self)
        // Claims more than the file holds; then more than etok's header limit (a file that holds it).
        for (claimed, fileSize, expected) in [(UInt64(1) << 62, 64, "does not fit"),
                                              (UInt64(ModelLimits.headerBytes + 1), ModelLimits.headerBytes + 64, "limit")] {
            let path = dir.appendingPathComponent("h\(claimed).safetensors").path
            var out = Data()
            withUnsafeBytes(of: claimed.littleEndian) { out.append(contentsOf: $0) }
            out.append(Data(repeating: 0x20, count: fileSize - 8))
            try out.write(to: URL(fileURLWithPath: path))
            XCTAssertTrue(message(refusal(path)).contains(expected), message(refusal(path)))
        }
    }

    func testConfigValuesOutOfRangeNameTheField() throws {
        let cases: [(String, Any, String)] = [
            ("etok_image_size", [1 << 40, 1 << 40], "out of range"),
            ("patch_size", [1, 1 << 32, 4], "out of range"),
            ("max_sequence_length", 1_000_000_000_000, "out of range"),
            ("max_sequence_length", 16_000_000, "out of range"),
            ("num_encoder_layers", 1_000_000, "out of range"),
            ("hidden_size", 1 << 62, "4611686018427387904 is out of range"),
            ("max_toks", 1 << 62, "out of range"),
            ("fsq_quant_levels", [1 << 40, 1 << 40], "out of range"),
            ("fsq_quant_levels", [17, 2], "out of range"),
            ("fsq_quant_levels", [Int](repeating: 16, count: 8), "int32"),
            ("theta", -1.0, "positive"),
            ("rms_norm_eps", 0.0, "(0, 1)"),
            ("num_attention_heads", 0, "out of range"),
            ("hidden_size", 2.5, "expected an integer"),
            ("min_toks", true, "expected an integer"),
        ]
        for (field, value, expected) in cases {
            let error = try configRefusal { $0[field] = value }
            guard case let .badConfig(_, named, text)? = error else { XCTFail("\(field): \(message(error))"); continue }
            XCTAssertEqual(named, field, message(error))
            XCTAssertTrue(text.contains(expected), "\(field) = \(value): \(message(error))")
        }
        // A VAE model reads the levels too (its masked index): they are checked for it as well.
        let vae = try configRefusal {
            $0["bottleneck_type"] = "vae"; $0["vae_bottleneck_dim"] = 6; $0["fsq_quant_levels"] = [1 << 40, 1 << 40]
        }
        if case .badConfig(_, "fsq_quant_levels", _)? = vae {} else { XCTFail(message(vae)) }
    }

    func testContextIsBoundedByTheStreamStateBudget() throws {
        // 65536 tokens is within the length limit, but 128 wide layers over it are not.
        let error = try configRefusal {
            $0["max_sequence_length"] = 65536; $0["num_encoder_layers"] = 128; $0["num_decoder_layers"] = 128
            $0["hidden_size"] = 1024; $0["num_attention_heads"] = 16
        }
        guard case .badConfig(_, "max_sequence_length", let text)? = error else { return XCTFail(message(error)) }
        XCTAssertTrue(text.contains("GiB"), text)
        var c = ModelConfig.etokDefault
        XCTAssertLessThan(c.streamStateBytes, 50e6)
        c.maxSequenceLength = 65536
        XCTAssertNoThrow(try c.validate(file: "x"))
    }

    func testLayerCountBeyondTheFileIsAMissingTensorNotAnAllocation() throws {
        // 128 layers (the limit) with tensors for 2: the first absent tensor is named.
        let error = try configRefusal { $0["num_encoder_layers"] = 128 }
        guard case let .missingTensor(_, name)? = error else { return XCTFail(message(error)) }
        XCTAssertTrue(name.hasPrefix("params/encoder/encoder_blocks/2/"), name)
    }

    func testNonFiniteWeightsAreRefusedWithTheirPlace() throws {
        let (metadata, _, tensors) = try fixture()
        let victim = "params/decoder/decoder_blocks/1/feed_forward/w2/kernel"
        let index = try XCTUnwrap(tensors.firstIndex { $0.name == victim })
        let dir = try temporaryDirectory(self)
        for (value, shown) in [(Float.nan, "NaN"), (Float.infinity, "+Inf"), (-Float.infinity, "-Inf")] {
            var floats = tensors[index].bytes
            let bad = f32Bytes([value])
            floats.replaceSubrange(40..<44, with: bad)   // element 10
            var changed = tensors
            changed[index].bytes = floats
            let path = dir.appendingPathComponent("n\(shown).safetensors").path
            try writeSafeTensors(to: path, metadata: metadata, tensors: changed)
            let error = refusal(path)
            guard case let .nonFinite(_, name, at, seen)? = error else { XCTFail(message(error)); continue }
            XCTAssertEqual(name, victim)
            XCTAssertEqual(at, 10)
            XCTAssertEqual(seen.bitPattern, value.bitPattern)
            XCTAssertTrue(message(error).hasSuffix("tensor \(victim) holds \(shown) at element 10"), message(error))
        }
        // In half precision too: 0x7C00 is +inf in F16, 0x7FC0 NaN in BF16.
        for (dtype, bits) in [("F16", UInt16(0x7C00)), ("BF16", UInt16(0x7FC0))] {
            var changed = tensors
            changed[index].dtype = dtype
            var halves = [UInt8](repeating: 0, count: tensors[index].bytes.count / 2)
            halves[6] = UInt8(bits & 0xFF); halves[7] = UInt8(bits >> 8)   // element 3
            changed[index].bytes = halves
            let path = dir.appendingPathComponent("h\(dtype).safetensors").path
            try writeSafeTensors(to: path, metadata: metadata, tensors: changed)
            guard case let .nonFinite(_, name, at, _)? = refusal(path) else { XCTFail(dtype); continue }
            XCTAssertEqual(name, victim)
            XCTAssertEqual(at, 3)
        }
    }

    func testPathsThatAreNotModelFilesSaySoPlainly() throws {
        let dir = try temporaryDirectory(self)
        let empty = dir.appendingPathComponent("empty.safetensors").path
        XCTAssertTrue(FileManager.default.createFile(atPath: empty, contents: Data()))
        let fifo = dir.appendingPathComponent("fifo").path
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        let cases = [(dir.path, "is a directory"), (empty, "is empty"), (fifo, "is a pipe"),
                     ("/dev/zero", "is a device"), ("/dev/null", "is a device"),
                     (dir.appendingPathComponent("absent").path, "no such file")]
        for (path, expected) in cases {
            let start = Date()
            let error = refusal(path)
            XCTAssertLessThan(Date().timeIntervalSince(start), 1, path)   // a FIFO must not block
            guard case let .unreadable(_, text)? = error else { XCTFail("\(path): \(message(error))"); continue }
            XCTAssertTrue(text.hasPrefix(expected), "\(path): \(text)")
        }
    }

    /// The fuzz target's seeds (Tools/fuzz/model/corpus) are valid models: mutations start
    /// from files that pass every check.
    func testFuzzSeedsLoad() throws {
        let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Tools/fuzz/model/corpus")
        let seeds = try FileManager.default.contentsOfDirectory(atPath: corpus.path).filter { $0.hasSuffix(".safetensors") }
        XCTAssertGreaterThanOrEqual(seeds.count, 6)
        for seed in seeds {
            XCTAssertNoThrow(try ElasticTokModel.load(path: corpus.appendingPathComponent(seed).path), seed)
        }
    }
}
