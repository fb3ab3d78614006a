#if canImport(Glibc)
import Glibc
#endif
import Foundation
import XCTest

/// `.etok` inputs that lie, through the built binary (issue 14): memory bounded by the model and the
/// settings however much garbage follows a valid head on stdin (peak RSS of the child, from wait4),
/// and one verdict for a file with stray records between its index and its tail, from every
/// command, file and stdin alike.
final class HostileStreamTests: CLITestCase {
    private var model: String {
        CLI.repoRoot.appendingPathComponent("Tests/EtokModelTests/Fixtures/fsq_tiny_f32.safetensors").path
    }
    /// A 9-frame stream of the tiny model: three chunks of three blocks, then INDX and TAIL.
    private var whole = Data()
    private var indexOffset = 0

    override func setUpWithError() throws {
        try super.setUpWithError()
        let clip = try makeClip("in.mp4", frames: 9)
        let r = try CLI.etok(["encode", clip, "-o", path("a.etok"), "--model", model, "-q", "--threshold", "0.2"])
        XCTAssertEqual(r.status, 0, r.stderr)
        whole = try Data(contentsOf: URL(fileURLWithPath: path("a.etok")))
        var p = 12
        while p + 8 <= whole.count, String(decoding: whole[p..<(p + 4)], as: UTF8.self) != "INDX" {
            p += 12 + (Int(whole[p + 4]) | Int(whole[p + 5]) << 8 | Int(whole[p + 6]) << 16 | Int(whole[p + 7]) << 24)
        }
        indexOffset = p
        XCTAssertEqual(whole.count - indexOffset, 12 + 4 + 3 * 28 + 20, "fixture layout changed")
    }

    /// Runs etok with `arguments`, feeding `head` and then `zeros` zero bytes to its stdin through a
    /// pipe; returns its exit status, its peak RSS in KiB and its stderr. The peak is measured by
    /// /usr/bin/time, a small parent: Linux carries a child's ru_maxrss over from the process that
    /// spawned it (fork copies the high-water mark, exec keeps it), so wait4 on a direct child of
    /// this test process reports at least the test process's own size.
    private func measured(_ arguments: [String], head: Data, zeros: Int) throws -> (status: Int32, peakKiB: Int, stderr: String) {
        let exe = try CLI.etok
        let time = "/usr/bin/time"
        guard FileManager.default.isExecutableFile(atPath: time) else {
            throw XCTSkip("\(time) is not installed (Tools/bootstrap.sh installs it) to measure child peak RSS")
        }
        let rssPath = path("rss-\(UUID().uuidString)")
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&fds), 0)
        let errPath = path("stderr-\(UUID().uuidString)")
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, fds[0], 0)
        posix_spawn_file_actions_addclose(&actions, fds[1])
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        let argv: [UnsafeMutablePointer<CChar>?] = ([time, "-f", "%M", "-o", rssPath, exe] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, time, &actions, nil, argv, environ)
        close(fds[0])
        guard spawned == 0 else {
            close(fds[1])
            throw XCTSkip("posix_spawn failed: \(spawned)")
        }
        // The child may stop reading early (exit); then writes fail with EPIPE instead of a signal.
        let previous = signal(SIGPIPE, SIG_IGN)
        defer { signal(SIGPIPE, previous) }
        func send(_ bytes: UnsafeRawBufferPointer) -> Bool {
            var done = 0
            while done < bytes.count {
                let n = write(fds[1], bytes.baseAddress! + done, bytes.count - done)
                if n < 0 { if errno == EINTR { continue }; return false }
                done += n
            }
            return true
        }
        var open = head.withUnsafeBytes(send)
        let piece = [UInt8](repeating: 0, count: 1 << 20)
        var left = zeros
        while open, left > 0 {
            let n = min(left, piece.count)
            open = piece.withUnsafeBytes { send(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            left -= n
        }
        close(fds[1])
        var status: Int32 = 0
        var usage = rusage()
        while wait4(pid, &status, 0, &usage) < 0, errno == EINTR {}
        let exited = status & 0x7F == 0
        let stderr = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
        // time's output file: "Command exited with non-zero status N" (when it did), then %M.
        let report = try String(contentsOfFile: rssPath, encoding: .utf8)
        let peak = try XCTUnwrap(Int(report.split(separator: "\n").last ?? ""), report)
        return (exited ? (status >> 8) & 0xFF : 128 + (status & 0x7F), peak, stderr)
    }

    /// A valid head (the chunks, no index) then zeros: each command's peak RSS does not grow with
    /// the zeros (8 MiB against 96 MiB), stays below the input's size, and the readable blocks are
    /// kept. Before the damage was merged and the search released what it passed, 20 MiB of zeros
    /// cost `etok info -` 790 MB.
    func testAZeroTailOnStdinRunsInMemoryThatDoesNotGrowWithIt() throws {
        let head = whole.prefix(indexOffset)
        let commands: [(name: String, arguments: [String], status: Int32)] = [
            ("info", ["info", "-"], 65),
            ("decode", ["decode", "-", "--model", model, "--skip-damaged", "-q", "-y", "-o", path("x.rgb")], 0),
        ]
        for command in commands {
            let small = try measured(command.arguments, head: head, zeros: 8 << 20)
            let large = try measured(command.arguments, head: head, zeros: 96 << 20)
            for run in [small, large] {
                XCTAssertEqual(run.status, command.status, "\(command.name): \(run.stderr)")
                if command.name == "decode" { XCTAssertTrue(run.stderr.contains("skipped blocks 9 onwards"), run.stderr) }
            }
            if CLI.sanitizer != nil { continue }  // see CLI.sanitizer: the allocator is the sanitizer's
            let growth = large.peakKiB - small.peakKiB
            XCTAssertLessThan(growth, 16 << 10, "\(command.name): peak RSS \(small.peakKiB) KiB with 8 MiB of zeros, \(large.peakKiB) KiB with 96 MiB")
            XCTAssertLessThan(large.peakKiB, 96 << 10, "\(command.name): peak RSS \(large.peakKiB) KiB")
        }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path("x.rgb"))).count, 9 * 16 * 16 * 3)
    }

    /// A chunk header declaring 2^30 bytes on stdin, followed by 64 MiB: nothing near either is buffered.
    func testAChunkDeclaringAGigabyteOnStdinIsNotBuffered() throws {
        var head = whole.prefix(indexOffset)
        head += Data("CHNK".utf8) + Data([0x00, 0x00, 0x00, 0x40])
        let run = try measured(["info", "-"], head: head, zeros: 64 << 20)
        XCTAssertEqual(run.status, 65, run.stderr)
        if CLI.sanitizer != nil { return }  // see CLI.sanitizer: the allocator is the sanitizer's
        XCTAssertLessThan(run.peakKiB, 64 << 10, "peak RSS \(run.peakKiB) KiB")
    }

    /// Issue 14: a second HEAD, or junk bytes, between the index and the tail. Every command gives
    /// the same verdict, from a file and from stdin: exit 65 naming the problem and that no block is
    /// lost, nothing written; with --skip-damaged all 9 blocks are kept.
    func testStrayRecordsAfterTheIndexGetOneVerdictFromEveryCommand() throws {
        let tailAt = whole.count - 20
        let secondHead = try XCTUnwrap(try? Data(contentsOf: URL(fileURLWithPath: path("a.etok"))).subdata(in: 12..<(12 + 12 + Int(whole[16]) | Int(whole[17]) << 8)))
        var rng = SystemRandomNumberGenerator()
        let junk = Data((0..<37).map { _ in UInt8.random(in: 0...255, using: &rng) })
        for (name, insert) in [("head", secondHead), ("junk", junk)] {
            let bad = whole.prefix(tailAt) + insert + whole.suffix(20)
            let file = path("\(name).etok")
            try bad.write(to: URL(fileURLWithPath: file))
            let runs: [(String, [String])] = [
                ("info", ["info", file]), ("info", ["info", "-"]),
                ("export", ["export", file, "-q", "-o", path("\(name)-f.jsonl")]),
                ("export", ["export", "-", "-q", "-o", path("\(name)-p.jsonl")]),
                ("decode", ["decode", file, "--model", model, "-q", "-o", path("\(name)-f.rgb")]),
                ("decode", ["decode", "-", "--model", model, "-q", "-o", path("\(name)-p.rgb")]),
            ]
            for (command, arguments) in runs {
                let stdin = arguments.contains("-") ? try FileHandle(forReadingFrom: URL(fileURLWithPath: file)) : nil
                let r = try CLI.etok(arguments, stdin: stdin)
                XCTAssertEqual(r.status, 65, "\(name) \(arguments): \(r.stderr)")
                XCTAssertEqual(r.errorLines.count, 1, "\(name) \(arguments): \(r.stderr)")
                let shown = r.stderr + String(decoding: r.stdout, as: UTF8.self)
                XCTAssertFalse(shown.contains("unreadable"), "\(name) \(arguments): \(shown)")
                if command != "info" {
                    XCTAssertTrue(r.stderr.contains("no blocks lost"), "\(name) \(arguments): \(r.stderr)")
                    XCTAssertFalse(FileManager.default.fileExists(atPath: arguments[arguments.count - 1]), "\(arguments)")
                } else {
                    XCTAssertTrue(shown.contains("(no blocks lost)"), "\(name) \(arguments): \(shown)")
                }
            }
            let kept = try CLI.etok(["export", file, "--skip-damaged", "-q", "-o", "-"])
            XCTAssertEqual(kept.status, 0, kept.stderr)
            XCTAssertEqual(String(decoding: kept.stdout, as: UTF8.self).split(separator: "\n").count, 9)
        }
    }
}
