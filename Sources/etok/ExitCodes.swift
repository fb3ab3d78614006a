import ArgumentParser
import EtokMedia
import EtokModel
import EtokFormat
import EtokIO
import EtokPipeline
import EtokTokenizer
import Foundation

/// The one place where errors become what the user sees: a single line on stderr naming the file
/// and the problem, and a documented exit status.
///
/// | status | meaning                                                                   |
/// |-------:|---------------------------------------------------------------------------|
/// |      0 | success                                                                   |
/// |      2 | a batch (many inputs) ran to its end, but some inputs failed: each named  |
/// |        | on one line and in DIR/failures.jsonl (when all failed: the first's code) |
/// |      1 | any other failure (a bug: please report it)                               |
/// |     64 | bad command line (unknown option, invalid value): swift-argument-parser   |
/// |     65 | the input's data is unusable: not a video, no video stream, no frame,     |
/// |        | truncated, partial raw frame, an mp4 index at the end of a pipe; a model  |
/// |        | file that fails its checks (header, shapes, config limits, NaN/Inf)       |
/// |     66 | the input is missing: no such file, a directory, empty; a model that is   |
/// |        | not a regular file (device, pipe)                                         |
/// |     69 | unsupported: no decoder or encoder for it in this FFmpeg; bf16 on a CPU   |
/// |        | without AVX512-BF16                                                       |
/// |     70 | an FFmpeg call failed unexpectedly                                        |
/// |     73 | the output cannot be created: exists (use -y), missing folder, no rights, |
/// |        | or a file appeared under its name while etok wrote it (not replaced)      |
/// |     74 | writing failed: disk full, I/O error                                      |
/// |    130 | interrupted (Ctrl-C); partial outputs were removed                        |
/// |    143 | terminated (SIGTERM); partial outputs were removed                        |
/// |    141 | the output pipe was closed by its reader; partial outputs were removed    |
enum ExitCodes {
    static let other: Int32 = 1
    static let someInputsFailed: Int32 = 2
    static let usage: Int32 = 64
    static let dataError: Int32 = 65
    static let noInput: Int32 = 66
    static let unsupported: Int32 = 69
    static let software: Int32 = 70
    static let cannotCreate: Int32 = 73
    static let ioError: Int32 = 74
    static let interrupted: Int32 = 130
    static let terminated: Int32 = 143
    static let pipeClosed: Int32 = 141

    /// The one-line message and the exit status for `error`.
    static func report(_ error: any Error) -> (message: String, status: Int32) {
        if let pipeline = error as? PipelineError {
            switch pipeline {
            case .stageFailed(_, let underlying): return report(underlying)
            case .cancelled, .stopped:
                if Interrupt.received == SIGTERM { return ("terminated; partial output removed", terminated) }
                return ("interrupted; partial output removed", interrupted)
            case .invalidCapacity: return (pipeline.description, software)
            }
        }
        if let output = error as? OutputError { return (output.description, status(of: output)) }
        if let media = error as? MediaError { return (media.description, status(of: media)) }
        if let model = error as? ModelError { return (model.description, status(of: model)) }
        if let npy = error as? NPYError { return (npy.description, status(of: npy)) }
        if let format = error as? FormatError { return (format.description, status(of: format)) }
        if let tokenizer = error as? TokenizerError { return (tokenizer.description, status(of: tokenizer)) }
        if let tokens = error as? TokenImportError { return (tokens.description, status(of: tokens)) }
        if let manifest = error as? ManifestError { return (manifest.description, manifest.line == 0 ? noInput : dataError) }
        if let digest = error as? DigestError { return (digest.description, noInput) }
        if let validation = error as? ValidationError { return (validation.message, usage) }
        return ("\(error)", other)
    }

    static func status(of error: ModelError) -> Int32 {
        switch error {
        case .unreadable: return noInput
        case .badHeader, .badConfig, .unknownTensor, .missingTensor, .wrongShape, .wrongDType, .nonFinite, .badInput:
            return dataError
        case .contextFull: return software
        case .bf16Unavailable: return unsupported
        }
    }

    /// Every import refusal is a problem with the tokens' data.
    static func status(of error: TokenImportError) -> Int32 {
        switch error {
        case .badBlock, .badInput: return dataError
        case .emptyInput: return noInput
        }
    }

    static func status(of error: FormatError) -> Int32 {
        switch error {
        case .io(_, let call, _, _):
            return call == "open" ? noInput : ioError   // only readers do I/O through EtokFormat
        case .invalidInput: return usage
        default: return dataError
        }
    }

    static func status(of error: TokenizerError) -> Int32 {
        switch error {
        case .badSetting, .emptyRange: return usage
        case .modelMismatch, .incompatibleStream: return dataError
        case .noDefaultModel: return noInput
        }
    }

    static func status(of error: NPYError) -> Int32 {
        switch error {
        case .unreadable: return noInput
        case .badFormat, .unsupported: return dataError
        }
    }

    static func status(of error: MediaError) -> Int32 {
        switch error {
        case .fileNotFound, .isDirectory, .emptyInput, .unreadableInput: return noInput
        case .unrecognisedInput, .noVideoStream, .noFrames, .indexAtEndOnPipe, .endsEarly, .partialRawFrame:
            return dataError
        case .unsupportedCodec: return unsupported
        case .invalidArgument: return usage
        case .tooManyFramesForImage: return usage   // one picture asked for many frames: fix the command
        case .ffmpeg: return software
        }
    }

    /// Every output writer's error: the one place a closed pipe becomes 141.
    static func status(of error: OutputError) -> Int32 {
        switch error {
        case .exists, .appeared, .cannotCreate: return cannotCreate
        case .isInput: return usage
        case .writeFailed: return ioError
        case .closed: return pipeClosed
        }
    }

    /// Runs a command's body; an error is printed as one line (`etok: FILE: problem`) and turned
    /// into its exit status.
    /// Runs the command line: parse errors and validation errors (swift-argument-parser's own,
    /// several lines there) become one line naming the subcommand's help, with status 64; help
    /// and version go to stdout with status 0; a command's own failures were already printed by
    /// `reporting` and arrive here as their `ExitCode`.
    static func main<Command: ParsableCommand>(_ root: Command.Type, arguments: [String]) -> Never {
        do {
            var command = try root.parseAsRoot(arguments)
            try command.run()
            root.exit()
        } catch {
            let code = root.exitCode(for: error)
            if code == .success, let unknown = combinedShortFlags(arguments) {
                // Not help: an ffmpeg habit (-hide_banner) read as the short flags -h -i -d ...
                printError("etok\(subcommand(arguments, of: root)): unknown option '\(unknown)' "
                           + "(see 'etok\(subcommand(arguments, of: root)) --help')")
                Foundation.exit(usage)
            }
            if error is ExitCode || code == .success { root.exit(withError: error) }
            let sub = subcommand(arguments, of: root)
            let message = root.message(for: error).trimmingCharacters(in: .whitespacesAndNewlines)
                .replacingOccurrences(of: "\n", with: "; ")
            printError("etok\(sub): \(message) (see 'etok\(sub) --help')")
            Foundation.exit(usage)
        }
    }

    /// " encode" when `arguments` start with a subcommand of `root`, else "".
    static func subcommand<Command: ParsableCommand>(_ arguments: [String], of root: Command.Type) -> String {
        let known = root.configuration.subcommands.map {
            $0.configuration.commandName ?? String(describing: $0).lowercased()
        }
        return arguments.first.flatMap { known.contains($0) ? " \($0)" : nil } ?? ""
    }

    /// The first argument (before `--`) that swift-argument-parser would read as a group of short
    /// flags holding `-h`, such as `-hide_banner` (an ffmpeg habit): taken as an unknown
    /// option, not a request for help. Nil when help was asked for plainly (`-h`, `--help`, `help`).
    static func combinedShortFlags(_ arguments: [String]) -> String? {
        let options = arguments.prefix { $0 != "--" }
        if options.contains(where: { ["-h", "--help", "help"].contains($0) }) { return nil }
        return options.first { $0.hasPrefix("-") && !$0.hasPrefix("--") && $0.count > 2 && $0.contains("h") }
    }

    static func reporting(_ body: () throws -> Void) throws {
        do {
            try body()
        } catch let exit as ExitCode {
            throw exit
        } catch {
            let (message, status) = report(error)
            printError("etok: \(message)")
            throw ExitCode(status)
        }
    }
}

/// Writes one line to stderr, or drops it when stderr cannot take it (`StandardError`).
func printError(_ line: String) {
    StandardError.line(line)
}
