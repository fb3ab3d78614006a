import EtokFormat
import EtokIO
import EtokMedia
import EtokModel
import EtokPipeline
import Foundation

/// What went wrong, by what the user can do about it: the one classification of the errors the
/// libraries throw. Each front end maps a category to what it reports, in one small table: the
/// command to an exit status (Sources/etok/ExitCodes.swift), the C ABI to a status code
/// (Sources/EtokC/CABI.swift, include/etok.h), and through it Python to an exception class.
public enum ErrorCategory: Sendable, Equatable, CaseIterable {
    /// A bad setting or argument: fix the command or the call.
    case usage
    /// The input's data is unusable: not a video or .etok, no frame, damaged, truncated, a model
    /// file that fails its checks, another model's stream.
    case dataError
    /// The input is missing: no such file, a directory, empty, not a regular file.
    case noInput
    /// This FFmpeg has no decoder or encoder for it.
    case unsupported
    /// An FFmpeg call or an internal check failed unexpectedly (a bug, or a broken installation).
    case software
    /// The output cannot be created: it exists (no overwrite), its folder is missing, no rights,
    /// or a file appeared under its name while it was written.
    case cannotCreateOutput
    /// Reading an opened input failed (an I/O error below the format).
    case readFailed
    /// Writing the output failed: disk full, an I/O error.
    case writeFailed
    /// The output pipe was closed by its reader.
    case outputClosed
    /// Interrupted (SIGINT), or cancelled; partial outputs were removed.
    case interrupted
    /// Terminated (SIGTERM); partial outputs were removed.
    case terminated
    /// Not one of the libraries' errors: a bug.
    case other
}

/// An error classified: its category and the one line that names the file and the problem.
public struct ErrorReport: Sendable, Equatable {
    public var category: ErrorCategory
    public var message: String

    public init(category: ErrorCategory, message: String) {
        self.category = category
        self.message = message
    }

    /// Classifies `error`, looking through the pipeline's wrapper to the stage's own error.
    /// Errors of no library (a front end's own) are `.other` with their description.
    public init(_ error: any Error) {
        switch error {
        case let e as PipelineError:
            switch e {
            case .stageFailed(_, let underlying): self.init(underlying)
            case .cancelled, .stopped:
                self = Interrupt.received == SIGTERM
                    ? ErrorReport(category: .terminated, message: "terminated; partial output removed")
                    : ErrorReport(category: .interrupted, message: "interrupted; partial output removed")
            case .invalidCapacity: self.init(category: .software, message: e.description)
            }
        case let e as OutputError: self.init(category: Self.category(of: e), message: e.description)
        case let e as MediaError: self.init(category: Self.category(of: e), message: e.description)
        case let e as ModelError: self.init(category: Self.category(of: e), message: e.description)
        case let e as NPYError: self.init(category: Self.category(of: e), message: e.description)
        case let e as FormatError: self.init(category: Self.category(of: e), message: e.description)
        case let e as TokenizerError: self.init(category: Self.category(of: e), message: e.description)
        case let e as TokenImportError: self.init(category: Self.category(of: e), message: e.description)
        case let e as ManifestError: self.init(category: e.line == 0 ? .noInput : .dataError, message: e.description)
        case let e as DigestError: self.init(category: .noInput, message: e.description)
        default: self.init(category: .other, message: "\(error)")
        }
    }

    static func category(of error: ModelError) -> ErrorCategory {
        switch error {
        case .unreadable: return .noInput
        case .badHeader, .badConfig, .unknownTensor, .missingTensor, .wrongShape, .wrongDType, .nonFinite, .badInput:
            return .dataError
        case .contextFull: return .software
        case .bf16Unavailable: return .unsupported
        }
    }

    /// Every import refusal is a problem with the tokens' data.
    static func category(of error: TokenImportError) -> ErrorCategory {
        switch error {
        case .badBlock, .badInput: return .dataError
        case .emptyInput: return .noInput
        }
    }

    static func category(of error: FormatError) -> ErrorCategory {
        switch error {
        case .io(_, let call, _, _):
            return call == "open" ? .noInput : .readFailed   // only readers do I/O through EtokFormat
        case .invalidInput: return .usage
        default: return .dataError
        }
    }

    static func category(of error: TokenizerError) -> ErrorCategory {
        switch error {
        case .badSetting, .emptyRange: return .usage
        case .modelMismatch, .incompatibleStream: return .dataError
        case .noDefaultModel: return .noInput
        }
    }

    static func category(of error: NPYError) -> ErrorCategory {
        switch error {
        case .unreadable: return .noInput
        case .badFormat, .unsupported: return .dataError
        }
    }

    static func category(of error: MediaError) -> ErrorCategory {
        switch error {
        case .fileNotFound, .isDirectory, .emptyInput, .unreadableInput: return .noInput
        case .unrecognisedInput, .noVideoStream, .noFrames, .indexAtEndOnPipe, .endsEarly, .partialRawFrame:
            return .dataError
        case .unsupportedCodec: return .unsupported
        case .invalidArgument: return .usage
        case .tooManyFramesForImage: return .usage   // one picture asked for many frames: fix the command
        case .ffmpeg: return .software
        }
    }

    /// Every output writer's error; a closed pipe is its own category (the command's 141).
    static func category(of error: OutputError) -> ErrorCategory {
        switch error {
        case .exists, .appeared, .cannotCreate: return .cannotCreateOutput
        case .isInput: return .usage
        case .writeFailed: return .writeFailed
        case .closed: return .outputClosed
        }
    }
}
