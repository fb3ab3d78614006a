import Foundation
import XCTest

/// Runs the built `etok` binary (found next to the test bundle) and the ffmpeg tool.
enum CLI {
    /// The repository root (three levels above this file).
    static let repoRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The `etok` executable built with the tests.
    static var etok: String {
        get throws {
            let candidates = [Bundle.main.bundleURL,
                              URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()]
                + Bundle.allBundles.map { $0.bundleURL.deletingLastPathComponent() }
            for dir in candidates {
                let path = dir.appendingPathComponent("etok").path
                if FileManager.default.isExecutableFile(atPath: path) { return path }
            }
            // The test target depends on the etok product, so a missing binary is a broken build,
            // never a reason to skip: the CLI tests would pass while testing nothing.
            throw CLITestError.missingBinary(candidates.map(\.path))
        }
    }

    /// The sanitizer the binary under test was built with (Tools/sanitizers.sh sets ETOK_SANITIZER),
    /// or nil. Peak-memory bounds are not checked then: AddressSanitizer keeps freed memory in
    /// quarantine and adds shadow memory, so a process's RSS grows with what it has allocated over
    /// its life, not with what it holds; the bounds are checked by the normal suite.
    static let sanitizer: String? = ProcessInfo.processInfo.environment["ETOK_SANITIZER"]

    static let ffmpeg: String? = ["/usr/bin/ffmpeg", "/usr/local/bin/ffmpeg"].first {
        FileManager.default.isExecutableFile(atPath: $0)
    }

    static func sample(_ name: String) -> String? {
        let path = repoRoot.appendingPathComponent("Samples/\(name)").path
        return FileManager.default.fileExists(atPath: path) ? path : nil
    }

    /// What a finished process left behind.
    struct Result {
        var status: Int32
        var stdout: Data
        var stderr: String
        /// Non-empty stderr lines.
        var errorLines: [String] { stderr.split(separator: "\n").map(String.init).filter { !$0.isEmpty } }
    }

    /// Runs `etok` with `arguments`; `stdin` is a file handle (a pipe from another process, a
    /// file) or nil for /dev/null; `environment` replaces the test's own (nil: inherit it);
    /// `directory` is the working directory (nil: the test's). Kills it after `timeout` seconds
    /// (the test then fails).
    static func etok(_ arguments: [String], stdin: Any? = nil, timeout: Double = 60,
                     environment: [String: String]? = nil, directory: URL? = nil,
                     whileRunning: ((Process) -> Void)? = nil) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try etok)
        process.arguments = arguments
        if let environment { process.environment = environment }
        if let directory { process.currentDirectoryURL = directory }
        process.standardInput = stdin ?? FileHandle.nullDevice
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let watchdog = DispatchWorkItem { if process.isRunning { process.terminate() } }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: watchdog)
        whileRunning?(process)
        // Read both pipes concurrently so a full pipe never blocks the child.
        let errData = LockedData()
        let group = DispatchGroup()
        DispatchQueue.global().async(group: group) { errData.set(err.fileHandleForReading.readDataToEndOfFile()) }
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        process.waitUntilExit()
        watchdog.cancel()
        return Result(status: process.terminationStatus, stdout: stdout,
                      stderr: String(decoding: errData.get(), as: UTF8.self))
    }

    /// Starts ffmpeg writing to a pipe; returns the process and the pipe's read end for etok.
    static func ffmpegPipe(_ arguments: [String]) throws -> (Process, FileHandle) {
        guard let ffmpeg else { throw XCTSkip("ffmpeg tool not installed (Tools/bootstrap.sh)") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ffmpeg)
        process.arguments = ["-v", "error", "-nostdin"] + arguments + ["-"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        return (process, pipe.fileHandleForReading)
    }

    /// Makes a file with ffmpeg.
    static func ffmpegFile(_ arguments: [String], _ output: String) throws {
        guard let ffmpeg else { throw XCTSkip("ffmpeg tool not installed (Tools/bootstrap.sh)") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ffmpeg)
        process.arguments = ["-v", "error", "-nostdin", "-y"] + arguments + [output]
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, "ffmpeg could not make \(output)")
    }
}

private final class LockedData: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    func set(_ d: Data) { lock.lock(); data = d; lock.unlock() }
    func get() -> Data { lock.lock(); defer { lock.unlock() }; return data }
}

/// A test case with a temporary folder.
class CLITestCase: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("etok-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: dir)
    }

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    /// A testsrc2 clip made by ffmpeg in this test's folder.
    @discardableResult
    func makeClip(_ name: String, frames: Int = 20, size: String = "160x120", rate: Int = 25, _ extra: [String] = []) throws -> String {
        try CLI.ffmpegFile(["-f", "lavfi", "-i", "testsrc2=size=\(size):rate=\(rate)", "-frames:v", "\(frames)"] + extra, path(name))
        return path(name)
    }

    /// Files in `folder` (default: the test folder), sorted.
    func files(in folder: String? = nil) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: folder ?? dir.path).sorted()
    }
}

/// Why a CLI test could not run at all (a failure, not a skip).
enum CLITestError: Error, CustomStringConvertible {
    case missingBinary([String])
    var description: String {
        switch self {
        case .missingBinary(let dirs): return "the etok binary was not found next to the test bundle (looked in \(dirs.joined(separator: ", ")))"
        }
    }
}
