import Foundation

extension EtokHeader {
    /// Limits a reader enforces on the header (§4, "Limits"), so that corrupted or hostile values
    /// cannot make it allocate absurd sizes.
    public enum Limits {
        /// FSQ dimensions `D`: 1 ... 16.
        public static let fsqDimensions = 1...16
        /// Each FSQ level `L_d`: 2 ... 16, what the token coding codes (`FSQTokenCoder.maxLevel`, §6.3).
        public static let fsqLevel = 2...FSQTokenCoder.maxLevel
        /// `vae_bottleneck_dim`: 1 ... 65535.
        public static let vaeDim = 1...65535
        /// `max_toks`: 1 ... 65535 (a `kept` count is a `u16`, §5).
        public static let maxToks = 1...65535
        /// `frames_per_block`: 1 ... 65535 (`frames` is a `u16`, §5).
        public static let framesPerBlock = 1...65535
        /// `chunk_blocks`: 1 ... 2^32 − 1 (`block_count` is a `u32`, §5).
        public static let chunkBlocks = 1...Int(UInt32.max)
    }

    /// The JSON payload of `HEAD` for this header: UTF-8, sorted keys, optionals as `null`. The same
    /// header always gives the same bytes.
    public func jsonBytes() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding plain structs of strings and numbers cannot fail except for non-finite doubles,
        // which `validate` refuses before the writer gets here.
        return (try? [UInt8](encoder.encode(self))) ?? []
    }

    /// Parses and validates a `HEAD` payload (§4).
    /// - Throws: `FormatError.badHeader` naming the first offending key (dotted path).
    public static func decode(_ json: [UInt8], file: String) throws(FormatError) -> EtokHeader {
        let header: EtokHeader
        do {
            header = try JSONDecoder().decode(EtokHeader.self, from: Data(json))
        } catch let error as DecodingError {
            throw FormatError.badHeader(file: file, key: error.keyPath, message: error.briefMessage)
        } catch {
            throw FormatError.badHeader(file: file, key: "(root)", message: "\(error)")
        }
        try header.validate(file: file)
        return header
    }

    /// Checks the values §4 constrains and the reader limits. Called by the reader after decoding and
    /// by the writer before writing.
    /// - Throws: `FormatError.badHeader` naming the offending key.
    public func validate(file: String) throws(FormatError) {
        func bad(_ key: String, _ message: String) -> FormatError {
            .badHeader(file: file, key: key, message: message)
        }
        let m = model
        if m.imageSize.count != 2 || m.imageSize.contains(where: { $0 < 1 }) {
            throw bad("model.image_size", "expected [H, W] of positive integers, got \(m.imageSize)")
        }
        if m.patchSize.count != 3 || m.patchSize.contains(where: { $0 < 1 }) {
            throw bad("model.patch_size", "expected [Tp, Hp, Wp] of positive integers, got \(m.patchSize)")
        }
        if !Limits.framesPerBlock.contains(m.framesPerBlock) {
            throw bad("model.frames_per_block", "\(m.framesPerBlock) is outside \(Limits.framesPerBlock)")
        }
        if !Limits.maxToks.contains(m.maxToks) {
            throw bad("model.max_toks", "\(m.maxToks) is outside \(Limits.maxToks)")
        }
        if m.minToks < 0 || m.minToks > m.maxToks {
            throw bad("model.min_toks", "\(m.minToks) is outside 0...max_toks (\(m.maxToks))")
        }
        if let c = m.contextBlocks, c < 1 {
            throw bad("model.context_blocks", "\(c) is not positive")
        }
        switch m.bottleneck {
        case .fsq:
            guard let levels = m.fsqQuantLevels else { throw bad("model.fsq_quant_levels", "required for an FSQ model") }
            if !Limits.fsqDimensions.contains(levels.count) {
                throw bad("model.fsq_quant_levels", "\(levels.count) dimensions is outside \(Limits.fsqDimensions)")
            }
            if let l = levels.first(where: { !Limits.fsqLevel.contains($0) }) {
                throw bad("model.fsq_quant_levels", "level \(l) is outside \(Limits.fsqLevel) (the levels rc-fsq-2 codes, §6.3)")
            }
            var product = 1
            for l in levels {
                product *= l
                if product > Int(Int32.max) { throw bad("model.fsq_quant_levels", "codebook larger than 2^31 − 1") }
            }
            if encoding.tokenCoding != .rcFSQ2 {
                throw bad("encoding.token_coding", "\(encoding.tokenCoding.rawValue) does not fit an FSQ model")
            }
        case .vae:
            guard let dim = m.vaeBottleneckDim else { throw bad("model.vae_bottleneck_dim", "required for a VAE model") }
            if !Limits.vaeDim.contains(dim) {
                throw bad("model.vae_bottleneck_dim", "\(dim) is outside \(Limits.vaeDim)")
            }
            if encoding.tokenCoding != .f16v1 {
                throw bad("encoding.token_coding", "\(encoding.tokenCoding.rawValue) does not fit a VAE model")
            }
        }
        if !encoding.threshold.isFinite { throw bad("encoding.threshold", "not a finite number") }
        if let fps = encoding.fps, !fps.isFinite || fps <= 0 { throw bad("encoding.fps", "\(fps) is not a positive rate") }
        if let rate = encoding.rateControl, !rate.target.isFinite || rate.target <= 0 {
            throw bad("encoding.rate_control.target", "\(rate.target) is not a positive number")
        }
        if !Limits.chunkBlocks.contains(encoding.chunkBlocks) {
            throw bad("encoding.chunk_blocks", "\(encoding.chunkBlocks) is outside \(Limits.chunkBlocks)")
        }
        if source.timeBase.num < 1 || source.timeBase.den < 1 {
            throw bad("source.time_base", "[\(source.timeBase.num), \(source.timeBase.den)] is not a positive rational")
        }
        if let fps = source.fps, fps.num < 1 || fps.den < 1 {
            throw bad("source.fps", "[\(fps.num), \(fps.den)] is not a positive rational")
        }
        if let d = source.duration, !d.isFinite { throw bad("source.duration", "not a finite number") }
    }

    /// The minor version a file with this header is written as (§2): the lowest that has what the
    /// header declares, so a stream without repeat blocks has the bytes a 1.1 writer gave it.
    public var minorVersion: UInt16 {
        encoding.declaresRepeats ? EtokFormat.repeatBlocksMinorVersion : EtokFormat.minorVersion
    }

    /// Tokens per row of the model's token grid, `W` of §6.3: `image_size[1] div patch_size[2]`, at
    /// least 1.
    public var tokenGridWidth: Int {
        guard model.imageSize.count == 2, model.patchSize.count == 3, model.patchSize[2] > 0 else { return 1 }
        return max(1, model.imageSize[1] / model.patchSize[2])
    }

    /// FSQ levels, or empty for a VAE model.
    public var fsqLevels: [Int] { model.bottleneck == .fsq ? (model.fsqQuantLevels ?? []) : [] }

    /// Number of distinct FSQ indices `Π L_d` (0 for a VAE model).
    public var fsqCodebookSize: Int { fsqLevels.isEmpty ? 0 : fsqLevels.reduce(1, *) }

    /// Values per kept token in `Chunk` token arrays: 1 for FSQ, `vae_bottleneck_dim` for VAE.
    public var valuesPerToken: Int { model.bottleneck == .fsq ? 1 : (model.vaeBottleneckDim ?? 1) }
}

extension DecodingError {
    /// The dotted path of the key the error is about (`model.max_toks`, `source.time_base[1]`).
    var keyPath: String {
        var path: [CodingKey]
        switch self {
        case .keyNotFound(let key, let context): path = context.codingPath + [key]
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            path = context.codingPath
        @unknown default: path = []
        }
        var s = ""
        for key in path {
            if let i = key.intValue { s += "[\(i)]" } else { s += (s.isEmpty ? "" : ".") + key.stringValue }
        }
        return s.isEmpty ? "(root)" : s
    }

    /// What is wrong, briefly.
    var briefMessage: String {
        switch self {
        case .keyNotFound: return "required key missing"
        case .typeMismatch(let type, _): return "expected \(type)"
        case .valueNotFound(let type, _): return "expected \(type), got null"
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty ? "not valid JSON" : context.debugDescription
        @unknown default: return "undecodable"
        }
    }
}
