import EtokFormat
import EtokIO
import EtokMedia
import EtokModel
import EtokPipeline
import XCTest
@testable import EtokTokenizer

/// `ErrorReport`: the one classification the command's exit statuses and the C ABI's status codes
/// are tables over.
final class ErrorCategoryTests: XCTestCase {
    func testEachLibraryErrorGetsItsCategoryAndItsOwnOneLineMessage() {
        let cases: [(any Error, ErrorCategory)] = [
            (MediaError.fileNotFound(file: "a.mp4"), .noInput),
            (MediaError.unsupportedCodec(file: "a.mkv", codec: "vvc"), .unsupported),
            (MediaError.ffmpeg(call: "avcodec_send_packet", file: "a.mp4", code: -1, message: "boom"), .software),
            (OutputError.exists(file: "out.etok"), .cannotCreateOutput),
            (OutputError.writeFailed(file: "out.etok", message: "No space left on device"), .writeFailed),
            (OutputError.closed(file: "stdout"), .outputClosed),
            (ModelError.unreadable(file: "m.safetensors", message: "no such file"), .noInput),
            (TokenImportError.emptyInput(file: "t.npy"), .noInput),
        ]
        for (error, category) in cases {
            let report = ErrorReport(error)
            XCTAssertEqual(report.category, category, "\(error)")
            XCTAssertEqual(report.message, String(describing: error))
            XCTAssertFalse(report.message.contains("\n"))
        }
    }

    func testThePipelineWrapperIsLookedThroughAndCancellationIsAnInterruption() {
        let wrapped = PipelineError.stageFailed(stage: "decode", underlying: MediaError.fileNotFound(file: "a.mp4"))
        XCTAssertEqual(ErrorReport(wrapped), ErrorReport(MediaError.fileNotFound(file: "a.mp4")))
        XCTAssertEqual(ErrorReport(PipelineError.cancelled).category, .interrupted)
    }

    func testAnErrorOfNoLibraryIsOther() {
        struct Strange: Error {}
        XCTAssertEqual(ErrorReport(Strange()).category, .other)
    }
}
