import EtokIO
import XCTest
@testable import EtokFormat

/// Inputs that lie (issue 14): garbage of any length costs one damage entry and bounded buffering, a
/// length field cannot make a pipe reader buffer more than the header allows, and stray records
/// after the index are one verdict, through a file and a pipe alike, that loses no block.
final class HostileInputTests: XCTestCase {
    private func steps(_ bytes: [UInt8], seekable: Bool) throws -> (steps: [ChunkWalk.Step], walk: ChunkWalk, source: ChunkSource) {
        let source = try ChunkSource(bytes: bytes, name: "h.etok", seekable: seekable)
        let walk = source.walk()
        var out: [ChunkWalk.Step] = []
        while let step = try walk.next() { out.append(step) }
        return (out, walk, source)
    }

    private func damage(_ steps: [ChunkWalk.Step]) -> [DamagedRange] {
        steps.compactMap { if case .damaged(let r) = $0 { return r } else { return nil } }
    }

    func testAZeroTailIsOneDamageAndAPipeBuffersFarLessThanIt() throws {
        let header = Fixture.fsqHeader()
        let written = Fixture.fsqChunks(header: header, blocks: 8, seed: 71)
        let head = try Fixture.file(header: header, chunks: written, finish: false)
        let bytes = head + [UInt8](repeating: 0, count: 8 << 20)
        let file = try steps(bytes, seekable: true)
        let pipe = try steps(bytes, seekable: false)
        XCTAssertEqual(file.steps, pipe.steps)
        XCTAssertEqual(file.walk.health, pipe.walk.health)
        XCTAssertEqual(pipe.walk.health.damage.count, 1, "\(pipe.walk.health.damage.prefix(3))")
        XCTAssertEqual(damage(pipe.steps).map(\.blocksText), ["blocks 8 onwards"])
        let peak = try XCTUnwrap(pipe.source.stream?.peakBuffered)
        XCTAssertLessThan(peak, 2 << 20, "buffered \(peak) bytes of a \(bytes.count)-byte stream")
    }

    func testAChunkLengthBeyondWhatTheHeaderAllowsIsDamageAndNotBuffered() throws {
        let header = Fixture.fsqHeader()
        let written = Fixture.fsqChunks(header: header, blocks: 4, seed: 72)
        let start = try Fixture.file(header: header, chunks: written, finish: false)
        let at = start.count
        // 2^30 (allowed by §3, not by this header) runs past the data: truncated inside that record;
        // 8 MiB ends inside the data: a record longer than it may be, passed over.
        for (declared, problem) in [(EtokFormat.maxPayloadLength, "truncated at offset \(at) (inside a CHNK record of"),
                                    (8 << 20, "bad CHNK record at offset \(at): length 8388608 is more than a CHNK record may hold")] {
            var w = ByteWriter()
            w.raw(Array("CHNK".utf8))
            w.u32(UInt32(declared))
            let bytes = start + w.bytes + [UInt8](repeating: 0x5A, count: 10 << 20)
            let pipe = try steps(bytes, seekable: false)
            XCTAssertEqual(pipe.steps.first, .chunk(written[0]))
            let reason = try XCTUnwrap(damage(pipe.steps).first?.reason)
            XCTAssertTrue(reason.problem.hasPrefix(problem), reason.problem)
            let peak = try XCTUnwrap(pipe.source.stream?.peakBuffered)
            XCTAssertLessThan(peak, 2 << 20, "buffered \(peak) bytes for a record declaring \(declared)")
            XCTAssertEqual(try steps(bytes, seekable: true).steps, pipe.steps)
        }
        // The limit holds what the coding can write: a chunk of incompressible tokens fits it.
        let limit = RecordLimits(header: header).chunk
        XCTAssertLessThan(limit, 64 << 20)
        var rng = SeededRandom(seed: 73)
        let worst = Chunk(firstBlock: 0, blocks: (0..<4).map { BlockRecord(kept: 64, frames: 1, pts: Int64($0), mse: 0) },
                          tokens: .fsq((0..<4).map { _ in (0..<64).map { _ in Int32.random(in: 0..<64000, using: &rng) } }))
        XCTAssertLessThan(ChunkCodec.payload(worst, header: header).count, limit)
    }

    func testAdjacentDamageIsStoredAsOneRun() throws {
        let header = Fixture.fsqHeader()
        let written = Fixture.fsqChunks(header: header, blocks: 4, seed: 74)
        var bytes = try Fixture.file(header: header, chunks: written, finish: false)
        for _ in 0..<10_000 { bytes += RecordType.frame(RecordType.head, []) }  // valid records, each a second HEAD
        for seekable in [true, false] {
            let walked = try steps(bytes, seekable: seekable)
            let damage = walked.walk.health.damage
            XCTAssertEqual(damage.count, 1, "\(damage.prefix(3))")
            XCTAssertTrue(damage[0].problem.hasSuffix("a second HEAD, and 9999 more problems up to offset \(bytes.count - 12)"),
                          damage[0].problem)
        }
    }

    /// Issue 14: a second HEAD, or junk bytes, between the index and the tail of a whole file: damage
    /// (the file is not whole), the same through a file and a pipe, and no block is lost.
    func testStrayRecordsAfterTheIndexAreOneVerdictLosingNoBlock() throws {
        let header = Fixture.fsqHeader()
        let written = Fixture.fsqChunks(header: header, blocks: 12, seed: 75)
        let bytes = try Fixture.file(header: header, chunks: written)
        let tailAt = bytes.count - EtokFormat.tailSize
        var rng = SeededRandom(seed: 76)
        let junk = (0..<40).map { _ in UInt8.random(in: 0...255, using: &rng) }
        for (name, insert) in [("second HEAD", RecordType.frame(RecordType.head, Array("{}".utf8))), ("junk", junk)] {
            let bad = Array(bytes[..<tailAt]) + insert + Array(bytes[tailAt...])
            let file = try steps(bad, seekable: true)
            let pipe = try steps(bad, seekable: false)
            XCTAssertEqual(file.steps, pipe.steps, name)
            XCTAssertEqual(file.walk.health, pipe.walk.health, name)
            XCTAssertFalse(file.walk.health.isComplete, name)
            XCTAssertEqual(file.steps.filter { if case .chunk = $0 { return true } else { return false } }.count, 3, name)
            let ranges = damage(file.steps)
            XCTAssertEqual(ranges.count, 1, name)
            XCTAssertEqual(ranges.first?.losesBlocks, false, "\(name): \(ranges)")
            XCTAssertTrue(ranges.first?.problem.hasSuffix("(no blocks lost)") == true, "\(name): \(ranges)")
        }
    }
    /// Fuzz finding (crash-e8a6e632…, minimised): a VAE chunk whose CRC holds but whose f16 latents
    /// include NaN (0xFFFF) or infinity (0x7C00), which no writer stores (§6.2). The file and the pipe
    /// got the same chunk, but one holding NaN equals nothing, itself included, so the walks
    /// "disagreed"; and NaN or infinity would reach the decoder and the exporter. Now it is damaged
    /// token data, the same through a file and a pipe, and the chunk after it still reads.
    func testANonFiniteVAELatentIsDamagedTokenData() throws {
        let header = Fixture.vaeHeader(dim: 2, maxToks: 3, chunkBlocks: 2)
        let written = Fixture.vaeChunks(header: header, blocks: 4, seed: 77)
        let good = try Fixture.file(header: header, chunks: written)
        let chunkAt = try XCTUnwrap(Fixture.recordOffsets(good).first { $0.type == "CHNK" }?.offset)
        let payload = ChunkCodec.payload(written[0], header: header)
        let latent = 12 + 16 * written[0].blocks.count + 4 + 2  // the first token's second value
        for bits: UInt16 in [0xFFFF, 0x7C00, 0xFC00, 0x7E00] {
            var p = payload
            p[latent] = UInt8(bits & 0xFF)
            p[latent + 1] = UInt8(bits >> 8)
            let record = RecordType.frame(RecordType.chunk, p)
            var bytes = good
            bytes.replaceSubrange(chunkAt..<(chunkAt + record.count), with: record)
            let file = try steps(bytes, seekable: true)
            let pipe = try steps(bytes, seekable: false)
            XCTAssertEqual(file.steps, pipe.steps, "f16 \(bits)")
            XCTAssertEqual(file.walk.health, pipe.walk.health, "f16 \(bits)")
            let ranges = damage(pipe.steps)
            XCTAssertEqual(ranges.map(\.blocksText), ["blocks 0–1"], "f16 \(bits)")
            guard case .tokenDataOverrun(_, chunkAt, let message)? = ranges.first?.reason else {
                return XCTFail("f16 \(bits): \(ranges)")
            }
            XCTAssertTrue(message.contains("not a finite number"), message)
            XCTAssertEqual(pipe.steps.dropFirst().first, .chunk(written[1]), "f16 \(bits)")
            let reader = try EtokReader(bytes: bytes, name: "h.etok")
            XCTAssertThrowsError(try reader.chunk(at: 0), "f16 \(bits)")
        }
    }

    /// The writer's side of §6.2: a latent binary16 cannot hold is refused, not stored as infinity.
    func testTheWriterRefusesALatentBinary16CannotHold() throws {
        let header = Fixture.vaeHeader(dim: 2, maxToks: 3, chunkBlocks: 2)
        let chunk = Fixture.vaeChunks(header: header, blocks: 2, seed: 78)[0]
        for value: Float in [.nan, .infinity, -70000, 65520] {
            var c = chunk
            if case .vae(var v) = c.tokens { v[0][1] = value; c.tokens = .vae(v) }
            let writer = try EtokWriter(sink: MemorySink(name: "w.etok"), header: header)
            XCTAssertThrowsError(try writer.append(c), "\(value)") { error in
                guard case .invalidInput(_, let m)? = error as? FormatError else { return XCTFail("\(error)") }
                XCTAssertTrue(m.contains("block 0 value 1"), m)
            }
        }
        var c = chunk
        if case .vae(var v) = c.tokens { v[0][1] = -65519; c.tokens = .vae(v) }  // rounds to −65504: fits
        XCTAssertNoThrow(try EtokWriter(sink: MemorySink(name: "w.etok"), header: header).append(c))
    }
}
