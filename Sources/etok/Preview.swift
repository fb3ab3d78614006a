import ArgumentParser
import Dispatch
import EtokMedia
import EtokTokenizer
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `etok preview`: writes exactly the frames the model will see (after fit, size and --fps).
struct Preview: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write the frames the model will see (after --fit, --model-size and --fps), to check preprocessing.",
        discussion: """
        The output format follows the name: .mp4 (H.264), .y4m, .rgb (raw RGB24), .png (one picture) \
        or a pattern such as frames/%05d.png (numbered from 1). -o - writes y4m to stdout.

        Examples:
          etok preview Samples/bikes.mp4 -o seen.mp4
          etok preview Samples/bikes.mp4 --fit pad --fps 4 -o seen_%04d.png
          etok preview clip.mkv -o - | ffplay -
          ffmpeg -loglevel error -i clip.mov -f nut -c:v rawvideo - | etok preview - -o seen.mp4
          ffmpeg -loglevel error -i clip.mov -f rawvideo -pix_fmt rgb24 - \\
            | etok preview - --input-format rawvideo --size 640x360 --rate 25 -o seen.y4m
        """)

    @Argument(help: "Video file, or - for stdin.")
    var input: String

    @OptionGroup
    var frameOutput: FrameOutputOptions

    @OptionGroup(title: "Model input")
    var model: ModelInputOptions

    @OptionGroup(title: "Input")
    var inputFormat: InputFormatOptions

    @OptionGroup(title: "Common")
    var common: CommonOptions

    func validate() throws {
        try frameOutput.refuseOverwriting(input: input)
    }

    func run() throws {
        let interrupt = common.startCommand()
        defer { interrupt.stop() }
        let job = PreviewJob(
            input: input, inputOptions: inputFormat.inputOptions(fps: model.fps), preprocess: model.preprocess,
            output: frameOutput.output, outputOptions: frameOutput.writerOptions(overwrite: common.overwrite))
        try ExitCodes.reporting {
            let run = try PreviewRun(job: job)
            interrupt.attach { run.cancel() }
            let progress = ProgressReporter(quiet: common.quiet, duration: run.info.duration)
            let done = Box()
            let summary: PreviewSummary
            do {
                summary = try run.run { p in
                    done.set(p)
                    progress.update(frames: p.frames, mediaSeconds: p.mediaSeconds)
                }
            } catch {
                progress.abandon()
                throw error
            }
            let last = done.get()
            let n = summary.framesWritten
            var line = "etok: wrote \(n) frame\(n == 1 ? "" : "s") (\(job.preprocess.width)x\(job.preprocess.height), "
                + "\(job.preprocess.fit.rawValue)) from \(summary.framesDecoded) decoded to \(frameOutput.displayName)"
            if summary.decodeErrors > 0 {
                let e = summary.decodeErrors
                line += "; FFmpeg reported \(e) decode error\(e == 1 ? "" : "s") (damage concealed; -v shows them)"
            }
            progress.end(frames: last.frames, mediaSeconds: last.mediaSeconds, summary: line)
        }
    }
}

/// The last progress seen, shared between the sink queue and the main thread.
private final class Box: @unchecked Sendable {
    private let lock = NSLock()
    private var value = PreviewProgress(frames: 0, mediaSeconds: 0)
    func set(_ v: PreviewProgress) { lock.lock(); value = v; lock.unlock() }
    func get() -> PreviewProgress { lock.lock(); defer { lock.unlock() }; return value }
}
