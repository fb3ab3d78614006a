/// Errors of the tokenizer layer (settings, model/stream mismatches, ranges). Errors of the layers
/// below (MediaError, FormatError, ModelError, PipelineError) pass through unchanged.
public enum TokenizerError: Error, CustomStringConvertible, Equatable {
    /// A setting that does not fit the model or the input (the message names it).
    case badSetting(String)
    /// The .etok stream was made with another model than the one given.
    case modelMismatch(file: String, expected: String, found: String)
    /// The stream and the model disagree on a fact the decoder needs (the message names it).
    case incompatibleStream(file: String, message: String)
    /// No default model is bundled with this build, and no --model was given.
    case noDefaultModel(searched: [String])
    /// A frame or time range selects nothing in the stream.
    case emptyRange(file: String, range: String)

    public var description: String {
        switch self {
        case .badSetting(let message):
            return message
        case .modelMismatch(let file, let expected, let found):
            return "\(file): made with model sha256 \(expected.prefix(12))…, but the model given is \(found.prefix(12))…; pass the right --model (or --ignore-model-mismatch)"
        case .incompatibleStream(let file, let message):
            return "\(file): \(message)"
        case .noDefaultModel(let searched):
            return "no default model found (looked in \(searched.joined(separator: ", "))); pass --model FILE.safetensors"
        case .emptyRange(let file, let range):
            return "\(file): \(range) selects no frames"
        }
    }
}
