/// The kept tokens of one block (§6): the one per-block shape of tokens, in the encoder, the
/// decoder, `etok info`/`export` and `etok import`. A chunk stores its blocks' tokens together
/// (`ChunkTokens`); `ChunkTokens(blocks:bottleneck:)` and `ChunkTokens.blocks` convert between
/// the two, and a block of the other bottleneck is an error there, never dropped.
public enum BlockTokens: Sendable, Equatable {
    /// FSQ indices, `kept` of them, each in `0 ..< Π L_d` (§6.1).
    case fsq([Int32])
    /// VAE latents, `kept × vae_bottleneck_dim` values, token-major (§6.2). Stored as binary16.
    case vae([Float])

    /// The bottleneck these tokens belong to.
    public var bottleneck: EtokHeader.Bottleneck {
        switch self {
        case .fsq: return .fsq
        case .vae: return .vae
        }
    }

    /// Values held: indices (FSQ) or latent values (VAE).
    public var valueCount: Int {
        switch self {
        case .fsq(let indices): return indices.count
        case .vae(let latents): return latents.count
        }
    }

    /// The FSQ indices; a VAE block is an error.
    public func fsqIndices() throws(TokenKindMismatch) -> [Int32] {
        guard case .fsq(let indices) = self else { throw TokenKindMismatch(block: 0, expected: .fsq, found: bottleneck) }
        return indices
    }

    /// The VAE latents; an FSQ block is an error.
    public func vaeLatents() throws(TokenKindMismatch) -> [Float] {
        guard case .vae(let latents) = self else { throw TokenKindMismatch(block: 0, expected: .vae, found: bottleneck) }
        return latents
    }
}

/// Tokens of one bottleneck where the other's were expected (FSQ indices for a VAE model, or the
/// reverse). `block` counts from the first block of what was converted.
public struct TokenKindMismatch: Error, Sendable, Equatable, CustomStringConvertible {
    public var block: Int
    public var expected: EtokHeader.Bottleneck
    public var found: EtokHeader.Bottleneck

    /// All fields.
    public init(block: Int, expected: EtokHeader.Bottleneck, found: EtokHeader.Bottleneck) {
        self.block = block
        self.expected = expected
        self.found = found
    }

    /// "block N holds vae tokens, expected fsq".
    public var description: String {
        "block \(block) holds \(found.rawValue) tokens, expected \(expected.rawValue)"
    }
}

extension ChunkTokens {
    /// A chunk's tokens from its blocks' tokens, in order; every block must be of `bottleneck`.
    public init(blocks: [BlockTokens], bottleneck: EtokHeader.Bottleneck) throws(TokenKindMismatch) {
        switch bottleneck {
        case .fsq:
            var out: [[Int32]] = []
            out.reserveCapacity(blocks.count)
            for (k, block) in blocks.enumerated() {
                guard case .fsq(let indices) = block else { throw TokenKindMismatch(block: k, expected: .fsq, found: .vae) }
                out.append(indices)
            }
            self = .fsq(out)
        case .vae:
            var out: [[Float]] = []
            out.reserveCapacity(blocks.count)
            for (k, block) in blocks.enumerated() {
                guard case .vae(let latents) = block else { throw TokenKindMismatch(block: k, expected: .vae, found: .fsq) }
                out.append(latents)
            }
            self = .vae(out)
        }
    }

    /// The bottleneck of every block here.
    public var bottleneck: EtokHeader.Bottleneck {
        switch self {
        case .fsq: return .fsq
        case .vae: return .vae
        }
    }

    /// Block `k`'s tokens (0 ≤ k < `blockCount`).
    public subscript(block k: Int) -> BlockTokens {
        switch self {
        case .fsq(let blocks): return .fsq(blocks[k])
        case .vae(let blocks): return .vae(blocks[k])
        }
    }

    /// Every block's tokens, in order.
    public var blocks: [BlockTokens] {
        (0..<blockCount).map { self[block: $0] }
    }
}
