import EtokIO
import XCTest
@testable import EtokFormat

/// A small seeded PRNG (SplitMix64) so every test input is reproducible.
struct SeededRandom: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Shared fixtures: headers, synthetic chunks, whole files.
enum Fixture {
    static let fsqLevels = [8, 8, 8, 5, 5, 5]

    /// An FSQ header (token coding `rc-fsq-2`, unless a test asks for another to see it refused).
    static func fsqHeader(minToks: Int = 4, maxToks: Int = 64, chunkBlocks: Int = 4,
                          levels: [Int] = fsqLevels, coding: EtokHeader.TokenCoding = .rcFSQ2) -> EtokHeader {
        EtokHeader(
            etokVersion: "0.1.0",
            model: .init(name: "etok-test", sha256: String(repeating: "ab", count: 32), imageSize: [64, 64],
                         patchSize: [1, 8, 8], framesPerBlock: 1, minToks: minToks, maxToks: maxToks,
                         contextBlocks: chunkBlocks, bottleneck: .fsq, fsqQuantLevels: levels),
            encoding: .init(threshold: 0.003, search: .fast, fit: .crop, chunkBlocks: chunkBlocks,
                            tokenCoding: coding),
            source: .init(name: "clip.mp4", width: 640, height: 272, timeBase: .init(1, 12800),
                          fps: .init(25, 1), duration: 10.0))
    }

    static func vaeHeader(dim: Int = 8, maxToks: Int = 16, chunkBlocks: Int = 3) -> EtokHeader {
        EtokHeader(
            model: .init(name: "etok-vae-test", sha256: String(repeating: "cd", count: 32), imageSize: [32, 32],
                         patchSize: [2, 8, 8], framesPerBlock: 2, minToks: 1, maxToks: maxToks,
                         bottleneck: .vae, vaeBottleneckDim: dim),
            encoding: .init(threshold: 0.01, search: .binary, chunkBlocks: chunkBlocks, tokenCoding: .f16v1),
            source: .init(timeBase: .init(1, 1000)))
    }

    /// FSQ chunks covering `blocks` blocks: skewed digits with temporal repetition (like real tokens).
    static func fsqChunks(header: EtokHeader, blocks: Int, seed: UInt64) -> [Chunk] {
        var rng = SeededRandom(seed: seed)
        let m = header.model
        let size = header.fsqCodebookSize
        var chunks: [Chunk] = []
        var b = 0
        while b < blocks {
            let n = min(header.encoding.chunkBlocks, blocks - b)
            var records: [BlockRecord] = []
            var tokens: [[Int32]] = []
            var prev: [Int32] = []
            for k in 0..<n {
                let kept = Int.random(in: m.minToks...m.maxToks, using: &rng)
                var t: [Int32] = []
                for i in 0..<kept {
                    if i < prev.count, Double.random(in: 0..<1, using: &rng) < 0.6 {
                        t.append(prev[i])
                    } else {
                        t.append(Int32(Int.random(in: 0..<size, using: &rng)))
                    }
                }
                records.append(BlockRecord(kept: kept, frames: 1, pts: Int64((b + k) * 512),
                                           mse: Float.random(in: 0..<0.003, using: &rng)))
                tokens.append(t)
                prev = t
            }
            chunks.append(Chunk(firstBlock: b, blocks: records, tokens: .fsq(tokens)))
            b += n
        }
        return chunks
    }

    /// VAE chunks with f16-representable latents (so a round trip must be exact).
    static func vaeChunks(header: EtokHeader, blocks: Int, seed: UInt64) -> [Chunk] {
        var rng = SeededRandom(seed: seed)
        let m = header.model
        let dim = header.valuesPerToken
        var chunks: [Chunk] = []
        var b = 0
        while b < blocks {
            let n = min(header.encoding.chunkBlocks, blocks - b)
            var records: [BlockRecord] = []
            var values: [[Float]] = []
            for k in 0..<n {
                let kept = Int.random(in: m.minToks...m.maxToks, using: &rng)
                let frames = (b + k == blocks - 1) ? 1 : m.framesPerBlock  // a partial last block
                records.append(BlockRecord(kept: kept, frames: frames, pts: Int64((b + k) * 80), mse: 0.001))
                values.append((0..<(kept * dim)).map { _ in Float16Bits.round(Float.random(in: -4...4, using: &rng)) })
            }
            chunks.append(Chunk(firstBlock: b, blocks: records, tokens: .vae(values)))
            b += n
        }
        return chunks
    }

    /// A whole file in memory; `finish: false` leaves it as a killed writer would.
    static func file(header: EtokHeader, chunks: [Chunk], finish: Bool = true) throws -> [UInt8] {
        let sink = MemorySink(name: "test.etok")
        let writer = try EtokWriter(sink: sink, header: header)
        for c in chunks { try writer.append(c) }
        if finish { try writer.finish() }
        return sink.bytes
    }

    /// Offsets of every record in a well-formed file (walking the lengths).
    static func recordOffsets(_ bytes: [UInt8]) -> [(type: String, offset: Int)] {
        var out: [(String, Int)] = []
        var p = EtokFormat.preambleSize
        while p + 8 <= bytes.count {
            let type = String(decoding: bytes[p..<(p + 4)], as: UTF8.self)
            out.append((type, p))
            p += 12 + Int(bytes.leU32(at: p + 4))
        }
        return out
    }

    /// Every chunk a file reader can read, with the errors of those it cannot.
    static func readAll(_ reader: EtokReader) -> (chunks: [Chunk], errors: [FormatError]) {
        var chunks: [Chunk] = []
        var errors: [FormatError] = []
        for i in reader.chunks.indices {
            do { chunks.append(try reader.chunk(at: i)) } catch { errors.append(error) }
        }
        return (chunks, errors)
    }

    /// Every chunk a walk of `bytes` read as a pipe yields, and its final health.
    static func streamAll(_ bytes: [UInt8]) throws(FormatError) -> (chunks: [Chunk], health: EtokHealth) {
        let walk = try ChunkSource(bytes: bytes, name: "test.etok", seekable: false).walk()
        var chunks: [Chunk] = []
        while let step = try walk.next() { if case .chunk(let c) = step { chunks.append(c) } }
        return (chunks, walk.health)
    }
}

extension Fixture {
    /// FSQ chunks shaped like real encoder output (docs/etok-format.md §6.3): kept counts that drift
    /// up and down, tokens that mostly repeat the previous block's, changed digits mostly moving by
    /// one, sometimes jumping; changes clustered in a "moving" band of the token grid.
    static func driftingFSQChunks(header: EtokHeader, blocks: Int, seed: UInt64) -> [Chunk] {
        var rng = SeededRandom(seed: seed)
        let m = header.model
        let levels = header.fsqLevels
        let basis = FSQTokenCoder.basis(levels)
        func centred(_ l: Int) -> Int { (Int.random(in: 0..<l, using: &rng) + Int.random(in: 0..<l, using: &rng) + 1) / 2 }
        var chunks: [Chunk] = []
        var kept = (m.minToks + m.maxToks) / 2
        var b = 0
        while b < blocks {
            var records: [BlockRecord] = []
            var tokens: [[Int32]] = []
            var prev: [[Int]] = []
            for k in 0..<min(header.encoding.chunkBlocks, blocks - b) {
                kept = max(m.minToks, min(m.maxToks, kept + Int.random(in: -10...10, using: &rng)))
                var digits: [[Int]] = []
                for t in 0..<kept {
                    if t < prev.count {
                        let moving = (t / 8 + k) % 3 == 0
                        digits.append(levels.indices.map { d in
                            let p = prev[t][d]
                            let r = Double.random(in: 0..<1, using: &rng)
                            if r < (moving ? 0.6 : 0.92) { return p }
                            if r < 0.97 { return max(0, min(levels[d] - 1, p + (Bool.random(using: &rng) ? 1 : -1))) }
                            return Int.random(in: 0..<levels[d], using: &rng)
                        })
                    } else {
                        digits.append(levels.map { min($0 - 1, centred($0)) })
                    }
                }
                records.append(BlockRecord(kept: kept, frames: 1, pts: Int64(b + k), mse: 0.002))
                tokens.append(digits.map { ds in Int32(ds.indices.reduce(0) { $0 + ds[$1] * basis[$1] }) })
                prev = digits
            }
            chunks.append(Chunk(firstBlock: b, blocks: records, tokens: .fsq(tokens)))
            b += records.count
        }
        return chunks
    }
}
