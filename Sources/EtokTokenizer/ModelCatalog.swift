import EtokFormat
import EtokMedia
import EtokModel
import EtokTensor
import Foundation

/// A loaded model and its identity (what `.etok` headers record, docs/etok-format.md §4).
public struct LoadedModel: @unchecked Sendable {
    public let model: ElasticTokModel
    /// The weights file and its hex SHA-256.
    public let path: String
    public let sha256: String
    /// The threshold this model was calibrated for (safetensors metadata "etok_threshold"), if any:
    /// the encoder's default when no --threshold is given.
    public let calibratedThreshold: Float?
    /// Set when `--precision auto` fell back to fp32 on a large model (`PrecisionChoice.fallback`).
    public var precisionNote: String? = nil
    /// A short name: the file name without extension.
    public var name: String { URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent }

    /// The header's model section for streams made with this model.
    public var headerModel: EtokHeader.Model {
        let c = model.config
        return EtokHeader.Model(name: name, sha256: sha256, imageSize: [c.imageSize.height, c.imageSize.width],
                                patchSize: c.patchSize, framesPerBlock: c.framesPerBlock, minToks: c.minToks,
                                maxToks: c.maxToks, contextBlocks: c.contextBlocks,
                                bottleneck: c.isFSQ ? .fsq : .vae,
                                fsqQuantLevels: c.isFSQ ? c.fsqQuantLevels : nil,
                                vaeBottleneckDim: c.isFSQ ? nil : c.vaeBottleneckDim)
    }
}

/// Finds and loads models: the default model that ships with etok, or a file the user names.
public enum ModelCatalog {
    /// Safetensors metadata key of a model's calibrated threshold (an MSE, as a decimal string).
    public static let thresholdKey = "etok_threshold"

    /// File name of the bundled default model.
    public static let defaultFileName = "default.safetensors"

    /// Where the default model is looked for, in order: the resource bundle beside the executable
    /// (how SwiftPM installs resources), `../share/etok/` beside it (an installed layout), and this
    /// source tree's `Resources/` (a development checkout).
    public static var defaultModelCandidates: [String] {
        var candidates: [String] = []
        if let exe = Bundle.main.executableURL?.resolvingSymlinksInPath().deletingLastPathComponent() {
            candidates.append(exe.appendingPathComponent("etok_EtokTokenizer.resources/\(defaultFileName)").path)
            candidates.append(exe.appendingPathComponent("../share/etok/\(defaultFileName)").standardized.path)
        }
        let sourceTree = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        candidates.append(sourceTree.appendingPathComponent("Resources/\(defaultFileName)").path)
        return candidates
    }

    /// The default model's path, or an error listing where it was looked for.
    public static func defaultModelPath() throws -> String {
        let candidates = defaultModelCandidates
        guard let found = candidates.first(where: { FileManager.default.isReadableFile(atPath: $0) }) else {
            throw TokenizerError.noDefaultModel(searched: candidates)
        }
        return found
    }

    /// Loads `path`, or the default model when nil, in `precision` (auto: by the model's size and
    /// the CPU, `PrecisionChoice`), and hashes its bytes.
    public static func load(path: String?, precision: PrecisionChoice = .auto) throws -> LoadedModel {
        let file = try path ?? defaultModelPath()
        let safetensors = try SafeTensorsFile(path: file)
        var resolved = Precision.fp32
        var note: String?
        if precision != .fp32, let json = safetensors.metadata["config"] {
            // The config decides auto; a bad one fails in the load below with its own message.
            let parameters = (try? ModelConfig.parse(json: json, file: file)).map(ModelWeights.parameterCount) ?? 0
            resolved = precision.resolve(parameters: parameters)
            note = precision.fallback(parameters: parameters)
        }
        let model = try ElasticTokModel.load(safetensors, precision: resolved)
        var threshold: Float?
        if let text = model.metadata[thresholdKey] {
            guard let value = Float(text), value > 0, value.isFinite else {
                throw ModelError.badHeader(file: file, message: "metadata \(thresholdKey) \"\(text)\" is not a positive number")
            }
            threshold = value
        }
        return LoadedModel(model: model, path: file, sha256: try FileDigest.sha256(ofFileAt: file),
                           calibratedThreshold: threshold, precisionNote: note)
    }

}

extension LoadedModel {
    /// The same model file loaded again in `precision` (a decoder following its stream's header).
    public func reloaded(precision: Precision) throws -> LoadedModel {
        try ModelCatalog.load(path: path, precision: precision == .bf16 ? .bf16 : .fp32)
    }
}

extension ModelCatalog {
    /// Checks that `header` was made with `loaded`'s weights; `allowMismatch` turns a different
    /// SHA-256 into no error (the decoder still checks every shape it relies on).
    public static func check(_ header: EtokHeader, file: String, against loaded: LoadedModel,
                             allowMismatch: Bool = false) throws {
        if header.model.sha256 != loaded.sha256 && !allowMismatch {
            throw TokenizerError.modelMismatch(file: file, expected: header.model.sha256, found: loaded.sha256)
        }
    }
}
