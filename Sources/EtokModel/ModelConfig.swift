// ModelConfig: the architecture of one ElasticTok model, parsed from the JSON that model files
// carry in their safetensors metadata under "config" (official field names, plus etok_ fields).
import Foundation

/// Architecture of one ElasticTok model, with the official field names (camel-cased here).
///
/// A config that has only the official fields is accepted; etok's own fields are prefixed
/// `etok_` in JSON and optional. Unknown official-looking keys (training knobs) are ignored;
/// unknown `etok_` keys are an error (a typo, or a newer etok). Immutable value.
public struct ModelConfig: Sendable, Equatable {
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var numEncoderLayers: Int
    public var numDecoderLayers: Int
    public var numAttentionHeads: Int
    /// RMSNorm epsilon as the file gives it (added in float32, rounded once, as the reference does).
    public var rmsNormEps: Double
    /// (Tp, Hp, Wp).
    public var patchSize: [Int]
    public var framesPerBlock: Int
    public var minToks: Int
    /// Tokens per block.
    public var maxToks: Int
    /// "fsq" or "vae".
    public var bottleneckType: String
    public var fsqQuantLevels: [Int]
    public var vaeBottleneckDim: Int?
    /// RoPE base.
    public var theta: Double
    /// The context in tokens: a whole number of blocks.
    public var maxSequenceLength: Int
    /// etok_image_size [H, W]; nil: square, derived from max_toks.
    public var etokImageSize: [Int]?

    /// A config from its fields (not validated: call `validate(file:)`, as `parse` does).
    public init(hiddenSize: Int, intermediateSize: Int, numEncoderLayers: Int, numDecoderLayers: Int,
                numAttentionHeads: Int, rmsNormEps: Double, patchSize: [Int], framesPerBlock: Int, minToks: Int,
                maxToks: Int, bottleneckType: String, fsqQuantLevels: [Int], vaeBottleneckDim: Int?, theta: Double,
                maxSequenceLength: Int, etokImageSize: [Int]?) {
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.numEncoderLayers = numEncoderLayers
        self.numDecoderLayers = numDecoderLayers
        self.numAttentionHeads = numAttentionHeads
        self.rmsNormEps = rmsNormEps
        self.patchSize = patchSize
        self.framesPerBlock = framesPerBlock
        self.minToks = minToks
        self.maxToks = maxToks
        self.bottleneckType = bottleneckType
        self.fsqQuantLevels = fsqQuantLevels
        self.vaeBottleneckDim = vaeBottleneckDim
        self.theta = theta
        self.maxSequenceLength = maxSequenceLength
        self.etokImageSize = etokImageSize
    }

    /// True for an FSQ bottleneck.
    public var isFSQ: Bool { bottleneckType == "fsq" }
    /// Head size: hidden / heads.
    public var headDim: Int { hiddenSize / numAttentionHeads }
    /// Values per patch: Tp·Hp·Wp·3.
    public var patchDim: Int { patchSize[0] * patchSize[1] * patchSize[2] * 3 }
    /// Width of z (the decoder's input): the FSQ dimensions, or the VAE latent size.
    public var codeDim: Int { isFSQ ? fsqQuantLevels.count : (vaeBottleneckDim ?? 0) }
    /// Width of the encoder's pre_quant output (2·dim for a VAE: mean then log-variance).
    public var preQuantDim: Int { isFSQ ? codeDim : 2 * codeDim }
    /// Tokens per block (= max_toks).
    public var tokensPerBlock: Int { maxToks }
    /// The context in blocks.
    public var contextBlocks: Int { maxSequenceLength / maxToks }
    /// Frames per block divided by Tp.
    public var temporalPatches: Int { framesPerBlock / patchSize[0] }
    /// FSQ codebook size (product of the levels).
    public var codebookSize: Int { fsqQuantLevels.reduce(1, *) }
    /// The index of the all-zero FSQ code (what a token that is not kept gets).
    public var maskedIndex: Int32 {
        FSQLevelsInfo.maskedIndex(levels: fsqQuantLevels)
    }

    /// Frame size (H, W): etok_image_size, or the square one max_toks implies.
    public var imageSize: (height: Int, width: Int) {
        if let s = etokImageSize { return (s[0], s[1]) }
        let side = Int(Double(maxToks / temporalPatches).squareRoot().rounded())
        return (side * patchSize[1], side * patchSize[2])
    }

    /// Token grid of one block: (frames / Tp, H / Hp, W / Wp).
    public var grid: (t: Int, h: Int, w: Int) {
        let s = imageSize
        return (temporalPatches, s.height / patchSize[1], s.width / patchSize[2])
    }

    /// The default model's architecture (128×128, patch (1,8,8), 256 tokens per block, hidden 256,
    /// MLP 512, 4+4 layers, 4 heads, FSQ (8,8,8,5,5,5), a context of 4 blocks).
    public static let etokDefault = ModelConfig(
        hiddenSize: 256, intermediateSize: 512, numEncoderLayers: 4, numDecoderLayers: 4,
        numAttentionHeads: 4, rmsNormEps: 1e-6, patchSize: [1, 8, 8], framesPerBlock: 1, minToks: 16,
        maxToks: 256, bottleneckType: "fsq", fsqQuantLevels: [8, 8, 8, 5, 5, 5], vaeBottleneckDim: nil,
        theta: 10000, maxSequenceLength: 1024, etokImageSize: [128, 128])

    /// Parses and validates a config JSON object. `file` names the source in errors.
    public static func parse(json: String, file: String) throws -> ModelConfig {
        guard let data = json.data(using: .utf8),
              let any = try? JSONSerialization.jsonObject(with: data),
              let object = any as? [String: Any]
        else { throw ModelError.badConfig(file: file, field: "config", message: "not a JSON object") }
        return try parse(object: object, file: file)
    }

    /// Parses and validates an already decoded JSON object.
    public static func parse(object d: [String: Any], file: String) throws -> ModelConfig {
        func fail(_ field: String, _ message: String) -> ModelError {
            .badConfig(file: file, field: field, message: message)
        }
        func int(_ key: String, _ value: Any) throws -> Int {
            switch JSONNumber.integer(value) {
            case .value(let v)?: return v
            case .outOfRange?:
                let range = integerFields[key].map { " (allowed: \($0.lowerBound)...\($0.upperBound))" } ?? ""
                throw fail(key, "\(value) is out of range\(range)")
            case nil: throw fail(key, "expected an integer, got \(value)")
            }
        }
        func required(_ key: String) throws -> Int {
            guard let v = d[key] else { throw fail(key, "missing") }
            return try int(key, v)
        }
        func double(_ key: String, default value: Double) throws -> Double {
            guard let v = d[key] else { return value }
            guard let n = JSONNumber.double(v), n.isFinite else { throw fail(key, "expected a finite number, got \(v)") }
            return n
        }
        func intList(_ key: String) throws -> [Int]? {
            guard let v = d[key], !(v is NSNull) else { return nil }
            guard let list = v as? [Any] else { throw fail(key, "expected a list of integers") }
            let most = ModelLimits.fsqDimensions.upperBound   // the longest list a config has
            guard list.count <= most else { throw fail(key, "has \(list.count) entries, at most \(most) make sense") }
            return try list.map { try int(key, $0) }
        }
        for key in d.keys where key.hasPrefix("etok_") && key != "etok_image_size" {
            throw fail(key, "unknown etok field")
        }
        guard let patch = try intList("patch_size") else { throw fail("patch_size", "missing") }
        let bottleneck = d["bottleneck_type"].map { "\($0)" } ?? "fsq"
        var vaeDim: Int?
        if let v = d["vae_bottleneck_dim"], !(v is NSNull) { vaeDim = try int("vae_bottleneck_dim", v) }
        let config = ModelConfig(
            hiddenSize: try required("hidden_size"),
            intermediateSize: try required("intermediate_size"),
            numEncoderLayers: try required("num_encoder_layers"),
            numDecoderLayers: try required("num_decoder_layers"),
            numAttentionHeads: try required("num_attention_heads"),
            rmsNormEps: try double("rms_norm_eps", default: 1e-6),
            patchSize: patch,
            framesPerBlock: try required("frames_per_block"),
            minToks: try required("min_toks"),
            maxToks: try required("max_toks"),
            bottleneckType: bottleneck,
            fsqQuantLevels: try intList("fsq_quant_levels") ?? [8, 8, 8, 5, 5, 5],
            vaeBottleneckDim: vaeDim,
            theta: try double("theta", default: 10000),
            maxSequenceLength: try required("max_sequence_length"),
            etokImageSize: try intList("etok_image_size"))
        try config.validate(file: file)
        return config
    }

    /// The allowed range of every integer field (`ModelLimits`), by JSON name.
    static let integerFields: [String: ClosedRange<Int>] = [
        "hidden_size": ModelLimits.hiddenSize, "intermediate_size": ModelLimits.intermediateSize,
        "num_encoder_layers": ModelLimits.layers, "num_decoder_layers": ModelLimits.layers,
        "num_attention_heads": ModelLimits.attentionHeads, "patch_size": ModelLimits.patchSide,
        "frames_per_block": ModelLimits.framesPerBlock, "min_toks": 0...ModelLimits.tokensPerBlock.upperBound,
        "max_toks": ModelLimits.tokensPerBlock, "fsq_quant_levels": ModelLimits.fsqLevel,
        "vae_bottleneck_dim": ModelLimits.vaeDimension, "max_sequence_length": ModelLimits.sequenceLength,
        "etok_image_size": ModelLimits.imageSide,
    ]

    /// Checks every field against `ModelLimits` and every consistency rule (the reference's
    /// `validate`), naming the field at fault. Ranges are checked before anything is derived
    /// from them, so no config can make a later computation overflow or divide by zero.
    public func validate(file: String) throws {
        func need(_ ok: Bool, _ field: String, _ message: @autoclosure () -> String) throws {
            if !ok { throw ModelError.badConfig(file: file, field: field, message: message()) }
        }
        func inRange(_ value: Int, _ field: String) throws {
            let range = Self.integerFields[field]!
            try need(range.contains(value), field, "\(value) is out of range (allowed: \(range.lowerBound)...\(range.upperBound))")
        }
        try inRange(hiddenSize, "hidden_size")
        try inRange(intermediateSize, "intermediate_size")
        try inRange(numAttentionHeads, "num_attention_heads")
        try inRange(numEncoderLayers, "num_encoder_layers")
        try inRange(numDecoderLayers, "num_decoder_layers")
        try inRange(framesPerBlock, "frames_per_block")
        try inRange(maxToks, "max_toks")
        try inRange(maxSequenceLength, "max_sequence_length")
        try need(patchSize.count == 3, "patch_size", "must be three integers (Tp, Hp, Wp)")
        for side in patchSize { try inRange(side, "patch_size") }
        try need(minToks >= 0 && minToks <= maxToks, "min_toks", "must be in [0, max_toks]")
        try need(rmsNormEps > 0 && rmsNormEps < 1, "rms_norm_eps", "must be in (0, 1)")
        try need(theta > 0 && theta.isFinite, "theta", "must be a positive finite number")
        try need(bottleneckType == "fsq" || bottleneckType == "vae", "bottleneck_type", "must be 'fsq' or 'vae'")
        // The levels are read for both bottlenecks (the masked index), so they are always checked.
        try need(ModelLimits.fsqDimensions.contains(fsqQuantLevels.count), "fsq_quant_levels",
                 "must list \(ModelLimits.fsqDimensions.lowerBound)...\(ModelLimits.fsqDimensions.upperBound) levels")
        for level in fsqQuantLevels { try inRange(level, "fsq_quant_levels") }
        let product = fsqQuantLevels.reduce(1.0) { $0 * Double($1) }
        try need(product <= Double(Int32.max), "fsq_quant_levels", "codebook must fit in int32")
        if !isFSQ {
            try need(vaeBottleneckDim != nil, "vae_bottleneck_dim", "must be given for bottleneck_type 'vae'")
            try inRange(vaeBottleneckDim ?? 0, "vae_bottleneck_dim")
        }
        try need(hiddenSize % numAttentionHeads == 0, "num_attention_heads", "must divide hidden_size \(hiddenSize)")
        try need(headDim % 2 == 0, "num_attention_heads", "head size must be even for RoPE")
        try need(framesPerBlock % patchSize[0] == 0, "frames_per_block", "must be a multiple of patch_size[0] = \(patchSize[0])")
        try need(maxSequenceLength % maxToks == 0, "max_sequence_length", "must be a whole number of blocks of max_toks = \(maxToks)")
        try need(maxToks % temporalPatches == 0, "max_toks", "must be a multiple of frames_per_block / patch_size[0]")
        let perFrame = maxToks / temporalPatches
        if let s = etokImageSize {
            try need(s.count == 2, "etok_image_size", "must be [H, W]")
            for side in s { try inRange(side, "etok_image_size") }
            try need(s[0] % patchSize[1] == 0 && s[1] % patchSize[2] == 0, "etok_image_size",
                     "must be multiples of the patch (\(patchSize[1]), \(patchSize[2]))")
            try need((s[0] / patchSize[1]) * (s[1] / patchSize[2]) == perFrame, "etok_image_size",
                     "gives \((s[0] / patchSize[1]) * (s[1] / patchSize[2])) tokens per frame, max_toks wants \(perFrame)")
        } else {
            let side = Int(Double(perFrame).squareRoot().rounded())
            try need(side * side == perFrame, "max_toks", "gives a non-square token grid; set etok_image_size")
            let size = imageSize
            try need(ModelLimits.imageSide.contains(size.height) && ModelLimits.imageSide.contains(size.width), "max_toks",
                     "implies \(size.width)x\(size.height) frames, larger than \(ModelLimits.imageSide.upperBound) a side")
        }
        let state = streamStateBytes
        try need(state <= Double(ModelLimits.streamStateBudget), "max_sequence_length",
                 "\(maxSequenceLength) tokens of context need \(String(format: "%.1f", state / Double(1 << 30))) GiB of "
                 + "per-stream state (key/value caches), over etok's budget of \(ModelLimits.streamStateBudget >> 30) GiB")
    }

    /// The config as JSON with the official field names (plus etok_image_size when set),
    /// keys sorted.
    public func jsonString() -> String {
        var d: [String: Any] = [
            "hidden_size": hiddenSize, "intermediate_size": intermediateSize,
            "num_encoder_layers": numEncoderLayers, "num_decoder_layers": numDecoderLayers,
            "num_attention_heads": numAttentionHeads, "rms_norm_eps": rmsNormEps,
            "patch_size": patchSize, "frames_per_block": framesPerBlock, "min_toks": minToks,
            "max_toks": maxToks, "bottleneck_type": bottleneckType, "fsq_quant_levels": fsqQuantLevels,
            "theta": theta, "max_sequence_length": maxSequenceLength,
        ]
        if let v = vaeBottleneckDim { d["vae_bottleneck_dim"] = v }
        if let s = etokImageSize { d["etok_image_size"] = s }
        let data = (try? JSONSerialization.data(withJSONObject: d, options: [.sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }
}

/// FSQ facts that depend only on the levels.
public enum FSQLevelsInfo {
    /// Σ_d (L_d div 2) · basis_d: the index of the all-zero code (32036 for (8,8,8,5,5,5)).
    public static func maskedIndex(levels: [Int]) -> Int32 {
        var basis = 1, index = 0
        for l in levels { index += (l / 2) * basis; basis *= l }
        return Int32(truncatingIfNeeded: index)
    }
}

/// Numbers from JSONSerialization, with booleans refused (Foundation bridges JSON true/false to
/// NSNumber, which would otherwise read as 1 and 0).
enum JSONNumber {
    /// An integral JSON number: its value when a Double holds it exactly (|v| <= 2^53), else
    /// out of range (no field etok reads comes near 2^53).
    enum Integer: Equatable {
        case value(Int)
        case outOfRange
    }

    static func double(_ value: Any) -> Double? {
        guard let n = value as? NSNumber, String(cString: n.objCType) != "c" else { return nil }
        return n.doubleValue
    }

    /// nil when `value` is not an integral number.
    static func integer(_ value: Any) -> Integer? {
        guard let v = double(value), v.isFinite, v == v.rounded() else { return nil }
        return Swift.abs(v) <= 0x1p53 ? .value(Int(v)) : .outOfRange
    }
}
