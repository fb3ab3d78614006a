import EtokMedia
import EtokPipeline
import Foundation

/// What `etok preview` does: decode an input, turn each frame into exactly what the model will see
/// (fit, size, `--fps`), and write those frames to a file or stdout.
public struct PreviewJob: Sendable, Equatable {
    /// Input path, or `-` for stdin.
    public var input: String
    /// How to open it (raw frames, `--fps` resampling).
    public var inputOptions: InputOptions
    /// The model's input shape and fit.
    public var preprocess: PreprocessOptions
    /// Output path (`-` for stdout; `%05d` patterns for PNG sequences).
    public var output: String
    /// Output format and encoding; its frame rate is set from the input when the job opens.
    public var outputOptions: OutputOptions

    /// A job; see the fields.
    public init(input: String, inputOptions: InputOptions = InputOptions(), preprocess: PreprocessOptions = PreprocessOptions(),
                output: String, outputOptions: OutputOptions = OutputOptions()) {
        self.input = input
        self.inputOptions = inputOptions
        self.preprocess = preprocess
        self.output = output
        self.outputOptions = outputOptions
    }
}

/// Progress of a running preview, reported after each written frame.
public struct PreviewProgress: Sendable {
    /// Frames written so far.
    public var frames: Int
    /// Media time of the last written frame, seconds from the first.
    public var mediaSeconds: Double

    /// A progress report.
    public init(frames: Int, mediaSeconds: Double) {
        self.frames = frames
        self.mediaSeconds = mediaSeconds
    }
}

/// What a finished preview did.
public struct PreviewSummary: Sendable {
    /// The input's metadata.
    public var info: VideoInfo
    /// Frames the decoder produced (before `--fps`).
    public var framesDecoded: Int
    /// Frames written (after `--fps`).
    public var framesWritten: Int
    /// Damaged packets or frames skipped or concealed by the decoder.
    public var decodeErrors: Int
}

/// One preview run: source → preprocess → writer, three stages of an EtokPipeline (each on its
/// own queue, joined by small bounded buffers, so decoding, scaling and encoding overlap and memory
/// stays bounded whatever the length).
///
/// `init` opens the input and then the output, so bad input or an unwritable/existing output is
/// reported before any work. `run` blocks until the end; `cancel` (any thread, e.g. on SIGINT)
/// stops it, and the writer then removes its partial output. Runs once.
public final class PreviewRun: @unchecked Sendable {
    /// The input's metadata.
    public let info: VideoInfo
    private let source: VideoSource
    private let preprocessor: Preprocessor
    private let writer: any VideoWriter
    private let control = CancellableRun()

    /// Opens the input and the output (see the type's notes).
    public init(job: PreviewJob) throws {
        source = try VideoSource(path: job.input, options: job.inputOptions)
        info = source.info
        preprocessor = try Preprocessor(options: job.preprocess)
        var output = job.outputOptions
        if let fps = job.inputOptions.frameRate {
            output.frameRate = Rational(approximating: fps)
        } else if let fps = info.frameRate {
            output.frameRate = Rational(approximating: fps)
        }
        writer = try openVideoWriter(path: job.output, options: output)
    }

    /// Runs to the end. Throws the first stage's error unchanged (a `MediaError` naming its file),
    /// or `PipelineError.cancelled` after `cancel()`; in both cases the output is removed.
    public func run(progress: @escaping @Sendable (PreviewProgress) -> Void = { _ in }) throws -> PreviewSummary {
        let source = self.source, preprocessor = self.preprocessor, writer = self.writer
        var origin: Double?
        let pipeline = Pipeline.source("decode") { try source.nextFrame() }
            .map("preprocess") { frame in try preprocessor.process(frame) }
            .sink("write", consume: { frame in
                try writer.write(frame)
                let start = origin ?? frame.seconds
                origin = start
                progress(PreviewProgress(frames: writer.framesWritten, mediaSeconds: frame.seconds - start))
            }, finish: {
                try writer.finish()
            }, abort: {
                writer.cancel()
            })
        try control.run(pipeline) { writer.cancel() }
        return PreviewSummary(info: info, framesDecoded: source.framesDecoded,
                              framesWritten: writer.framesWritten, decodeErrors: source.decodeErrors)
    }

    /// Stops the run (thread-safe, idempotent); before `run` it makes `run` stop at once.
    public func cancel() { control.cancel() }
}
