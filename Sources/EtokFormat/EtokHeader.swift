import Foundation

/// The `HEAD` record's content (§4): which model made the stream, how, and from what.
///
/// `Codable` to exactly the §4 JSON (snake_case keys). Decoding is strict on the required keys and
/// their types and ignores unknown keys; `EtokHeader.decode(_:file:)` adds the semantic checks
/// (`validate`) and turns every problem into `FormatError.badHeader` naming the key. Encoding writes
/// every key, optional ones as `null`, with sorted keys, so the same header gives the same bytes.
public struct EtokHeader: Codable, Sendable, Equatable {
    /// Version of the etok software that wrote the file (informative; optional).
    public var etokVersion: String?
    /// The model facts a decoder needs (§4 `model`).
    public var model: Model
    /// The encoder's settings (§4 `encoding`).
    public var encoding: Encoding
    /// Where the frames came from (§4 `source`).
    public var source: Source

    /// A header from its three parts.
    public init(etokVersion: String? = nil, model: Model, encoding: Encoding, source: Source) {
        self.etokVersion = etokVersion
        self.model = model
        self.encoding = encoding
        self.source = source
    }

    enum CodingKeys: String, CodingKey {
        case etokVersion = "etok_version", model, encoding, source
    }

    /// The bottleneck kind (§4 `model.bottleneck`): decides how tokens are stored.
    public enum Bottleneck: String, Codable, Sendable {
        /// Finite scalar quantisation: tokens are integer indices (§6.1, §6.3).
        case fsq
        /// Continuous latents (§6.2).
        case vae
    }

    /// How the token data of chunks is coded (§4 `encoding.token_coding`). A reader refuses a name
    /// it does not know (`FormatError.badHeader` saying "unknown token coding"), so a stream in a
    /// newer coding is never misread.
    public enum TokenCoding: String, Codable, Sendable, CaseIterable {
        /// FSQ digits, range-coded with binary decisions and mixed contexts (§6.3): the one coding
        /// of FSQ tokens. (The draft `rc-fsq-1` is no longer read: "unknown token coding".)
        case rcFSQ2 = "rc-fsq-2"
        /// VAE latents as binary16 (§6.2).
        case f16v1 = "f16-1"

        /// Decodes a known name; any other is an error naming it and the names this reader knows.
        public init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            let name = try c.decode(String.self)
            guard let value = TokenCoding(rawValue: name) else {
                let known = TokenCoding.allCases.map(\.rawValue).joined(separator: ", ")
                throw DecodingError.dataCorruptedError(
                    in: c, debugDescription: "unknown token coding \"\(name)\" (this reader knows \(known))")
            }
            self = value
        }

        /// The coding of `model`'s tokens (§4): `rc-fsq-2` for FSQ, `f16-1` for VAE.
        public static func preferred(for model: Model) -> TokenCoding {
            model.bottleneck == .fsq ? .rcFSQ2 : .f16v1
        }
    }

    /// A rational number written as a JSON array `[num, den]` (time bases, frame rates).
    public struct Rational: Codable, Sendable, Equatable {
        /// Numerator.
        public var num: Int
        /// Denominator.
        public var den: Int

        /// Seconds of `ticks` units of this time base (0 denominators count as 1).
        public func seconds(_ ticks: Int64) -> Double { Double(ticks) * Double(num) / Double(max(1, den)) }

        /// `num / den`.
        public init(_ num: Int, _ den: Int) {
            self.num = num
            self.den = den
        }

        /// Decodes `[num, den]`: exactly two integers.
        public init(from decoder: Decoder) throws {
            var c = try decoder.unkeyedContainer()
            num = try c.decode(Int.self)
            den = try c.decode(Int.self)
            if !c.isAtEnd {
                throw DecodingError.dataCorruptedError(in: c, debugDescription: "expected [num, den], got more than two values")
            }
        }

        /// Encodes `[num, den]`.
        public func encode(to encoder: Encoder) throws {
            var c = encoder.unkeyedContainer()
            try c.encode(num)
            try c.encode(den)
        }
    }

    /// §4 `model`: everything a decoder needs to check it holds the right model and to parse tokens.
    public struct Model: Codable, Sendable, Equatable {
        /// Model name, e.g. `default` (the bundled model) or the weights file's metadata name.
        public var name: String
        /// Lower-case hex SHA-256 of the weights file's bytes.
        public var sha256: String
        /// `[H, W]` pixels of the model input.
        public var imageSize: [Int]
        /// `[Tp, Hp, Wp]`.
        public var patchSize: [Int]
        /// Frames per block.
        public var framesPerBlock: Int
        /// Smallest kept count per block.
        public var minToks: Int
        /// Largest kept count per block (tokens per block).
        public var maxToks: Int
        /// Context length the model was trained with, in blocks (optional).
        public var contextBlocks: Int?
        /// FSQ or VAE.
        public var bottleneck: Bottleneck
        /// FSQ levels `L_d`, dimension 0 first (required for FSQ).
        public var fsqQuantLevels: [Int]?
        /// Values per VAE token (required for VAE).
        public var vaeBottleneckDim: Int?

        /// All fields; optional ones default to nil.
        public init(name: String, sha256: String, imageSize: [Int], patchSize: [Int], framesPerBlock: Int,
                    minToks: Int, maxToks: Int, contextBlocks: Int? = nil, bottleneck: Bottleneck,
                    fsqQuantLevels: [Int]? = nil, vaeBottleneckDim: Int? = nil) {
            self.name = name
            self.sha256 = sha256
            self.imageSize = imageSize
            self.patchSize = patchSize
            self.framesPerBlock = framesPerBlock
            self.minToks = minToks
            self.maxToks = maxToks
            self.contextBlocks = contextBlocks
            self.bottleneck = bottleneck
            self.fsqQuantLevels = fsqQuantLevels
            self.vaeBottleneckDim = vaeBottleneckDim
        }

        enum CodingKeys: String, CodingKey {
            case name, sha256, imageSize = "image_size", patchSize = "patch_size"
            case framesPerBlock = "frames_per_block", minToks = "min_toks", maxToks = "max_toks"
            case contextBlocks = "context_blocks", bottleneck, fsqQuantLevels = "fsq_quant_levels"
            case vaeBottleneckDim = "vae_bottleneck_dim"
        }

        /// Writes every key; absent optionals as `null` (§4's example shows them).
        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(name, forKey: .name)
            try c.encode(sha256, forKey: .sha256)
            try c.encode(imageSize, forKey: .imageSize)
            try c.encode(patchSize, forKey: .patchSize)
            try c.encode(framesPerBlock, forKey: .framesPerBlock)
            try c.encode(minToks, forKey: .minToks)
            try c.encode(maxToks, forKey: .maxToks)
            try c.encode(contextBlocks, forKey: .contextBlocks)
            try c.encode(bottleneck, forKey: .bottleneck)
            try c.encode(fsqQuantLevels, forKey: .fsqQuantLevels)
            try c.encode(vaeBottleneckDim, forKey: .vaeBottleneckDim)
        }
    }

    /// A search method name (§4 `encoding.search`): `fast`, `binary`, `linear` or `fixed`. Open, so a
    /// file from a newer writer with another name still reads.
    public struct Search: RawRepresentable, Codable, Sendable, Equatable, Hashable {
        /// The name as written in the JSON.
        public var rawValue: String
        /// Wraps a name.
        public init(rawValue: String) { self.rawValue = rawValue }
        /// Galloping search from the previous block's count (ours).
        public static let fast = Search(rawValue: "fast")
        /// Binary search (the official code's).
        public static let binary = Search(rawValue: "binary")
        /// Log-spaced grid (the official code's `linear`).
        public static let linear = Search(rawValue: "linear")
        /// A fixed budget (`fixed_tokens`).
        public static let fixed = Search(rawValue: "fixed")
        /// Tokens that no search chose: brought in by `etok import` (block `mse` is −1, unmeasured).
        public static let imported = Search(rawValue: "imported")
        /// Counts set by rate control (`encoding.rate_control`), not by the threshold.
        public static let rate = Search(rawValue: "rate")
    }

    /// How frames were fitted to the model's size (§4 `encoding.fit`): `crop`, `pad`, `stretch`. Open.
    public struct Fit: RawRepresentable, Codable, Sendable, Equatable, Hashable {
        /// The name as written in the JSON.
        public var rawValue: String
        /// Wraps a name.
        public init(rawValue: String) { self.rawValue = rawValue }
        /// Centre crop to the model's aspect, then scale.
        public static let crop = Fit(rawValue: "crop")
        /// Letterbox.
        public static let pad = Fit(rawValue: "pad")
        /// Scale without keeping the aspect.
        public static let stretch = Fit(rawValue: "stretch")
    }

    /// §4 `encoding`: the settings the stream was made with.
    public struct Encoding: Codable, Sendable, Equatable {
        /// Reconstruction MSE bound on the [−1, 1] pixel scale.
        public var threshold: Double
        /// The search that picked kept counts.
        public var search: Search
        /// The budget when `search` is `fixed`.
        public var fixedTokens: Int?
        /// How frames were fitted to the model size.
        public var fit: Fit?
        /// Resampling rate, or nil for the source's rate.
        public var fps: Double?
        /// Blocks per chunk: the context resets every this many blocks (§5).
        public var chunkBlocks: Int
        /// How chunk token data is coded (§6).
        public var tokenCoding: TokenCoding
        /// The rate-control target (§4 `encoding.rate_control`, 1.2); nil, and absent from the
        /// JSON, when the threshold alone set the budgets.
        public var rateControl: RateControl?
        /// What the model computed in (§4 `encoding.precision`): "bf16", or nil (absent from the
        /// JSON) for float32. A decoder computes in it to reproduce the encoder's reconstruction.
        public var precision: String?
        /// §4 `encoding.repeat_blocks` (1.2): true when a block may keep 0 tokens, a *repeat block*
        /// (§5) that shows the previous block's last frame again. nil, and absent from the JSON,
        /// otherwise (then a block keeping 0 tokens is damage, as before 1.2).
        public var repeatBlocks: Bool?

        /// Whether the stream declares repeat blocks (§4 `encoding.repeat_blocks` is `true`).
        public var declaresRepeats: Bool { repeatBlocks == true }

        /// All fields; optional ones default to nil.
        public init(threshold: Double, search: Search, fixedTokens: Int? = nil, fit: Fit? = nil,
                    fps: Double? = nil, chunkBlocks: Int, tokenCoding: TokenCoding, rateControl: RateControl? = nil,
                    precision: String? = nil, repeatBlocks: Bool? = nil) {
            self.threshold = threshold
            self.search = search
            self.fixedTokens = fixedTokens
            self.fit = fit
            self.fps = fps
            self.chunkBlocks = chunkBlocks
            self.tokenCoding = tokenCoding
            self.rateControl = rateControl
            self.precision = precision
            self.repeatBlocks = repeatBlocks
        }

        enum CodingKeys: String, CodingKey {
            case threshold, search, fixedTokens = "fixed_tokens", fit, fps
            case chunkBlocks = "chunk_blocks", tokenCoding = "token_coding", rateControl = "rate_control"
            case precision
            case repeatBlocks = "repeat_blocks"
        }

        /// Writes every key, absent optionals as `null`, except `rate_control`, `precision` and
        /// `repeat_blocks`, written only when present (so a float32 stream without them is
        /// byte-identical to a 1.1 writer's).
        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(threshold, forKey: .threshold)
            try c.encode(search, forKey: .search)
            try c.encode(fixedTokens, forKey: .fixedTokens)
            try c.encode(fit, forKey: .fit)
            try c.encode(fps, forKey: .fps)
            try c.encode(chunkBlocks, forKey: .chunkBlocks)
            try c.encode(tokenCoding, forKey: .tokenCoding)
            try c.encodeIfPresent(rateControl, forKey: .rateControl)
            try c.encodeIfPresent(precision, forKey: .precision)
            try c.encodeIfPresent(repeatBlocks, forKey: .repeatBlocks)
        }
    }

    /// §4 `encoding.rate_control`: what the encoder aimed at instead of (or on top of) the threshold.
    public struct RateControl: Codable, Sendable, Equatable {
        /// The rate-control mode. Open, so a newer writer's mode still reads.
        public struct Mode: RawRepresentable, Codable, Sendable, Equatable, Hashable {
            public var rawValue: String
            public init(rawValue: String) { self.rawValue = rawValue }
            /// `target` is a mean rate, tokens per second of media (one pass).
            public static let tokensPerSecond = Mode(rawValue: "tokens_per_second")
            /// `target` is the file's total tokens (two passes).
            public static let budget = Mode(rawValue: "budget")
            /// `target` is a cap on each chunk's tokens, on top of the threshold search.
            public static let maxTokensPerChunk = Mode(rawValue: "max_tokens_per_chunk")
        }
        public var mode: Mode
        public var target: Double
        /// A cap on each chunk's tokens that was never exceeded, or nil.
        public var maxTokensPerChunk: Int?
        /// What the allocation minimised when not the summed MSE (`psnr`: the mean PSNR); informative.
        public var objective: String?

        public init(mode: Mode, target: Double, maxTokensPerChunk: Int? = nil, objective: String? = nil) {
            self.mode = mode
            self.target = target
            self.maxTokensPerChunk = maxTokensPerChunk
            self.objective = objective
        }

        enum CodingKeys: String, CodingKey {
            case mode, target, maxTokensPerChunk = "max_tokens_per_chunk", objective
        }
    }

    /// §4 `source`: where the frames came from. Only `time_base` is required.
    public struct Source: Codable, Sendable, Equatable {
        /// Input name (file name or `-`).
        public var name: String?
        /// Source frame width in pixels.
        public var width: Int?
        /// Source frame height in pixels.
        public var height: Int?
        /// Unit of every `pts` in the file, in seconds.
        public var timeBase: Rational
        /// Frame rate, if known.
        public var fps: Rational?
        /// Duration in seconds, if known.
        public var duration: Double?

        /// All fields; optional ones default to nil.
        public init(name: String? = nil, width: Int? = nil, height: Int? = nil, timeBase: Rational,
                    fps: Rational? = nil, duration: Double? = nil) {
            self.name = name
            self.width = width
            self.height = height
            self.timeBase = timeBase
            self.fps = fps
            self.duration = duration
        }

        enum CodingKeys: String, CodingKey {
            case name, width, height, timeBase = "time_base", fps, duration
        }

        /// Writes every key; absent optionals as `null`.
        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(name, forKey: .name)
            try c.encode(width, forKey: .width)
            try c.encode(height, forKey: .height)
            try c.encode(timeBase, forKey: .timeBase)
            try c.encode(fps, forKey: .fps)
            try c.encode(duration, forKey: .duration)
        }
    }
}
