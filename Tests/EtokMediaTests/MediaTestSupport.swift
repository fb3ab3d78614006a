import EtokIO
import Foundation
import XCTest
@testable import EtokMedia

/// Shared fixtures: a temporary folder per test, clips made by the ffmpeg tool, the Samples/ clips.
enum MediaFixtures {
    /// The repository root (three levels above this file).
    static let repoRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Path of a bundled sample clip, or nil when Samples/ lacks it.
    static func sample(_ name: String) -> String? {
        let path = repoRoot.appendingPathComponent("Samples").appendingPathComponent(name).path
        return FileManager.default.fileExists(atPath: path) ? path : nil
    }

    /// The ffmpeg tool, or nil when it is not installed.
    static let ffmpeg: String? = ["/usr/bin/ffmpeg", "/usr/local/bin/ffmpeg"].first {
        FileManager.default.isExecutableFile(atPath: $0)
    }
    static let ffprobe: String? = ["/usr/bin/ffprobe", "/usr/local/bin/ffprobe"].first {
        FileManager.default.isExecutableFile(atPath: $0)
    }

    /// Runs a tool, returning its exit status and standard output.
    @discardableResult
    static func run(_ tool: String, _ arguments: [String]) throws -> (status: Int32, output: Data) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, data)
    }
}

/// A test case with a fresh temporary folder and helpers that make clips with ffmpeg.
class MediaTestCase: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("etok-media-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: dir)
    }

    /// Path of `name` in this test's folder.
    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    /// Makes `name` with ffmpeg from the given arguments (input and encoding options).
    @discardableResult
    func makeClip(_ name: String, _ arguments: [String]) throws -> String {
        guard let ffmpeg = MediaFixtures.ffmpeg else { throw XCTSkip("ffmpeg tool not installed (Tools/bootstrap.sh)") }
        let out = path(name)
        let result = try MediaFixtures.run(ffmpeg, ["-v", "error", "-nostdin", "-y"] + arguments + [out])
        XCTAssertEqual(result.status, 0, "ffmpeg failed making \(name)")
        return out
    }

    /// A testsrc2 clip: `frames` frames of `size` at `rate` fps, with extra output arguments.
    @discardableResult
    func makeTestClip(_ name: String, size: String = "160x120", rate: Int = 25, frames: Int = 20,
                      _ extra: [String] = []) throws -> String {
        try makeClip(name, ["-f", "lavfi", "-i", "testsrc2=size=\(size):rate=\(rate)", "-frames:v", "\(frames)"] + extra)
    }

    /// All frames of `path`, decoded.
    func decodeAll(_ path: String, _ options: InputOptions = InputOptions()) throws -> (VideoSource, [DecodedFrame]) {
        let source = try VideoSource(path: path, options: options)
        var frames: [DecodedFrame] = []
        while let frame = try source.nextFrame() { frames.append(frame) }
        return (source, frames)
    }

    /// Asserts that `body` throws a MediaError and returns it.
    /// The `OutputError` that `body` throws (a test failure if it throws something else or nothing).
    func outputError(_ body: () throws -> Void, file: StaticString = #filePath, line: UInt = #line) -> OutputError? {
        do {
            try body()
            XCTFail("expected an OutputError", file: file, line: line)
        } catch let error as OutputError {
            return error
        } catch {
            XCTFail("expected an OutputError, got \(error)", file: file, line: line)
        }
        return nil
    }

    func mediaError(_ body: () throws -> Void, file: StaticString = #filePath, line: UInt = #line) -> MediaError? {
        do {
            try body()
            XCTFail("expected a MediaError", file: file, line: line)
        } catch let error as MediaError {
            return error
        } catch {
            XCTFail("expected a MediaError, got \(error)", file: file, line: line)
        }
        return nil
    }

    /// Decodes a file with the ffmpeg tool into packed RGB24 frames of `width`x`height`, using `filter`.
    func ffmpegRGB(_ input: String, filter: String, width: Int, height: Int) throws -> [[UInt8]] {
        guard let ffmpeg = MediaFixtures.ffmpeg else { throw XCTSkip("ffmpeg tool not installed") }
        let result = try MediaFixtures.run(ffmpeg, ["-v", "error", "-nostdin", "-i", input, "-vf", filter,
                                                    "-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        XCTAssertEqual(result.status, 0)
        let bytes = [UInt8](result.output)
        let frameBytes = width * height * 3
        return stride(from: 0, to: bytes.count - frameBytes + 1, by: frameBytes).map { Array(bytes[$0..<$0 + frameBytes]) }
    }

    /// Frames ffprobe counts by decoding.
    func ffprobeFrameCount(_ path: String) throws -> Int {
        guard let ffprobe = MediaFixtures.ffprobe else { throw XCTSkip("ffprobe not installed") }
        let result = try MediaFixtures.run(ffprobe, ["-v", "error", "-count_frames", "-select_streams", "v:0",
                                                     "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", path])
        return Int(String(decoding: result.output, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
    }
}

/// Mean absolute difference of two equally long byte arrays.
func meanAbsoluteDifference(_ a: [UInt8], _ b: [UInt8]) -> Double {
    precondition(a.count == b.count)
    var sum = 0
    for i in a.indices { sum += abs(Int(a[i]) - Int(b[i])) }
    return Double(sum) / Double(max(1, a.count))
}
