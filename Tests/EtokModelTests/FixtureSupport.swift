// Shared support for the EtokModel tests: the golden fixtures (written by
// etok-tools fixtures, python/etok/tools/make_fixtures.py), a seeded generator, comparisons and a safetensors writer.
import EtokIO
import EtokModel
import Foundation
import XCTest

/// The fixture directory and its manifest.
enum Fixtures {
    static let directory: URL = {
        if let url = Bundle.module.url(forResource: "Fixtures", withExtension: nil) { return url }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
    }()

    static func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    /// cases.json as a dictionary.
    static func manifest() throws -> [String: Any] {
        let data = try Data(contentsOf: directory.appendingPathComponent("cases.json"))
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    static func floats(_ name: String) throws -> [Float] {
        try XCTUnwrap(try NPYArray.read(path: path(name)).floats, "\(name) is not float32")
    }

    static func int32(_ name: String) throws -> [Int32] {
        try XCTUnwrap(try NPYArray.read(path: path(name)).int32, "\(name) is not int32")
    }

    nonisolated(unsafe) private static var models: [String: ElasticTokModel] = [:]
    private static let lock = NSLock()

    /// Loads (once) a fixture model.
    static func model(_ name: String) throws -> ElasticTokModel {
        lock.lock()
        defer { lock.unlock() }
        if let m = models[name] { return m }
        let m = try ElasticTokModel.load(path: path(name))
        models[name] = m
        return m
    }
}

/// Max |a − b|, or infinity when the counts differ.
func maxAbsDiff(_ a: [Float], _ b: [Float]) -> Float {
    guard a.count == b.count else { return .infinity }
    var m: Float = 0
    for i in 0..<a.count { m = max(m, abs(a[i] - b[i])) }
    return m
}

/// SplitMix64, seeded.
struct SeededRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func floats(_ n: Int, _ lo: Float = -1, _ hi: Float = 1) -> [Float] {
        (0..<n).map { _ in lo + (hi - lo) * Float(next() >> 40) / Float(1 << 24) }
    }
}

/// Writes a safetensors file from (name, dtype, shape, raw bytes) entries and metadata; the
/// header can be replaced wholesale to build broken files.
func writeSafeTensors(to path: String, metadata: [String: String],
                      tensors: [(name: String, dtype: String, shape: [Int], bytes: [UInt8])],
                      rawHeader: String? = nil) throws {
    var header: [String: Any] = ["__metadata__": metadata]
    var data: [UInt8] = []
    for t in tensors {
        header[t.name] = ["dtype": t.dtype, "shape": t.shape, "data_offsets": [data.count, data.count + t.bytes.count]]
        data += t.bytes
    }
    let json: Data
    if let rawHeader { json = Data(rawHeader.utf8) } else {
        json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
    }
    var out = Data()
    withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
    out.append(json)
    out.append(contentsOf: data)
    try out.write(to: URL(fileURLWithPath: path))
}

/// float32 values as little-endian bytes.
func f32Bytes(_ v: [Float]) -> [UInt8] {
    v.flatMap { x in withUnsafeBytes(of: x.bitPattern.littleEndian) { Array($0) } }
}

/// A fresh temporary directory (removed by the caller's addTeardownBlock).
func temporaryDirectory(_ test: XCTestCase) throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("etok-model-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(at: url) }
    return url
}
