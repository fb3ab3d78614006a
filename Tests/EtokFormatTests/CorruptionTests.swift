import XCTest
@testable import EtokFormat

/// Damaged files: every outcome is a typed error or a result that reports the damage; never a crash,
/// and never tokens that differ from what was written while the file is reported healthy.
final class CorruptionTests: XCTestCase {
    /// What reading damaged bytes gave, checked against the chunks originally written.
    private func checkOutcome(_ bytes: [UInt8], original: [Chunk], context: String,
                              file: StaticString = #filePath, line: UInt = #line) {
        let byFirst = Dictionary(uniqueKeysWithValues: original.map { ($0.firstBlock, $0) })
        // File reader.
        do {
            let reader = try EtokReader(bytes: bytes, name: "bad.etok")
            let (chunks, errors) = Fixture.readAll(reader)
            let health = try reader.verify()
            for c in chunks {
                XCTAssertEqual(c, byFirst[c.firstBlock], "\(context): a chunk read back differs", file: file, line: line)
            }
            if health.isComplete {
                XCTAssertEqual(chunks, original, "\(context): reported complete but chunks differ", file: file, line: line)
                XCTAssertEqual(errors, [], "\(context): reported complete but chunks fail", file: file, line: line)
            }
            if !errors.isEmpty {
                XCTAssertFalse(health.isComplete, "\(context): chunk errors but health complete", file: file, line: line)
            }
        } catch {
            XCTAssertTrue(error.description.hasPrefix("bad.etok: "), "\(context): \(error)", file: file, line: line)
        }
        // Stream reader.
        do {
            let (chunks, health) = try Fixture.streamAll(bytes)
            for c in chunks {
                XCTAssertEqual(c, byFirst[c.firstBlock], "\(context): a streamed chunk differs", file: file, line: line)
            }
            if health.isComplete {
                XCTAssertEqual(chunks, original, "\(context): stream complete but chunks differ", file: file, line: line)
            }
        } catch {
            XCTAssertTrue(error.description.hasPrefix("test.etok: "), "\(context): \(error)", file: file, line: line)
        }
    }

    func testFlippingEveryByteIsDetectedOrHarmless() throws {
        let header = Fixture.fsqHeader(minToks: 2, maxToks: 12, chunkBlocks: 2)
        let chunks = Fixture.fsqChunks(header: header, blocks: 5, seed: 21)
        let bytes = try Fixture.file(header: header, chunks: chunks)
        var rng = SeededRandom(seed: 22)
        var outcomes = (errors: 0, damaged: 0, clean: 0)
        for i in bytes.indices {
            var bad = bytes
            bad[i] ^= UInt8.random(in: 1...255, using: &rng)
            checkOutcome(bad, original: chunks, context: "flip at \(i)")
            if let reader = try? EtokReader(bytes: bad, name: "x"), let h = try? reader.verify() {
                if h.isComplete { outcomes.clean += 1 } else { outcomes.damaged += 1 }
            } else {
                outcomes.errors += 1
            }
        }
        // Only the minor version (2 bytes, not covered by any CRC) may change unnoticed.
        XCTAssertEqual(outcomes.clean, 2, "\(outcomes)")
    }

    func testFlippedChunkIsReportedAndTheOthersStillRead() throws {
        let header = Fixture.fsqHeader()
        let chunks = Fixture.fsqChunks(header: header, blocks: 12, seed: 23)
        var bytes = try Fixture.file(header: header, chunks: chunks)
        let chunkOffsets = Fixture.recordOffsets(bytes).filter { $0.type == "CHNK" }.map(\.offset)
        bytes[chunkOffsets[1] + 30] ^= 0x40
        let reader = try EtokReader(bytes: bytes, name: "f.etok")
        XCTAssertThrowsError(try reader.chunk(at: 1)) { error in
            XCTAssertEqual(error as? FormatError, .badCRC(file: "f.etok", record: "CHNK", offset: chunkOffsets[1]))
        }
        XCTAssertEqual(try reader.chunk(at: 2), chunks[2])
        let health = try reader.verify()
        XCTAssertEqual(health.crcFailures, [.badCRC(file: "f.etok", record: "CHNK", offset: chunkOffsets[1])])
        XCTAssertTrue(health.damage.contains(.missingBlocks(file: "f.etok", from: 4, to: 8)), health.description)
        let streamed = try Fixture.streamAll(bytes)
        XCTAssertEqual(streamed.chunks, [chunks[0], chunks[2]])
    }

    func testCorruptedLengthFieldResynchronisesOnTheNextRecord() throws {
        let header = Fixture.fsqHeader()
        let chunks = Fixture.fsqChunks(header: header, blocks: 12, seed: 24)
        var bytes = try Fixture.file(header: header, chunks: chunks, finish: false)
        let chunkOffsets = Fixture.recordOffsets(bytes).filter { $0.type == "CHNK" }.map(\.offset)
        for (value, name) in [(UInt8(0x7F), "absurd"), (UInt8(0x00), "short")] {
            var bad = bytes
            bad[chunkOffsets[0] + 7] = value  // top byte of the length: absurd, or 2^24 smaller
            if name == "short" { bad[chunkOffsets[0] + 4] ^= 0x10 }
            let scan = try EtokReader(bytes: bad, name: "l.etok")
            XCTAssertEqual(Fixture.readAll(scan).chunks, Array(chunks[1...]), name)
            XCTAssertFalse(scan.health.damage.isEmpty, name)
            XCTAssertEqual(try Fixture.streamAll(bad).chunks, Array(chunks[1...]), name)
        }
        // A damaged length on the last chunk of an unfinished file: that chunk is lost, truncated there.
        bytes[chunkOffsets[2] + 6] = 0x55
        let r = try EtokReader(bytes: bytes, name: "l.etok")
        XCTAssertEqual(Fixture.readAll(r).chunks, Array(chunks[0..<2]))
        XCTAssertEqual(r.health.truncatedAt, chunkOffsets[2])
    }

    func testTruncationAtEveryRecordBoundaryKeepsAllCompleteChunks() throws {
        let header = Fixture.fsqHeader(chunkBlocks: 2)
        let chunks = Fixture.fsqChunks(header: header, blocks: 9, seed: 25)
        let bytes = try Fixture.file(header: header, chunks: chunks)
        let records = Fixture.recordOffsets(bytes)
        var boundaries = records.map(\.offset) + [bytes.count]
        boundaries.removeFirst()  // cutting at HEAD's start leaves no header
        for cut in boundaries {
            let prefix = Array(bytes[0..<cut])
            let complete = records.filter { $0.type == "CHNK" && $0.offset < cut }.count
            let reader = try EtokReader(bytes: prefix, name: "t.etok")
            XCTAssertEqual(Fixture.readAll(reader).chunks, Array(chunks[0..<complete]), "cut \(cut)")
            XCTAssertEqual(try Fixture.streamAll(prefix).chunks, Array(chunks[0..<complete]), "cut \(cut)")
            if cut == bytes.count {
                XCTAssertTrue(reader.health.isComplete)
            } else {
                XCTAssertEqual(reader.health.truncatedAt, cut, "cut \(cut)")
                XCTAssertTrue(reader.health.damage.isEmpty, "cut \(cut): \(reader.health)")
            }
        }
    }

    func testTruncationAtRandomOffsetsKeepsChunksBeforeTheCut() throws {
        let header = Fixture.fsqHeader()
        let chunks = Fixture.fsqChunks(header: header, blocks: 14, seed: 26)
        let bytes = try Fixture.file(header: header, chunks: chunks)
        let records = Fixture.recordOffsets(bytes)
        var rng = SeededRandom(seed: 27)
        var cuts = (0..<300).map { _ in Int.random(in: 0..<bytes.count, using: &rng) }
        cuts += Array(0..<40)  // every cut inside the preamble and the start of HEAD
        for cut in cuts {
            let prefix = Array(bytes[0..<cut])
            let intact = records.filter { r in
                r.type == "CHNK" && r.offset + 12 + Int(bytes.leU32(at: r.offset + 4)) <= cut
            }.count
            do {
                let reader = try EtokReader(bytes: prefix, name: "t.etok")
                XCTAssertEqual(Fixture.readAll(reader).chunks, Array(chunks[0..<intact]), "cut \(cut)")
                XCTAssertTrue(reader.health.isTruncated, "cut \(cut)")
                XCTAssertNotNil(reader.health.truncatedAt)
            } catch {
                // Only a cut before the end of HEAD may fail, and it says truncated (or empty).
                XCTAssertLessThan(cut, records[1].offset, "cut \(cut): \(error)")
                if cut > 0 {
                    guard case .truncated = error else { return XCTFail("cut \(cut): \(error)") }
                }
            }
        }
    }

    func testFatalErrorsAreTypedAndNameTheFile() throws {
        let header = Fixture.fsqHeader()
        let bytes = try Fixture.file(header: header, chunks: Fixture.fsqChunks(header: header, blocks: 2, seed: 28))
        func error(_ b: [UInt8]) -> FormatError? {
            do { _ = try EtokReader(bytes: b, name: "e.etok"); return nil } catch { return error }
        }
        var b = bytes
        b[0] = 0x88
        XCTAssertEqual(error(b), .badSignature(file: "e.etok"))
        XCTAssertEqual(error(Array("GIF89a".utf8)), .badSignature(file: "e.etok"))
        b = bytes
        b[8] = 2
        XCTAssertEqual(error(b), .unsupportedVersion(file: "e.etok", major: 2, minor: Int(EtokFormat.minorVersion)))
        b = bytes
        b[30] ^= 1
        XCTAssertEqual(error(b), .badCRC(file: "e.etok", record: "HEAD", offset: 12))
        b = bytes
        b[12] = UInt8(ascii: "h")
        guard case .badRecord(_, "hEAD", 12, _)? = error(b) else { return XCTFail("\(String(describing: error(b)))") }
        XCTAssertEqual(error([]), .truncated(file: "e.etok", offset: 0, what: "inside the signature"))
        XCTAssertEqual(error(Array(bytes[0..<5])), .truncated(file: "e.etok", offset: 5, what: "inside the signature"))
        XCTAssertTrue(error(b)!.description.hasPrefix("e.etok: "))
    }

    func testHeaderWithBadJSONNamesTheKey() throws {
        var h = Fixture.fsqHeader()
        h.model.maxToks = 64
        var json = String(decoding: h.jsonBytes(), as: UTF8.self)
        json = json.replacingOccurrences(of: "\"max_toks\":64,", with: "")
        var bytes = EtokFormat.signature + [1, 0, 0, 0]
        bytes += RecordType.frame(RecordType.head, Array(json.utf8))
        XCTAssertThrowsError(try EtokReader(bytes: bytes, name: "j.etok")) { error in
            XCTAssertEqual(error as? FormatError, .badHeader(file: "j.etok", key: "model.max_toks", message: "required key missing"))
        }
    }

    func testChunkFieldsOutOfRangeAreReportedEvenWithAValidCRC() throws {
        let header = Fixture.fsqHeader(minToks: 4, maxToks: 64)
        let chunk = Fixture.fsqChunks(header: header, blocks: 4, seed: 29)[0]
        let head = try Fixture.file(header: header, chunks: [], finish: false)
        func reread(_ payload: [UInt8]) throws -> (FormatError?, EtokHealth) {
            let reader = try EtokReader(bytes: head + RecordType.frame(RecordType.chunk, payload), name: "c.etok")
            var err: FormatError?
            if reader.chunks.isEmpty { err = reader.health.damage.first } else {
                do { _ = try reader.chunk(at: 0) } catch { err = error }
            }
            return (err, try reader.verify())
        }
        let good = ChunkCodec.payload(chunk, header: header)
        // kept above max_toks
        var p = good
        p[12] = 200
        var (err, health) = try reread(p)
        guard case .chunkOutOfRange? = err else { return XCTFail("\(String(describing: err))") }
        XCTAssertFalse(health.isComplete)
        // block_count 0 and absurd
        for count: UInt8 in [0, 0xFF] {
            p = good
            p[8] = count
            p[11] = count
            (err, health) = try reread(p)
            guard case .chunkOutOfRange? = err else { return XCTFail("\(String(describing: err))") }
        }
        // token_bytes larger than what follows, and token data cut short
        p = good
        let tb = 12 + 16 * chunk.blocks.count
        p[tb + 2] = 0x10
        (err, _) = try reread(p)
        guard case .tokenDataOverrun? = err else { return XCTFail("\(String(describing: err))") }
        p = Array(good.dropLast(3))
        let shortened = UInt32(good.count - tb - 4 - 3)
        for i in 0..<4 { p[tb + i] = UInt8(truncatingIfNeeded: shortened >> UInt32(8 * i)) }
        (err, _) = try reread(p)
        guard case .tokenDataOverrun(_, _, let message)? = err else { return XCTFail("\(String(describing: err))") }
        XCTAssertTrue(message.contains("ran past token_bytes"), message)
    }

    func testRandomGarbageAfterTheHeaderNeverCrashes() throws {
        let header = Fixture.fsqHeader()
        let head = try Fixture.file(header: header, chunks: [], finish: false)
        var rng = SeededRandom(seed: 30)
        for _ in 0..<200 {
            var tail = (0..<Int.random(in: 0...300, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            if Bool.random(using: &rng) {  // plant plausible record types
                for _ in 0..<3 where tail.count > 8 {
                    let at = Int.random(in: 0..<(tail.count - 8), using: &rng)
                    tail.replaceSubrange(at..<(at + 4), with: RecordType.known.randomElement(using: &rng)!)
                }
            }
            checkOutcome(head + tail, original: [], context: "garbage")
        }
    }
}
