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
}
