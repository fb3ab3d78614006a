/// Why `etok import` refused its input: a token sequence that is not one the model can decode, or a
/// file that is not a token sequence as `etok export` writes it.
///
/// Every case names the file; `description` is one line: the file, where in it (`line 3` of JSON
/// lines, `entry 3` of an npy folder), and the problem. Problems with the output, the model or the
/// command line are reported with the errors of those layers (`MediaError`, `ModelError`,
/// `TokenizerError.badSetting`).
public enum TokenImportError: Error, CustomStringConvertible, Equatable, Sendable {
    /// One line or block is unusable: malformed JSON, a kept count outside `min_toks…max_toks`, a
    /// token count that differs from `kept`, an FSQ index outside the codebook, a time that does not
    /// follow the one before. `location` is `line N` (1-based) or `block N`.
    case badBlock(file: String, location: String, message: String)
    /// The input as a whole is unusable: no blocks, an npy folder without its arrays, arrays whose
    /// lengths disagree.
    case badInput(file: String, message: String)
    /// The input holds no block at all (an empty file or stdin).
    case emptyInput(file: String)

    /// The file the error is about.
    public var file: String {
        switch self {
        case .badBlock(let file, _, _), .badInput(let file, _), .emptyInput(let file): return file
        }
    }

    /// One line: the file, where, and the problem.
    public var description: String {
        switch self {
        case .badBlock(let file, let location, let message): return "\(file): \(location): \(message)"
        case .badInput(let file, let message): return "\(file): \(message)"
        case .emptyInput(let file): return "\(file): no blocks (the input is empty)"
        }
    }
}
