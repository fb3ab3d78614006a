import XCTest
@testable import EtokFormat

/// How compact the token coding `rc-fsq-2` (§6.3) is on realistic synthetic streams, against
/// independent measures computed from the same tokens: raw 16-bit indices, order-0 entropies, and the
/// conditional entropy of a digit given the previous block's digit.
final class CompactnessTests: XCTestCase {
    /// Entropy in bits per symbol of `symbols`.
    private func entropy<T: Hashable>(_ symbols: [T]) -> Double {
        var counts: [T: Int] = [:]
        for s in symbols { counts[s, default: 0] += 1 }
        let n = Double(symbols.count)
        return counts.values.reduce(0) { $0 - Double($1) / n * log2(Double($1) / n) }
    }

    /// A stream like an encoder's output: 128 positions, kept counts that drift, each token repeats
    /// the one at the same position in the previous block with probability 0.7 (static background),
    /// otherwise new digits drawn near the centre of each level (FSQ codes concentrate there).
    private func syntheticStream(blocks: Int, seed: UInt64) -> (header: EtokHeader, chunks: [Chunk]) {
        let header = Fixture.fsqHeader(minToks: 16, maxToks: 128, chunkBlocks: 8)
        let levels = header.fsqLevels
        let basis = FSQTokenCoder.basis(levels)
        var rng = SeededRandom(seed: seed)
        func centredDigit(_ l: Int) -> Int {
            // Sum of two uniform draws: a triangular distribution peaking mid-range.
            (Int.random(in: 0..<l, using: &rng) + Int.random(in: 0..<l, using: &rng) + 1) / 2
        }
        var chunks: [Chunk] = []
        var kept = 64
        var b = 0
        while b < blocks {
            var records: [BlockRecord] = []
            var tokens: [[Int32]] = []
            var prev: [Int32] = []
            for k in 0..<min(8, blocks - b) {
                kept = max(16, min(128, kept + Int.random(in: -12...12, using: &rng)))
                var t: [Int32] = []
                for i in 0..<kept {
                    if i < prev.count, Double.random(in: 0..<1, using: &rng) < 0.7 {
                        t.append(prev[i])
                    } else {
                        let index = levels.indices.reduce(0) { $0 + min(levels[$1] - 1, centredDigit(levels[$1])) * basis[$1] }
                        t.append(Int32(index))
                    }
                }
                records.append(BlockRecord(kept: kept, frames: 1, pts: Int64(b + k), mse: 0.002))
                tokens.append(t)
                prev = t
            }
            chunks.append(Chunk(firstBlock: b, blocks: records, tokens: .fsq(tokens)))
            b += records.count
        }
        return (header, chunks)
    }

    func testRangeCodingBeatsRawIndicesAndOrderZeroEntropyOnRepetitiveTokens() throws {
        let (header, chunks) = syntheticStream(blocks: 400, seed: 41)
        let bytes = try Fixture.file(header: header, chunks: chunks)
        var all: [Int32] = []
        var tokenDataBytes = 0
        var digitsByDim = [[Int]](repeating: [], count: 6)
        var pairsByDim = [[Int]](repeating: [], count: 6)  // (prev digit, digit) as one symbol
        let levels = header.fsqLevels
        let basis = FSQTokenCoder.basis(levels)
        for c in chunks {
            guard case .fsq(let blocks) = c.tokens else { return XCTFail() }
            tokenDataBytes += FSQTokenCoder.encode(blocks: blocks, levels: levels, width: header.tokenGridWidth, repeats: false).count
            for (k, block) in blocks.enumerated() {
                all += block
                for (t, token) in block.enumerated() {
                    for d in 0..<6 {
                        let digit = (Int(token) / basis[d]) % levels[d]
                        let prev = k > 0 && t < blocks[k - 1].count ? (Int(blocks[k - 1][t]) / basis[d]) % levels[d] : levels[d]
                        digitsByDim[d].append(digit)
                        pairsByDim[d].append(prev * 16 + digit)
                    }
                }
            }
        }
        let n = Double(all.count)
        let fileBits = Double(bytes.count * 8) / n
        let tokenBits = Double(tokenDataBytes * 8) / n
        let orderZeroDigits = digitsByDim.reduce(0) { $0 + entropy($1) }
        let conditionalDigits = (0..<6).reduce(0.0) { acc, d in
            let prevOnly = pairsByDim[d].map { $0 / 16 }
            return acc + entropy(pairsByDim[d]) - entropy(prevOnly)
        }
        // H(digit | prev digit) is measured over the whole stream, while the coder restarts every
        // chunk (8 blocks) and pays for learning its contexts each time.
        let measures = String(format: "%d tokens; file %.2f bits/token, token data %.2f, order-0 digit entropy %.2f, "
                              + "H(digit | prev digit) %.2f", all.count, fileBits, tokenBits, orderZeroDigits, conditionalDigits)
        XCTAssertLessThan(fileBits, 16, "the whole file, block tables included, beats raw 16-bit indices: " + measures)
        XCTAssertLessThan(tokenBits, orderZeroDigits * 0.8, "the previous-block context must pay off: " + measures)
        XCTAssertLessThan(tokenBits, conditionalDigits * 1.15, "the adaptive model should approach its context's entropy: " + measures)
    }

    /// On encoder-like tokens (digits that mostly stay or move by one, changes clustered in the grid)
    /// the coding comes within 15 % of the conditional entropy of a digit given its previous-block
    /// digit, measured over the whole stream with nothing to learn, while the coder restarts every 4
    /// blocks and codes each chunk's first block with no previous digit at all; and well below the
    /// order-0 entropy of the digits.
    func testCodingApproachesTheEntropyGivenThePreviousDigitOnEncoderLikeTokens() throws {
        let header = Fixture.fsqHeader(minToks: 16, maxToks: 128, chunkBlocks: 4)
        let chunks = Fixture.driftingFSQChunks(header: header, blocks: 200, seed: 42)
        let levels = header.fsqLevels
        let basis = FSQTokenCoder.basis(levels)
        var bytes = 0, tokens = 0
        var pairsByDim = [[Int]](repeating: [], count: levels.count)
        var digitsByDim = [[Int]](repeating: [], count: levels.count)
        for c in chunks {
            guard case .fsq(let blocks) = c.tokens else { return XCTFail() }
            bytes += FSQTokenCoder.encode(blocks: blocks, levels: levels, width: header.tokenGridWidth, repeats: false).count
            tokens += blocks.reduce(0) { $0 + $1.count }
            for (k, block) in blocks.enumerated() {
                for (t, token) in block.enumerated() {
                    for d in levels.indices {
                        let digit = (Int(token) / basis[d]) % levels[d]
                        let prev = k > 0 && t < blocks[k - 1].count ? (Int(blocks[k - 1][t]) / basis[d]) % levels[d] : levels[d]
                        pairsByDim[d].append(prev * 16 + digit)
                        digitsByDim[d].append(digit)
                    }
                }
            }
        }
        let bits = Double(8 * bytes) / Double(tokens)
        let conditional = pairsByDim.reduce(0.0) { $0 + entropy($1) - entropy($1.map { $0 / 16 }) }
        let orderZero = digitsByDim.reduce(0.0) { $0 + entropy($1) }
        let measures = String(format: "%.2f bits/token; H(digit | prev digit) %.2f, order-0 %.2f", bits, conditional, orderZero)
        XCTAssertLessThan(bits, conditional * 1.15, measures)
        XCTAssertLessThan(bits, orderZero * 0.7, measures)
    }
}
