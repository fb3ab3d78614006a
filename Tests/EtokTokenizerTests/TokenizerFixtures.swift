import EtokFormat
import EtokModel
import Foundation
import XCTest
@testable import EtokTokenizer

/// Shared fixtures: the tiny reference models of the engine's parity tests and synthetic video.
enum TokenizerFixtures {
    static let repoRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let modelFixtures = repoRoot.appendingPathComponent("Tests/EtokModelTests/Fixtures")
    static var fsqModelPath: String { modelFixtures.appendingPathComponent("fsq_tiny_f32.safetensors").path }
    static var fsqF16ModelPath: String { modelFixtures.appendingPathComponent("fsq_tiny_f16.safetensors").path }
    static var vaeModelPath: String { modelFixtures.appendingPathComponent("vae_tiny_f32.safetensors").path }
    static func sample(_ name: String) -> String { repoRoot.appendingPathComponent("Samples/\(name)").path }

    /// `count` frames of h × w RGB: a smooth pattern drifting right, with a cut half way.
    static func movingFrames(count: Int, height h: Int, width w: Int) -> [[UInt8]] {
        (0..<count).map { f in
            var rgb = [UInt8](repeating: 0, count: h * w * 3)
            let cut = f >= count / 2
            for y in 0..<h {
                for x in 0..<w {
                    let u = Double(x + f) / Double(w), v = Double(y) / Double(h)
                    let i = (y * w + x) * 3
                    rgb[i] = UInt8(127.5 + 120 * sin(6 * u + (cut ? 2 : 0)))
                    rgb[i + 1] = UInt8(127.5 + 120 * cos(5 * v + u))
                    rgb[i + 2] = cut ? UInt8((x * 16) & 255) : UInt8(127.5 + 100 * sin(3 * (u + v)))
                }
            }
            return rgb
        }
    }

    /// Blocks of patches for `model` from synthetic frames.
    static func blocks(_ count: Int, model: ElasticTokModel) throws -> [[Float]] {
        let c = model.config, (h, w) = c.imageSize, f = c.framesPerBlock
        let frames = movingFrames(count: count * f, height: h, width: w)
        return try (0..<count).map { b in
            try Patchify.patches(frames: Array(frames[(b * f)..<((b + 1) * f)].joined()), count: f,
                                 height: h, width: w, config: c)
        }
    }
}

/// Encoding helpers shared by the encoder and repeat-block tests.
extension XCTestCase {
    /// Encodes `blocks` in chunks of the encoder's `chunkBlocks`, as EncodeRun does; also returns
    /// each block's committed reconstruction.
    func encodeAll(_ model: ElasticTokModel, _ blocks: [[Float]], settings: EncoderSettings)
        throws -> (results: [BlockResult], chunks: [Chunk], reconstructions: [[Float]])
    {
        let encoder = try ConditionalEncoder(model: model, settings: settings)
        var results: [BlockResult] = [], chunks: [Chunk] = [], reconstructions: [[Float]] = []
        for first in stride(from: 0, to: blocks.count, by: encoder.chunkBlocks) {
            let inputs = blocks[first..<min(first + encoder.chunkBlocks, blocks.count)].enumerated().map { k, patches in
                (patches: patches, pts: Int64((first + k) * 10), frames: model.config.framesPerBlock)
            }
            let encoded = try encoder.encodeChunk(inputs, firstBlock: first) { k, recon in
                XCTAssertEqual(k, reconstructions.count - first)
                reconstructions.append(recon)
            }
            results += encoded.results
            chunks.append(encoded.chunk)
        }
        return (results, chunks, reconstructions)
    }

    func header(for model: ElasticTokModel, settings: EncoderSettings, chunkBlocks: Int) -> EtokHeader {
        let loaded = LoadedModel(model: model, path: "/m.safetensors", sha256: String(repeating: "0", count: 64), calibratedThreshold: nil)
        return EtokHeader(model: loaded.headerModel,
                          encoding: .init(threshold: Double(settings.threshold), search: .fast, chunkBlocks: chunkBlocks,
                                          tokenCoding: .preferred(for: loaded.headerModel),
                                          repeatBlocks: settings.writesRepeats ? true : nil),
                          source: .init(timeBase: .init(1, 10)))
    }
}
