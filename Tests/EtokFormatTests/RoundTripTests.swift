import EtokIO
import XCTest
@testable import EtokFormat

final class RoundTripTests: XCTestCase {
    func testFSQChunksRoundTripThroughFileAndStreamReaders() throws {
        let header = Fixture.fsqHeader()
        let chunks = Fixture.fsqChunks(header: header, blocks: 11, seed: 1)  // last chunk partial (3 of 4)
        XCTAssertEqual(chunks.last?.blocks.count, 3)
        let bytes = try Fixture.file(header: header, chunks: chunks)
        let reader = try EtokReader(bytes: bytes, name: "t.etok")
        XCTAssertEqual(reader.header, header)
        XCTAssertTrue(reader.usedIndex)
        XCTAssertTrue(reader.health.isComplete)
        XCTAssertEqual(reader.blockCount, 11)
        XCTAssertEqual(Fixture.readAll(reader).chunks, chunks)
        let verified = try reader.verify()
        XCTAssertTrue(verified.isComplete, verified.description)
        XCTAssertTrue(verified.chunksChecked)
        let streamed = try Fixture.streamAll(bytes)
        XCTAssertEqual(streamed.chunks, chunks)
        XCTAssertTrue(streamed.health.isComplete, streamed.health.description)
    }

    func testVAEChunksRoundTripExactlyAndRoundToHalf() throws {
        let header = Fixture.vaeHeader()
        let chunks = Fixture.vaeChunks(header: header, blocks: 7, seed: 2)
        let bytes = try Fixture.file(header: header, chunks: chunks)
        let reader = try EtokReader(bytes: bytes, name: "t.etok")
        XCTAssertEqual(Fixture.readAll(reader).chunks, chunks)
        XCTAssertEqual(try Fixture.streamAll(bytes).chunks, chunks)
        // Values that are not binary16 come back rounded as Float16Bits.round says.
        let raw: [Float] = (0..<header.valuesPerToken).map { Float($0) * 0.1234567 + 0.001 }
        let chunk = Chunk(firstBlock: 0, blocks: [BlockRecord(kept: 1, frames: 2, pts: 0, mse: 0)], tokens: .vae([raw]))
        let back = try EtokReader(bytes: Fixture.file(header: header, chunks: [chunk]), name: "t").chunk(at: 0)
        XCTAssertEqual(back.tokens, .vae([raw.map { Float(Float16($0)) }]))
    }

    func testSameInputGivesIdenticalBytes() throws {
        let header = Fixture.fsqHeader()
        let a = try Fixture.file(header: header, chunks: Fixture.fsqChunks(header: header, blocks: 9, seed: 4))
        let b = try Fixture.file(header: header, chunks: Fixture.fsqChunks(header: header, blocks: 9, seed: 4))
        XCTAssertEqual(a, b)
        let c = try Fixture.file(header: header, chunks: Fixture.fsqChunks(header: header, blocks: 9, seed: 5))
        XCTAssertNotEqual(a, c)
    }

    func testIndexSeekingEqualsScanning() throws {
        let header = Fixture.fsqHeader(chunkBlocks: 3)
        let chunks = Fixture.fsqChunks(header: header, blocks: 20, seed: 6)
        let complete = try Fixture.file(header: header, chunks: chunks)
        let unfinished = try Fixture.file(header: header, chunks: chunks, finish: false)
        let indexed = try EtokReader(bytes: complete, name: "a")
        let scanned = try EtokReader(bytes: unfinished, name: "b")
        XCTAssertTrue(indexed.usedIndex)
        XCTAssertFalse(scanned.usedIndex)
        XCTAssertEqual(indexed.chunks, scanned.chunks)
        for block in [0, 1, 2, 3, 10, 17, 19] {
            let a = try indexed.chunk(containingBlock: block)
            XCTAssertEqual(a, try scanned.chunk(containingBlock: block))
            XCTAssertTrue(a.blockRange.contains(block))
        }
        XCTAssertThrowsError(try indexed.chunk(containingBlock: 20)) { error in
            XCTAssertEqual(error as? FormatError, .noSuchBlock(file: "a", block: 20))
        }
        // Unfinished: everything readable, reported as truncated at the end.
        XCTAssertEqual(scanned.health.truncatedAt, unfinished.count)
        XCTAssertTrue(scanned.health.damage.isEmpty)
    }

    func testUnknownRecordTypesAreSkipped() throws {
        let header = Fixture.fsqHeader()
        let chunks = Fixture.fsqChunks(header: header, blocks: 8, seed: 7)
        // Insert a future record between HEAD and the first chunk, and between the two chunks, by hand.
        let sink = MemorySink()
        let writer = try EtokWriter(sink: sink, header: header)
        let future = RecordType.frame(Array("XTRA".utf8), Array("some future payload".utf8))
        try sink.write(future)
        try writer.append(chunks[0])
        try sink.write(future)
        try writer.append(chunks[1])
        // The writer's offsets do not know about the extra bytes, so do not finish: scan.
        let reader = try EtokReader(bytes: sink.bytes, name: "u")
        let (read, errors) = Fixture.readAll(reader)
        XCTAssertEqual(errors, [])
        XCTAssertEqual(read, Array(chunks[0..<2]))
        XCTAssertTrue(reader.health.damage.isEmpty, reader.health.description)
        XCTAssertEqual(try Fixture.streamAll(sink.bytes).chunks, Array(chunks[0..<2]))
    }

    func testUnknownRecordTypesAreSkippedInACompleteFile() throws {
        // Build a complete file with an unknown record, computing offsets ourselves (as a newer writer would).
        let header = Fixture.fsqHeader()
        let chunks = Fixture.fsqChunks(header: header, blocks: 8, seed: 8)
        var bytes = try Fixture.file(header: header, chunks: [], finish: false)
        bytes += RecordType.frame(Array("XTRA".utf8), [1, 2, 3])
        var entries: [IndexEntry] = []
        for c in chunks {
            entries.append(IndexEntry(offset: bytes.count, firstBlock: c.firstBlock, blockCount: c.blocks.count,
                                      firstPts: c.blocks[0].pts))
            bytes += RecordType.frame(RecordType.chunk, ChunkCodec.payload(c, header: header))
            bytes += RecordType.frame(Array("xtr2".utf8), [])
        }
        let indexAt = bytes.count
        bytes += RecordType.frame(RecordType.index, IndexCodec.payload(entries)) + IndexCodec.tail(indexOffset: indexAt)
        let reader = try EtokReader(bytes: bytes, name: "u")
        XCTAssertTrue(reader.usedIndex)
        XCTAssertEqual(Fixture.readAll(reader).chunks, chunks)
        let health = try reader.verify()
        XCTAssertTrue(health.isComplete, health.description)
        XCTAssertEqual(try Fixture.streamAll(bytes).chunks, chunks)
    }

    func testWriterRefusesChunksTheHeaderDoesNotAllow() throws {
        let header = Fixture.fsqHeader(minToks: 4, maxToks: 64, chunkBlocks: 4)
        let good = Fixture.fsqChunks(header: header, blocks: 4, seed: 9)[0]
        func refused(_ c: Chunk, _ fragment: String, line: UInt = #line) throws {
            let writer = try EtokWriter(sink: MemorySink(name: "w.etok"), header: header)
            XCTAssertThrowsError(try writer.append(c), line: line) { error in
                guard case .invalidInput(let f, let m)? = error as? FormatError else { return XCTFail("\(error)", line: line) }
                XCTAssertEqual(f, "w.etok", line: line)
                XCTAssertTrue(m.contains(fragment), m, line: line)
            }
        }
        var c = good
        c.firstBlock = 4
        try refused(c, "expected 0")
        c = good
        c.blocks[1].kept = 65
        try refused(c, "keeps 65")
        c = good
        if case .fsq(var t) = c.tokens { t[0][0] = 64000; c.tokens = .fsq(t) }
        try refused(c, "FSQ index 64000")
        c = good
        c.tokens = .vae([[1]])
        try refused(c, "tokens for 1")
        c = good
        c.blocks += c.blocks
        try refused(c, "8 blocks")
        // And after finish nothing more is accepted.
        let writer = try EtokWriter(sink: MemorySink(), header: header)
        try writer.finish()
        XCTAssertThrowsError(try writer.append(good))
    }

    func testWriterWorksOnAPipeAndTheStreamReaderReadsIt() throws {
        let header = Fixture.fsqHeader()
        let chunks = Fixture.fsqChunks(header: header, blocks: 6, seed: 10)
        let expected = try Fixture.file(header: header, chunks: chunks)
        let pipe = Pipe()
        // The writer never seeks: writing into a pipe must work. Read it on another thread.
        let readerDone = expectation(description: "read")
        nonisolated(unsafe) var streamed: [Chunk] = []
        nonisolated(unsafe) var health: EtokHealth?
        let readFD = pipe.fileHandleForReading.fileDescriptor
        Thread.detachNewThread {
            if let walk = try? ChunkSource(fileDescriptor: readFD, name: "-").walk() {
                while let step = try? walk.next(), case .chunk(let c) = step { streamed.append(c) }
                health = walk.health
            }
            readerDone.fulfill()
        }
        let sink = FileSink(fd: pipe.fileHandleForWriting.fileDescriptor, name: "-")
        let writer = try EtokWriter(sink: sink, header: header)
        for c in chunks { try writer.append(c) }
        try writer.finish()
        XCTAssertEqual(writer.bytesWritten, expected.count)
        try pipe.fileHandleForWriting.close()
        wait(for: [readerDone], timeout: 30)
        XCTAssertEqual(streamed, chunks)
        XCTAssertEqual(health?.isComplete, true)
    }

    func testFileWriterAndFileReaderAgreeWithMemory() throws {
        let header = Fixture.fsqHeader()
        let chunks = Fixture.fsqChunks(header: header, blocks: 5, seed: 12)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("etok-format-\(getpid()).etok").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        do {
            let writer = try EtokWriter(sink: FileSink(fd: open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644), name: path, owning: true),
                                        header: header)
            for c in chunks { try writer.append(c) }
            try writer.finish()
        }
        XCTAssertEqual(try [UInt8](Data(contentsOf: URL(fileURLWithPath: path))), try Fixture.file(header: header, chunks: chunks))
        let reader = try EtokReader(path: path)
        XCTAssertEqual(Fixture.readAll(reader).chunks, chunks)
        XCTAssertThrowsError(try EtokReader(path: path + ".missing")) { error in
            guard case .io(_, "open", _, _)? = error as? FormatError else { return XCTFail("\(error)") }
        }
    }
}
