import XCTest
@testable import EtokFormat

/// `BlockTokens` and its conversions to and from a chunk's `ChunkTokens`: nothing is dropped.
final class BlockTokensTests: XCTestCase {
    func testBlocksRoundTripThroughChunkTokens() throws {
        let fsq: [BlockTokens] = [.fsq([1, 2, 3]), .fsq([]), .fsq([63_999])]
        let chunk = try ChunkTokens(blocks: fsq, bottleneck: .fsq)
        XCTAssertEqual(chunk, .fsq([[1, 2, 3], [], [63_999]]))
        XCTAssertEqual(chunk.blocks, fsq)
        XCTAssertEqual(chunk[block: 2], .fsq([63_999]))
        XCTAssertEqual(chunk.bottleneck, .fsq)
        let vae: [BlockTokens] = [.vae([0.5, -1]), .vae([2, 3, 4, 5])]
        let latents = try ChunkTokens(blocks: vae, bottleneck: .vae)
        XCTAssertEqual(latents.blocks, vae)
        XCTAssertEqual(latents.bottleneck, .vae)
        XCTAssertEqual(vae.map(\.valueCount), [2, 4])
    }

    func testABlockOfTheOtherBottleneckIsAnErrorNamingIt() {
        XCTAssertThrowsError(try ChunkTokens(blocks: [.fsq([1]), .fsq([2]), .vae([1, 2])], bottleneck: .fsq)) { error in
            XCTAssertEqual(error as? TokenKindMismatch, TokenKindMismatch(block: 2, expected: .fsq, found: .vae))
            XCTAssertEqual("\(error)", "block 2 holds vae tokens, expected fsq")
        }
        XCTAssertThrowsError(try ChunkTokens(blocks: [.fsq([1])], bottleneck: .vae)) { error in
            XCTAssertEqual(error as? TokenKindMismatch, TokenKindMismatch(block: 0, expected: .vae, found: .fsq))
        }
    }

    func testTheTypedAccessorsRefuseTheOtherKind() throws {
        XCTAssertEqual(try BlockTokens.fsq([4, 5]).fsqIndices(), [4, 5])
        XCTAssertEqual(try BlockTokens.vae([0.25]).vaeLatents(), [0.25])
        XCTAssertThrowsError(try BlockTokens.vae([0.25]).fsqIndices())
        XCTAssertThrowsError(try BlockTokens.fsq([4]).vaeLatents())
    }
}
