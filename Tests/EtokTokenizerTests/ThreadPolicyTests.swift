// How an encode or decode shares the cores: chunk workers first, the spare cores to each chunk's
// passes, never more threads than cores when chunks run side by side.
import XCTest
@testable import EtokTokenizer

final class ThreadPolicyTests: XCTestCase {
    func testSpareCoresGoToThePassesAndSideBySideChunksShareThem() {
        XCTAssertEqual(ThreadPolicy.running(workers: 2, chunks: 1), 1, "a one-chunk clip runs one chunk")
        XCTAssertEqual(ThreadPolicy.running(workers: 2, chunks: 9), 2)
        XCTAssertEqual(ThreadPolicy.running(workers: 4, chunks: nil), 4, "unknown length: every worker")
        XCTAssertEqual(ThreadPolicy.running(workers: 0, chunks: 0), 1)
        XCTAssertEqual(ThreadPolicy.passThreads(running: 1, cores: 2), 2, "one chunk: both cores in its passes")
        XCTAssertEqual(ThreadPolicy.passThreads(running: 2, cores: 2), 1, "two chunks: one core each")
        XCTAssertEqual(ThreadPolicy.passThreads(running: 3, cores: 8), 2)
        XCTAssertEqual(ThreadPolicy.passThreads(running: 5, cores: 2), 1)
        for cores in 1...9 {
            for running in 1...9 {
                XCTAssertLessThanOrEqual(ThreadPolicy.passThreads(running: running, cores: cores) * running, max(cores, running))
            }
        }
    }
}
