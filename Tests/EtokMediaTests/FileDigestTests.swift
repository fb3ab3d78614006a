import XCTest
import EtokMedia

final class FileDigestTests: XCTestCase {
    func testSHA256MatchesTheFIPSTestVectors() {
        XCTAssertEqual(FileDigest.sha256(of: Array("abc".utf8)),
                       "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(FileDigest.sha256(of: []),
                       "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    func testFileDigestEqualsDigestOfItsBytesAcrossReadChunks() throws {
        // 2.5 MiB: more than one 1 MiB read.
        var rng = SystemRandomNumberGenerator()
        let bytes = (0..<(5 << 19)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("digest-\(UUID()).bin")
        try Data(bytes).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        XCTAssertEqual(try FileDigest.sha256(ofFileAt: url.path), FileDigest.sha256(of: bytes))
    }

    func testMissingFileIsATypedErrorNamingIt() {
        XCTAssertThrowsError(try FileDigest.sha256(ofFileAt: "/nonexistent/model.safetensors")) { error in
            XCTAssertTrue("\(error)".contains("/nonexistent/model.safetensors"))
        }
    }
}
