import ArgumentParser
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

    /// The one-line message and the exit status for `error`: the library's classification
    /// (`ErrorReport`) through `status(of:)`; only the command line's own ValidationError is
    /// classified here.
    static func report(_ error: any Error) -> (message: String, status: Int32) {
        if case PipelineError.stageFailed(_, let underlying) = error { return report(underlying) }
        if let validation = error as? ValidationError { return (validation.message, usage) }
        let report = ErrorReport(error)
        return (report.message, status(of: report.category))
    }

    /// The exit status of each error category (the table above).
    static func status(of category: ErrorCategory) -> Int32 {
        switch category {
        case .usage: return usage
        case .dataError: return dataError
        case .noInput: return noInput
        case .unsupported: return unsupported
        case .software: return software
        case .cannotCreateOutput: return cannotCreate
        case .readFailed, .writeFailed: return ioError
        case .outputClosed: return pipeClosed
        case .interrupted: return interrupted
        case .terminated: return terminated
        case .other: return other
        }
    }

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

    /// Runs a command's body; an error is printed as one line (`etok: FILE: problem`) and turned
    /// into its exit status.
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
