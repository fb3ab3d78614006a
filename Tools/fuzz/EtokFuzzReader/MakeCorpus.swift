// Writes the seed corpus of the .etok fuzz target: small valid files and damaged variants.
// `etok-fuzz-reader --make-corpus DIR` (Tools/fuzz/run.sh --make-corpus); the output is committed in
// Tools/fuzz/corpus/, and a test checks that it is what this writes.
import EtokFormat
import EtokIO
import Foundation

enum MakeCorpus {
    static func fsqHeader(chunkBlocks: Int) -> EtokHeader {
        EtokHeader(
            etokVersion: "0.1.0",
            model: .init(name: "fuzz", sha256: "00", imageSize: [16, 16], patchSize: [1, 8, 8], framesPerBlock: 1,
                         minToks: 1, maxToks: 4, bottleneck: .fsq, fsqQuantLevels: [8, 5, 5]),
            encoding: .init(threshold: 0.003, search: .fast, chunkBlocks: chunkBlocks, tokenCoding: .rcFSQ2),
            source: .init(timeBase: .init(1, 25)))
    }

    static func vaeHeader() -> EtokHeader {
        EtokHeader(
            model: .init(name: "fuzz-vae", sha256: "00", imageSize: [16, 16], patchSize: [1, 8, 8], framesPerBlock: 2,
                         minToks: 1, maxToks: 3, bottleneck: .vae, vaeBottleneckDim: 2),
            encoding: .init(threshold: 0.01, search: .binary, chunkBlocks: 2, tokenCoding: .f16v1),
            source: .init(timeBase: .init(1, 1000)))
    }

    static func file(_ header: EtokHeader, _ chunks: [Chunk], finish: Bool = true) throws -> [UInt8] {
        let sink = MemorySink()
        let w = try EtokWriter(sink: sink, header: header)
        for c in chunks { try w.append(c) }
        if finish { try w.finish() }
        return sink.bytes
    }

    static func write(to dir: String) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        func save(_ name: String, _ bytes: [UInt8]) throws {
            try Data(bytes).write(to: URL(fileURLWithPath: dir).appendingPathComponent(name))
            print("\(name): \(bytes.count) bytes")
        }
        let h = fsqHeader(chunkBlocks: 2)
        let fsq = [
            Chunk(firstBlock: 0, blocks: [BlockRecord(kept: 3, frames: 1, pts: 0, mse: 0.001),
                                          BlockRecord(kept: 4, frames: 1, pts: 1, mse: 0.002)],
                  tokens: .fsq([[1, 2, 199], [1, 2, 3, 150]])),
            Chunk(firstBlock: 2, blocks: [BlockRecord(kept: 1, frames: 1, pts: 2, mse: 0.003)], tokens: .fsq([[7]])),
        ]
        let complete = try file(h, fsq)
        try save("fsq-complete.etok", complete)
        try save("fsq-unfinished.etok", try file(h, fsq, finish: false))
        try save("fsq-empty.etok", try file(h, []))
        let vae = [Chunk(firstBlock: 0, blocks: [BlockRecord(kept: 2, frames: 2, pts: 0, mse: 0),
                                                  BlockRecord(kept: 1, frames: 1, pts: 80, mse: 0)],
                         tokens: .vae([[0.5, -1, 2, 65504], [0.25, -0.0]]))]
        try save("vae-complete.etok", try file(vaeHeader(), vae))
        // Damaged variants of the complete FSQ file.
        var flipped = complete
        flipped[complete.count - 60] ^= 0x20  // inside the last chunk or the index
        try save("fsq-flipped.etok", flipped)
        try save("fsq-truncated.etok", Array(complete[0..<(complete.count - 45)]))
        var badTail = complete
        badTail[complete.count - 9] ^= 0x01  // TAIL's index offset
        try save("fsq-bad-tail.etok", badTail)
        // A future record type between the header and the chunks (read by scanning).
        var unknown = try file(h, [], finish: false)
        var w = ByteWriter()
        w.raw(Array("XTRA".utf8))
        w.u32(3)
        w.raw([1, 2, 3])
        w.u32(CRC32.checksum(w.bytes))
        let headerEnd = unknown.count
        unknown += w.bytes
        let chunks = try file(h, fsq, finish: false)
        unknown += chunks[headerEnd...]
        try save("fsq-unknown-record.etok", unknown)
        // Longer chunks (§6.3): tokens with and without a previous-block digit, near and far changes.
        let h2 = fsqHeader(chunkBlocks: 3)
        let fsq2 = [
            Chunk(firstBlock: 0, blocks: [BlockRecord(kept: 4, frames: 1, pts: 0, mse: 0.001),
                                          BlockRecord(kept: 4, frames: 1, pts: 1, mse: 0.002),
                                          BlockRecord(kept: 2, frames: 1, pts: 2, mse: 0.002)],
                  tokens: .fsq([[1, 2, 199, 45], [1, 10, 198, 5], [1, 50]])),
            Chunk(firstBlock: 3, blocks: [BlockRecord(kept: 1, frames: 1, pts: 3, mse: 0.003)], tokens: .fsq([[7]])),
        ]
        let complete2 = try file(h2, fsq2)
        try save("fsq2-complete.etok", complete2)
        var flipped2 = complete2
        flipped2[complete2.count - 150] ^= 0x08  // inside the first chunk's token data
        try save("fsq2-flipped.etok", flipped2)
        // Repeat blocks (format 1.2, §5): kept 0 after a coded block, and a coded block after them.
        var h3 = fsqHeader(chunkBlocks: 4)
        h3.encoding.repeatBlocks = true
        let repeats = [
            Chunk(firstBlock: 0, blocks: [BlockRecord(kept: 3, frames: 1, pts: 0, mse: 0.001),
                                          BlockRecord(kept: 0, frames: 1, pts: 1, mse: 0.002),
                                          BlockRecord(kept: 2, frames: 1, pts: 2, mse: 0.002),
                                          BlockRecord(kept: 0, frames: 1, pts: 3, mse: 0.001)],
                  tokens: .fsq([[1, 2, 199], [], [1, 10], []])),
            Chunk(firstBlock: 4, blocks: [BlockRecord(kept: 4, frames: 1, pts: 4, mse: 0.003)], tokens: .fsq([[7, 8, 9, 10]])),
        ]
        try save("fsq-repeat-complete.etok", try file(h3, repeats))
    }
}
