import ArgumentParser
import EtokIO
import Foundation
import EtokMedia
import EtokTokenizer
import EtokTensor
#if canImport(Glibc)
import Glibc
#endif

/// `-y`, `-q`, `-v`: the ffmpeg-style switches every command shares.
struct CommonOptions: ParsableArguments {
    @Flag(name: .customShort("y"), help: "Overwrite output files without asking.")
    var overwrite = false

    @Flag(name: [.customShort("q"), .long], help: "Print nothing on stderr but errors and warnings about damaged input (no progress, no summary); a command's own output (info's report) still goes to stdout.")
    var quiet = false

    @Flag(name: [.customShort("v"), .long], help: "Also show FFmpeg's own warnings, the BLAS kernels and the precision in use (debugging).")
    var verbose = false

    func validate() throws {
        if quiet && verbose { throw ValidationError("give -q (print nothing but errors) or -v (more), not both.") }
    }

    /// What every command that writes outputs does first: FFmpeg's log level, SIGPIPE ignored (a
    /// closed output pipe arrives as EPIPE, a clean error; `info`, which prints with `print`,
    /// keeps the default), and the signal handling that must exist before any output does
    /// (`Interrupt`). Stop the returned `Interrupt` when the command ends.
    func startCommand(ignoringSIGPIPE: Bool = true) -> Interrupt {
        applyLogging()
        if ignoringSIGPIPE { signal(SIGPIPE, SIG_IGN) }
        return Interrupt()
    }

    /// Sets FFmpeg's log level from `-v`; `-v` also names the BLAS kernels in use.
    func applyLogging() {
        if verbose { FFmpegLog.showWarnings() } else { FFmpegLog.silence() }
        if verbose { printError("etok: BLAS: \(BLASKernels.description)") }
    }
}

extension PixelSize: ExpressibleByArgument {
    public init?(argument: String) { self.init(parsing: argument) }
}

extension FitMode: ExpressibleByArgument {}
extension OutputFormat: ExpressibleByArgument {}

/// How to read the input: a container (probed) or raw frames on stdin.
struct InputFormatOptions: ParsableArguments {
    @Option(name: .customLong("input-format"),
            help: "Input format by FFmpeg name (default: probe). 'rawvideo' reads headerless frames and needs --size.")
    var format: String?

    @Option(help: ArgumentHelp("Frame size of raw input.", valueName: "WxH"))
    var size: PixelSize?

    @Option(name: .customLong("pix-fmt"), help: "Pixel format of raw input (FFmpeg name).")
    var pixelFormat = "rgb24"

    @Option(help: ArgumentHelp("Frame rate of raw input, frames per second (a number or a fraction such as 30000/1001).", valueName: "rate"),
            transform: parseRate)
    var rate: Double = 25

    func validate() throws {
        if format == "rawvideo" && size == nil {
            throw ValidationError("--input-format rawvideo needs --size WxH (for example --size 640x480).")
        }
        if format != "rawvideo" && size != nil {
            throw ValidationError("--size only applies to raw input; add --input-format rawvideo.")
        }
        guard rate > 0, rate.isFinite else { throw ValidationError("--rate must be a positive number of frames per second.") }
    }

    /// The media layer's options, with `--fps` resampling if given.
    func inputOptions(fps: Double? = nil) -> InputOptions {
        InputOptions(format: format, rawSize: size, rawPixelFormat: pixelFormat, rawRate: rate, frameRate: fps)
    }
}

/// What the model sees: its input size, how other shapes fit, and the frame rate.
struct ModelInputOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Fit to the model's shape: crop (centre, as ElasticTok trains), pad (letterbox) or stretch."))
    var fit: FitMode = .crop

    @Option(help: ArgumentHelp(fpsHelp, valueName: "rate"), transform: parseRate)
    var fps: Double?

    @Option(name: .customLong("model-size"), help: ArgumentHelp("The model's input size.", valueName: "WxH"))
    var modelSize = PixelSize(width: 128, height: 128)

    func validate() throws {
        try validateFPS(fps)
    }

    var preprocess: PreprocessOptions {
        PreprocessOptions(width: modelSize.width, height: modelSize.height, fit: fit)
    }
}

/// Where frames go (`etok preview`, `etok decode`): -o, --format, --crf.
struct FrameOutputOptions: ParsableArguments {
    @Option(name: .shortAndLong, help: "Output file, a PNG pattern, or - for stdout.")
    var output: String

    @Option(help: "Output format when the name does not say: mp4, y4m, rgb or png.")
    var format: OutputFormat?

    @Option(help: "H.264 quality for mp4 (0 best ... 51 worst).")
    var crf = 18

    func validate() throws {
        guard (0...51).contains(crf) else { throw ValidationError("--crf must be between 0 and 51.") }
        if output == "-" && (format == .mp4 || format == .png) {
            throw ValidationError("stdout takes y4m or rgb (mp4 and png need a file name).")
        }
    }

    /// The media layer's writer options.
    func writerOptions(overwrite: Bool) -> OutputOptions {
        OutputOptions(format: format, overwrite: overwrite, crf: crf)
    }

    /// The output as messages name it.
    var displayName: String { output == "-" ? "stdout" : output }

    /// Refuses an output that is `input` itself (see `refuseOutputIsInput`).
    func refuseOverwriting(input: String) throws { try refuseOutputIsInput(input, output) }
}

/// `--fps`'s help, shared by encode and preview.
let fpsHelp = "Resample to this many frames per second by timestamp (the paper trains at 4; a number or a "
    + "fraction such as 30000/1001): frames are dropped, or repeated when the rate is above the source's. "
    + "Default: keep every frame."

/// Refuses an output that is a file the command reads (even with -y): writing it would destroy
/// it. (`OutputPlacement` refuses it again when the output is made.)
func refuseOutputIsInput(_ input: String, _ output: String, role: String = "input") throws {
    if OutputPlacement.isSameFile(input, output) {
        throw ValidationError("-o \(output) is the \(role) file; name another output.")
    }
}

/// The most `--threads` any command takes: 4 per processor, at least 256. More workers than
/// that only cost memory (each holds a model context), never speed.
let maxThreads = max(256, 4 * ProcessInfo.processInfo.activeProcessorCount)

/// `--threads`'s range, the same for encode, decode and the model commands: 1 to `maxThreads`.
func validateThreads(_ threads: Int?) throws {
    if let threads, !(1...maxThreads).contains(threads) {
        throw ValidationError("--threads must be from 1 to \(maxThreads) (4 per processor, at least 256).")
    }
}

/// `--fps`'s range, the same for encode, preview and import: 0.001 to 1000 frames per second.
func validateFPS(_ fps: Double?) throws {
    if let fps, !(fps >= 0.001 && fps <= 1000) {
        throw ValidationError("--fps must be a rate from 0.001 to 1000 frames per second (for example --fps 4).")
    }
}

/// A frame rate as ffmpeg takes one: a number ("4", "29.97") or a fraction ("30000/1001").
func parseRate(_ text: String) throws -> Double {
    let parts = text.split(separator: "/", omittingEmptySubsequences: false)
    let value: Double?
    switch parts.count {
    case 1: value = Double(text)
    case 2: value = Double(parts[0]).flatMap { n in Double(parts[1]).map { n / $0 } }
    default: value = nil
    }
    guard let value, value > 0, value.isFinite else {
        throw ValidationError("'\(text)' is not a frame rate: give a positive number or a fraction such as 30000/1001.")
    }
    return value
}
