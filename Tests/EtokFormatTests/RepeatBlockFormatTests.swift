import EtokIO
import XCTest
@testable import EtokFormat

/// Repeat blocks in the container (docs/etok-format.md §4 `repeat_blocks`, §5): kept 0 is allowed
/// only where the header declares it (format 1.2), at any chunk position but never as the stream's
/// first block.
final class RepeatBlockFormatTests: XCTestCase {
    func header(repeats: Bool) -> EtokHeader {
        var h = Fixture.fsqHeader(minToks: 4, maxToks: 16, chunkBlocks: 4)
        h.encoding.repeatBlocks = repeats ? true : nil
        return h
    }

    /// A chunk of 4 blocks: coded, repeat, coded, repeat.
    let chunk = Chunk(firstBlock: 0, blocks: [BlockRecord(kept: 5, frames: 1, pts: 0, mse: 0.001),
                                              BlockRecord(kept: 0, frames: 1, pts: 512, mse: 0.002),
                                              BlockRecord(kept: 4, frames: 1, pts: 1024, mse: 0.001),
                                              BlockRecord(kept: 0, frames: 1, pts: 1536, mse: 0.0015)],
                      tokens: .fsq([[1, 2, 3, 4, 5], [], [1, 2, 3, 9], []]))

    func testAStreamWithRepeatBlocksIsFormat12AndReadsBack() throws {
        let bytes = try Fixture.file(header: header(repeats: true), chunks: [chunk])
        XCTAssertEqual(Array(bytes[8..<12]), [1, 0, 2, 0])
        let reader = try EtokReader(bytes: bytes, name: "r.etok")
        XCTAssertEqual(reader.minorVersion, 2)
        XCTAssertTrue(reader.header.encoding.declaresRepeats)
        XCTAssertEqual(try reader.chunk(at: 0), chunk)
        let streamed = try Fixture.streamAll(bytes)
        XCTAssertEqual(streamed.chunks, [chunk])
        XCTAssertTrue(streamed.health.isComplete)
        // The JSON names the key only when it is true, so streams without repeats keep 1.1's bytes.
        XCTAssertTrue(String(decoding: header(repeats: true).jsonBytes(), as: UTF8.self).contains("\"repeat_blocks\":true"))
        XCTAssertFalse(String(decoding: header(repeats: false).jsonBytes(), as: UTF8.self).contains("repeat"))
        let plain = try Fixture.file(header: header(repeats: false), chunks: [])
        XCTAssertEqual(Array(plain[8..<12]), [1, 0, 1, 0])
    }

    func testTheWriterRefusesKeptZeroUnlessDeclaredAndAtTheStreamsStart() throws {
        XCTAssertThrowsError(try Fixture.file(header: header(repeats: false), chunks: [chunk])) { error in
            XCTAssertTrue("\(error)".contains("block 1 keeps 0 tokens, outside 4 to 16 (the header does not declare repeat blocks)"), "\(error)")
        }
        let first = Chunk(firstBlock: 0, blocks: [BlockRecord(kept: 0, frames: 1, pts: 0, mse: 0)], tokens: .fsq([[]]))
        XCTAssertThrowsError(try Fixture.file(header: header(repeats: true), chunks: [first])) { error in
            XCTAssertTrue("\(error)".contains("block 0 keeps 0 tokens (a repeat block) but starts the stream"), "\(error)")
        }
    }

    /// The payload of a chunk, framed as a record, whatever the header would allow.
    func record(_ chunk: Chunk) -> [UInt8] {
        RecordType.frame(RecordType.chunk, ChunkCodec.payload(chunk, header: header(repeats: true)))
    }

    /// A file whose chunk was written under a declaring header, spliced after a header that does
    /// not declare repeats (or declares them in a 1.1 file): the reader refuses the chunk, or the file.
    func testReadersRefuseKeptZeroInAStreamThatDoesNotDeclareRepeats() throws {
        let declared = try Fixture.file(header: header(repeats: true), chunks: [], finish: false)
        let undeclared = try Fixture.file(header: header(repeats: false), chunks: [], finish: false)
        XCTAssertEqual(Fixture.recordOffsets(declared).map(\.type), ["HEAD"])
        let spliced = undeclared + record(chunk)
        let streamed = try Fixture.streamAll(spliced)
        XCTAssertEqual(streamed.chunks, [], "kept 0 in a stream without repeat blocks is damage")
        XCTAssertTrue(streamed.health.damage.contains { "\($0)".contains("kept 0") || "\($0)".contains("keeps 0 tokens") },
                      "\(streamed.health)")
        XCTAssertThrowsError(try ChunkCodec.parse(ChunkCodec.payload(chunk, header: header(repeats: true)),
                                                  header: header(repeats: false), offset: 0, file: "r.etok")) { error in
            XCTAssertTrue("\(error)".contains("block 1 keeps 0 tokens, outside 4 to 16 (the header does not declare repeat blocks)"), "\(error)")
        }
        // A header that declares repeats in a file that says 1.1 (the version is not under a CRC).
        var old = declared + record(chunk)
        old[10] = 1
        XCTAssertThrowsError(try EtokReader(bytes: old, name: "r.etok")) { error in
            XCTAssertTrue("\(error)".contains("repeat_blocks") && "\(error)".contains("1.1"), "\(error)")
        }
        XCTAssertThrowsError(try ChunkSource(bytes: old, name: "r.etok", seekable: false)) { error in
            XCTAssertTrue("\(error)".contains("repeat_blocks"), "\(error)")
        }
    }

    /// A chunk may begin with repeats (of the previous chunk's last frame, §5), even be all
    /// repeats; only the stream's block 0 may not repeat.
    func testReadersAcceptRepeatBlocksAtAChunksStartButNotAtTheStreamsStart() throws {
        let starts = Chunk(firstBlock: 4, blocks: [BlockRecord(kept: 0, frames: 1, pts: 2048, mse: 0),
                                                   BlockRecord(kept: 0, frames: 1, pts: 2560, mse: 0),
                                                   BlockRecord(kept: 4, frames: 1, pts: 3072, mse: 0)],
                           tokens: .fsq([[], [], [1, 2, 3, 4]]))
        let onlyRepeats = Chunk(firstBlock: 7, blocks: [BlockRecord(kept: 0, frames: 1, pts: 3584, mse: 0)], tokens: .fsq([[]]))
        let bytes = try Fixture.file(header: header(repeats: true), chunks: [chunk, starts, onlyRepeats])
        let reader = try EtokReader(bytes: bytes, name: "r.etok")
        XCTAssertEqual(try reader.chunk(at: 1), starts)
        XCTAssertEqual(try reader.chunk(at: 2), onlyRepeats)
        let streamed = try Fixture.streamAll(bytes)
        XCTAssertEqual(streamed.chunks, [chunk, starts, onlyRepeats])
        XCTAssertTrue(streamed.health.isComplete)
        // The stream's first block has nothing before it to repeat: that chunk is damage.
        let first = Chunk(firstBlock: 0, blocks: [BlockRecord(kept: 0, frames: 1, pts: 0, mse: 0),
                                                  BlockRecord(kept: 4, frames: 1, pts: 512, mse: 0)],
                          tokens: .fsq([[], [1, 2, 3, 4]]))
        XCTAssertThrowsError(try ChunkCodec.parse(ChunkCodec.payload(first, header: header(repeats: true)),
                                                  header: header(repeats: true), offset: 0, file: "r.etok")) { error in
            XCTAssertTrue("\(error)".contains("block 0 keeps 0 tokens (a repeat block) but starts the stream"), "\(error)")
        }
        let damaged = try Fixture.file(header: header(repeats: true), chunks: [], finish: false) + record(first)
        XCTAssertEqual(try Fixture.streamAll(damaged).chunks, [])
    }
}
