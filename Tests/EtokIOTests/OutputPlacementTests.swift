import EtokIO
import Foundation
import XCTest

final class OutputPlacementTests: XCTestCase {
    func testCommitDoesNotReplaceANameThatAppearedWhileWriting() throws {
        let dir = try temporaryFolder()
        let path = dir + "/out.etok"
        let placement = try OutputPlacement(path: path, overwrite: false)
        try FileSink(placement).write(Array("ours".utf8))
        // Another run (or program) takes the name between our start and our commit.
        try Data("theirs".utf8).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try placement.commit()) { XCTAssertEqual($0 as? OutputError, .appeared(file: path)) }
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "theirs", "the winner's file is intact")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["out.etok"], "our temporary file is gone")
    }

    func testCommitWithOverwriteReplacesAndWithoutCreates() throws {
        let dir = try temporaryFolder()
        let path = dir + "/a.json"
        try OutputPlacement(path: path, overwrite: false).writeWhole(Array("one".utf8))
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "one")
        XCTAssertThrowsError(try OutputPlacement(path: path, overwrite: false)) {
            XCTAssertEqual($0 as? OutputError, .exists(file: path))
        }
        let again = try OutputPlacement(path: path, overwrite: true)
        try Data("other".utf8).write(to: URL(fileURLWithPath: path))   // appeared meanwhile: -y replaces it
        try again.writeWhole(Array("two".utf8))
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "two")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["a.json"])
    }

    func testDiscardLeavesNothingAndAFileTheRunReadsIsRefusedEvenWithOverwrite() throws {
        let dir = try temporaryFolder()
        let model = dir + "/m.safetensors"
        try Data("weights".utf8).write(to: URL(fileURLWithPath: model))
        XCTAssertThrowsError(try OutputPlacement(path: model, overwrite: true, reads: [("in.mp4", "input"), (model, "model")])) {
            XCTAssertEqual($0 as? OutputError, .isInput(file: model, role: "model"))
            XCTAssertEqual("\($0)", "\(model): is the model file too; name another output")
        }
        let p = try OutputPlacement(path: dir + "/x.etok", overwrite: false)
        XCTAssertNotEqual(p.writePath, p.finalPath)
        p.discard()
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["m.safetensors"])
        XCTAssertThrowsError(try OutputPlacement(path: dir + "/no/x.etok", overwrite: false)) {
            XCTAssertEqual($0 as? OutputError, .cannotCreate(file: dir + "/no/x.etok", message: "no folder \(dir)/no/"))
        }
    }

    func testSinkErrorsAreTypedAFullDiskAndAClosedPipe() throws {
        let full = try OutputPlacement(path: "/dev/full", overwrite: false)
        XCTAssertTrue(full.inPlace)
        XCTAssertThrowsError(try FileSink(full).write([1, 2, 3])) {
            guard case .writeFailed(let file, _)? = $0 as? OutputError else { return XCTFail("\($0)") }
            XCTAssertEqual(file, "/dev/full")
        }
        signal(SIGPIPE, SIG_IGN)
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&fds), 0)
        close(fds[0])
        let sink = FileSink(fd: fds[1], name: "stdout", owning: true)
        XCTAssertThrowsError(try sink.write([1])) { XCTAssertEqual($0 as? OutputError, .closed(file: "stdout")) }
    }

    func testFolderPlacementWritesAllFilesOrNone() throws {
        let dir = try temporaryFolder()
        let folder = dir + "/tokens"
        let names = ["a.npy", "b.npy"]
        let first = try FolderPlacement(folder: folder, names: names, overwrite: false)
        first.discard()
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder), "a folder it made goes with a discard")
        try FolderPlacement(folder: folder, names: names, overwrite: false).writeWhole([[1], [2, 3]])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder).sorted(), names)
        XCTAssertEqual(FileManager.default.contents(atPath: folder + "/b.npy"), Data([2, 3]))
        XCTAssertThrowsError(try FolderPlacement(folder: folder, names: names, overwrite: false)) {
            XCTAssertEqual($0 as? OutputError, .exists(file: folder + "/a.npy"))
        }
        XCTAssertThrowsError(try FolderPlacement(folder: dir + "/x/y", names: names, overwrite: false)) {
            guard case .cannotCreate? = $0 as? OutputError else { return XCTFail("\($0)") }
        }
        let deep = try FolderPlacement(folder: dir + "/x/y", names: names, overwrite: false, createParents: true)
        deep.discard()
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/x"), "parents it made go too")
    }

    /// A diagnostic that stderr cannot take is dropped: no trap, no SIGPIPE (even with SIGPIPE at
    /// its default action, as `etok info` keeps it).
    func testStandardErrorDropsWhatItCannotWrite() throws {
        let saved = dup(STDERR_FILENO)
        defer { dup2(saved, STDERR_FILENO); close(saved) }
        signal(SIGPIPE, SIG_DFL)
        defer { signal(SIGPIPE, SIG_IGN) }
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&fds), 0)
        close(fds[0])
        dup2(fds[1], STDERR_FILENO)
        close(fds[1])
        StandardError.line("into a pipe nobody reads")
        let full = open("/dev/full", O_WRONLY)
        dup2(full, STDERR_FILENO)
        close(full)
        StandardError.line("onto a full disk")
        close(STDERR_FILENO)
        StandardError.line("into a closed descriptor")
    }

    private func temporaryFolder() throws -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("etok-io-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url.path
    }
}
