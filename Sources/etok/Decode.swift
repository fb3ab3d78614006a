import ArgumentParser
import EtokFormat
import EtokMedia
import EtokTokenizer
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `etok decode`: `.etok` tokens back to video.
struct Decode: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Decode an .etok stream back to frames (at the model resolution).",
        discussion: """
        The output format follows the name, as in ffmpeg: .mp4 (H.264), .y4m, .rgb (raw RGB24), \
        .png (one picture) or a pattern such as frames/%05d.png, numbered from 1 in output order. \
        -o - writes y4m to stdout. The decoder \
        reproduces exactly the reconstruction the encoder measured for every frame. With an index \
        (any complete file), --frames and --time decode only the chunks they need.

        Damage in the chunks the selection needs (a damaged or truncated file) is an error: exit 65 \
        and no output file is left. A file is checked before anything is written, even to stdout; \
        from a pipe the decode stops where the damage arrives. --skip-damaged decodes the readable \
        chunks instead and prints one warning per damaged range (etok info lists the damage); an mp4 \
        keeps the gap in its timestamps, while y4m, raw RGB and PNG patterns simply run on.

        Examples:
          etok decode bikes.etok -o bikes.decoded.mp4
          etok decode bikes.etok --frames 100:150 -o part.mp4
          etok decode bikes.etok --time 2.5:4 -o frames/%04d.png
          etok decode bikes.etok --scale 512x512 -o big.mp4
          etok decode cut.etok --skip-damaged -o whatever-is-left.mp4
          cat bikes.etok | etok decode - -o bikes.y4m
        """)

    @Argument(help: "The .etok file, or - for stdin.")
    var input: String

    @OptionGroup
    var frameOutput: FrameOutputOptions

    // .unconditional: a value may start with '-' (--time -2:4 on an MPEG-TS clock, or a mistake
    // such as --frames -1: that deserves its own message, not "missing value").
    @Option(parsing: .unconditional, help: ArgumentHelp("Frames A to B (B excluded; either may be left out), counted from 0.", valueName: "A:B"))
    var frames: String?

    @Option(parsing: .unconditional, help: ArgumentHelp("Presentation times T0 to T1 in seconds on the stream's clock, as etok info --blocks lists them (it starts where the source did: 0 for most files, not for MPEG-TS); T1 excluded, either may be left out.", valueName: "T0:T1"))
    var time: String?

    @Option(help: ArgumentHelp("Resize the decoded frames (bicubic); default: the model resolution.", valueName: "WxH"))
    var scale: PixelSize?

    @Flag(name: .customLong("ignore-model-mismatch"),
          help: "Decode even if the stream names other weights than --model (shapes are still checked).")
    var ignoreModelMismatch = false

    @Option(help: "Chunks decoded at once, one thread each (default: all cores). The output is the same for any count. At most 4 per processor (at least 256).")
    var threads: Int?

    @OptionGroup
    var damage: DamageOptions

    @OptionGroup(title: "Model")
    var modelChoice: ModelChoice

    @OptionGroup(title: "Common")
    var common: CommonOptions

    func validate() throws {
        try modelChoice.refuseOverwriting(input: input, output: frameOutput.output)
        if frames != nil && time != nil { throw ValidationError("give --frames or --time, not both.") }
        if let frames, FrameSelection.parse(frames, time: false) == nil {
            throw ValidationError("--frames takes A:B with 0 ≤ A < B, for example --frames 10:20 or --frames 100:.")
        }
        if let time, FrameSelection.parse(time, time: true) == nil {
            throw ValidationError("--time takes T0:T1 in seconds with T0 < T1, for example --time 2.5:4.")
        }
        try validateThreads(threads)
    }

    func run() throws {
        let interrupt = common.startCommand()
        defer { interrupt.stop() }
        try ExitCodes.reporting {
            let selection = frames.flatMap { FrameSelection.parse($0, time: false) }
                ?? time.flatMap { FrameSelection.parse($0, time: true) } ?? .all
            let job = DecodeJob(input: input, output: frameOutput.output,
                                outputOptions: frameOutput.writerOptions(overwrite: common.overwrite),
                                selection: selection, allowModelMismatch: ignoreModelMismatch, scale: scale,
                                workers: threads ?? ThreadPolicy.defaultWorkers, skipDamaged: damage.skipDamaged)
            var decodeJob = job
            decodeJob.precision = modelChoice.precision
            let run = try DecodeRun(job: decodeJob, model: try modelChoice.load())
            if common.verbose { printError("etok: precision: \(run.precision.rawValue) (as the stream was encoded)") }
            interrupt.attach { run.cancel() }
            let progress = ProgressReporter(quiet: common.quiet, duration: run.header.source.duration)
            let summary: DecodeSummary
            let last = LastSeconds()
            do {
                summary = try run.run { n, seconds in
                    progress.update(frames: n, mediaSeconds: seconds)
                    last.set(seconds)
                }
            } catch {
                progress.abandon()
                throw error
            }
            let line = "etok: decoded \(BlockRangeText.count(summary.framesWritten, "frame")) to \(frameOutput.displayName)"
                + DamageMessages.summaryNote(summary.skipped)
            progress.end(frames: summary.framesWritten, mediaSeconds: last.get(), summary: nil)
            DamageMessages.warn(summary.skipped)
            if !common.quiet { printError(line) }
        }
    }
}

/// The media time last reported, shared between the write stage and the main thread.
private final class LastSeconds: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0.0
    func set(_ v: Double) { lock.lock(); value = v; lock.unlock() }
    func get() -> Double { lock.lock(); defer { lock.unlock() }; return value }
}
