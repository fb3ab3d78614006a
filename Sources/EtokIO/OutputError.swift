#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Everything that can go wrong while placing, writing or committing an output: the one I/O error
/// of every writer in etok (`.etok` streams, video, PNG, JSON, .npy). Each case names the output as
/// the user gave it (`stdout` for `-`), so `description` is a complete one-line message; the
/// library classifies each case once (`ErrorReport`, EtokTokenizer); the command and the C ABI map
/// that category to an exit status or a status code.
public enum OutputError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The output exists and replacing it was not allowed (`-y`).
    case exists(file: String)
    /// The name was free when the run started and taken when it ended; without `-y` it was left
    /// as it is, and this run's output was removed.
    case appeared(file: String)
    /// The output names a file the run reads (its input, its model): writing it would destroy it.
    case isInput(file: String, role: String)
    /// The output cannot be created (missing folder, no permission, a directory in the way).
    case cannotCreate(file: String, message: String)
    /// Writing failed (a full disk, an I/O error).
    case writeFailed(file: String, message: String)
    /// The reader of the output pipe went away (EPIPE).
    case closed(file: String)

    /// The output the error is about.
    public var file: String {
        switch self {
        case .exists(let f), .appeared(let f), .isInput(let f, _), .cannotCreate(let f, _), .writeFailed(let f, _),
             .closed(let f):
            return f
        }
    }

    /// One line: the output, then the problem.
    public var description: String {
        switch self {
        case .exists(let f): return "\(f): already exists (use -y to overwrite)"
        case .appeared(let f): return "\(f): appeared while etok was writing it; not replaced (use -y to replace it)"
        case .isInput(let f, let role): return "\(f): is the \(role) file too; name another output"
        case .cannotCreate(let f, let m): return "\(f): cannot create the output (\(m))"
        case .writeFailed(let f, let m): return "\(f): write failed (\(m))"
        case .closed(let f): return "\(f): the output pipe was closed by its reader"
        }
    }

    /// The error a failed write(2) (or close, fsync) with `code` means for `file`.
    static func writing(_ file: String, code: Int32) -> OutputError {
        code == EPIPE ? .closed(file: file) : .writeFailed(file: file, message: systemMessage(code))
    }
}

/// strerror's words for `code`.
func systemMessage(_ code: Int32) -> String { String(cString: strerror(code)) }
