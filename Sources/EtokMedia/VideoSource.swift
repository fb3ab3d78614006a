import CFFmpeg
#if canImport(Glibc)
import Glibc
#endif

/// Reads the best video stream of a file or of standard input (`-`) and decodes it with FFmpeg's
/// slice threading, one `DecodedFrame` per `nextFrame()` call.
///
/// Owns the demuxer, decoder and packet/frame scratch buffers and frees them on deinit. Not
/// thread-safe: use it from one thread at a time (it may move between threads, e.g. into a
/// pipeline stage). Cost: one decode per call; with `frameRate` set, only cheap timestamp work is
/// added (frames are never converted here).
public final class VideoSource: @unchecked Sendable {
    /// What the container and codec headers say.
    public let info: VideoInfo
    /// The input's name in messages ("stdin" for `-`).
    public let file: String
    /// Errors the decoder logged (damaged or rejected data; decoding went on after each). The same
    /// number on every run of the same file (`DecoderErrorLog`).
    public var decodeErrors: Int { DecoderErrorLog.counts(errorToken).decoder }
    /// Errors the demuxer logged (a cut Matroska file says "File ended prematurely").
    var demuxerErrors: Int { DecoderErrorLog.counts(errorToken).demuxer }
    /// This source's token in its decoder contexts' `opaque` (see `DecoderErrorLog`).
    let errorToken = DecoderErrorLog.register()
    /// Frames the decoder produced so far (before any `--fps` resampling).
    public internal(set) var framesDecoded = 0
    /// Why the input ended before its end, when `keepsTruncatedInput` let the stream end there
    /// (the same words as `MediaError.endsEarly`/`.partialRawFrame`); nil for a whole input.
    public internal(set) var endedEarly: MediaError?

    let options: InputOptions
    let isPipe: Bool
    var formatContext: UnsafeMutablePointer<AVFormatContext>?
    var codecContext: UnsafeMutablePointer<AVCodecContext>?
    let streamIndex: Int32
    let stream: UnsafeMutablePointer<AVStream>
    var packet: UnsafeMutablePointer<AVPacket>?
    var scratch: UnsafeMutablePointer<AVFrame>?
    let timeBase: Rational
    /// The unit of the `pts` of the frames `nextFrame()` returns: the stream's time base, or with
    /// `--fps` a unit fine enough to give every resampled frame its own tick (the stream's time
    /// base when it has at least 2 ticks per output frame, else 1/90000 as MPEG uses).
    public let frameTimeBase: Rational
    /// Nominal frame duration in `timeBase` units, for frames without timestamps.
    let nominalDuration: Int64
    let rawFrameBytes: Int?
    var decode = DecodeState()
    var sampler: FrameRateSampler?
    var held: DecodedFrame?
    var ready: [DecodedFrame] = []

    /// Opens `path` (or `-` for stdin), probes it and opens a decoder for its best video stream.
    /// Throws `MediaError` naming the file: missing, a directory, empty, unrecognised, no video
    /// stream, no decoder, or bad raw options.
    public init(path: String, options: InputOptions = InputOptions()) throws {
        self.options = options
        isPipe = path == "-"
        file = isPipe ? "stdin" : path
        if !isPipe { try VideoSource.checkInputPath(path) }
        if let rate = options.frameRate {
            guard rate > 0, rate.isFinite else {
                throw MediaError.invalidArgument(file: file, message: "--fps must be a positive number")
            }
            sampler = FrameRateSampler(rate: rate)
        }

        let ctx = try VideoSource.openInput(path: path, file: file, options: options)
        ctx.pointee.opaque = UnsafeMutableRawPointer(bitPattern: errorToken)
        // The contexts are stored only once nothing can throw any more, so that a failed init
        // frees them here (defer) and never again in deinit.
        var opened = false
        defer { if !opened { VideoSource.close(ctx) } }
        try ff("avformat_find_stream_info", file: file) { avformat_find_stream_info(ctx, nil) }

        var decoder: UnsafePointer<AVCodec>?
        let best = av_find_best_stream(ctx, AVMEDIA_TYPE_VIDEO, VideoSource.largestVideoStream(ctx), -1, &decoder, 0)
        guard best >= 0 else {
            let codecs = (0..<Int(ctx.pointee.nb_streams)).compactMap { i -> String? in
                let par = ctx.pointee.streams[i]!.pointee.codecpar.pointee
                return par.codec_type == AVMEDIA_TYPE_VIDEO ? String(cString: avcodec_get_name(par.codec_id)) : nil
            }
            if let codec = codecs.first { throw MediaError.unsupportedCodec(file: file, codec: codec) }
            throw MediaError.noVideoStream(file: file)
        }
        let stream = ctx.pointee.streams[Int(best)]!
        if stream.pointee.disposition & AV_DISPOSITION_ATTACHED_PIC != 0 {
            throw MediaError.noVideoStream(file: file)   // cover art of an audio file
        }
        guard let decoder else { throw MediaError.noVideoStream(file: file) }
        self.stream = stream
        streamIndex = best
        timeBase = Rational(stream.pointee.time_base)
        frameTimeBase = VideoSource.frameTimeBase(stream: timeBase, rate: options.frameRate)
        let name = file
        guard let codec = avcodec_alloc_context3(decoder) else {
            throw MediaError.ffmpeg(call: "avcodec_alloc_context3", file: name, code: 0, message: "out of memory")
        }
        defer { if !opened { var c: UnsafeMutablePointer<AVCodecContext>? = codec; avcodec_free_context(&c) } }
        try ff("avcodec_parameters_to_context", file: name) { avcodec_parameters_to_context(codec, stream.pointee.codecpar) }
        codec.pointee.thread_count = Int32(max(0, options.decoderThreads))
        // Slice threads only. With frame threads, whether a damaged last frame comes back flagged
        // depends on thread timing, so "the input ends early" came and went from run to run on the
        // same truncated file (measured: 0 or 12 in decode_error_flags; slice threads: 8 every
        // time). Decoding is a small part of an encode (1080p H.264: ~165 frames/s on 2 cores
        // either way, against ~10 frames/s for the model), so determinism wins.
        codec.pointee.thread_type = FF_THREAD_SLICE
        codec.pointee.pkt_timebase = stream.pointee.time_base
        codec.pointee.opaque = UnsafeMutableRawPointer(bitPattern: errorToken)
        try ff("avcodec_open2", file: name) { avcodec_open2(codec, decoder, nil) }

        let info = VideoSource.describe(ctx: ctx, stream: stream, file: file)
        self.info = info
        let fps = info.frameRate ?? 25
        let tb = timeBase.value ?? (1.0 / 90_000)
        nominalDuration = max(1, Int64((1.0 / (fps * tb)).rounded()))
        if info.container == "rawvideo" {
            let par = stream.pointee.codecpar.pointee
            let bytes = av_image_get_buffer_size(AVPixelFormat(rawValue: par.format), par.width, par.height, 1)
            rawFrameBytes = bytes > 0 ? Int(bytes) : nil
        } else {
            rawFrameBytes = nil
        }
        guard let packet = av_packet_alloc(), let scratch = av_frame_alloc() else {
            throw MediaError.ffmpeg(call: "av_packet_alloc", file: name, code: 0, message: "out of memory")
        }
        self.packet = packet
        self.scratch = scratch
        formatContext = ctx
        codecContext = codec
        opened = true
    }

    deinit {
        var c = codecContext
        avcodec_free_context(&c)
        av_packet_free(&packet)
        av_frame_free(&scratch)
        if let ctx = formatContext { VideoSource.close(ctx) }
        DecoderErrorLog.unregister(errorToken)
    }

    /// The video stream with the most pixels (cover art aside), as ffmpeg's own stream selection
    /// picks it; the first such on a tie, -1 when there is none (FFmpeg then chooses).
    static func largestVideoStream(_ ctx: UnsafeMutablePointer<AVFormatContext>) -> Int32 {
        var best: Int32 = -1, bestPixels = -1
        for i in 0..<Int(ctx.pointee.nb_streams) {
            let stream = ctx.pointee.streams[i]!.pointee
            let par = stream.codecpar.pointee
            guard par.codec_type == AVMEDIA_TYPE_VIDEO, stream.disposition & AV_DISPOSITION_ATTACHED_PIC == 0 else { continue }
            let pixels = Int(par.width) * Int(par.height)
            if pixels > bestPixels { best = Int32(i); bestPixels = pixels }
        }
        return best
    }

    /// See `frameTimeBase`.
    static func frameTimeBase(stream: Rational, rate: Double?) -> Rational {
        guard let rate, rate > 0, rate.isFinite else { return stream }
        if let tick = stream.value, tick * rate <= 0.5 { return stream }
        return rate <= 45_000 ? Rational(1, 90_000) : Rational(approximating: 0.5 / rate, maxDen: Int32.max)
    }

    /// Closes the demuxer, and stdin's I/O context, which we opened ourselves.
    static func close(_ ctx: UnsafeMutablePointer<AVFormatContext>) {
        let customIO = ctx.pointee.flags & AVFMT_FLAG_CUSTOM_IO != 0
        var pb = ctx.pointee.pb
        var c: UnsafeMutablePointer<AVFormatContext>? = ctx
        avformat_close_input(&c)
        if customIO { avio_closep(&pb) }
    }

    /// Missing file, directory and empty file get their own errors before FFmpeg sees the path
    /// (an image-sequence pattern with `%` goes to FFmpeg as it is).
    static func checkInputPath(_ path: String) throws {
        var st = stat()
        guard stat(path, &st) == 0 else {
            // An image-sequence pattern (frames/%05d.png) names no file itself: FFmpeg expands it.
            if path.contains("%") { return }
            if errno == ENOENT || errno == ENOTDIR { throw MediaError.fileNotFound(file: path) }
            throw MediaError.unrecognisedInput(file: path, message: String(cString: strerror(errno)))
        }
        let type = st.st_mode & S_IFMT
        if type == S_IFDIR { throw MediaError.isDirectory(file: path) }
        if type == S_IFREG && st.st_size == 0 { throw MediaError.emptyInput(file: path) }
        if access(path, R_OK) != 0 && errno == EACCES { throw MediaError.unreadableInput(file: path) }
    }

    static func openInput(path: String, file: String, options: InputOptions) throws
        -> UnsafeMutablePointer<AVFormatContext> {
        var dict: OpaquePointer?
        defer { av_dict_free(&dict) }
        var format: UnsafePointer<AVInputFormat>?
        if let name = options.format {
            format = av_find_input_format(name)
            guard format != nil else {
                throw MediaError.invalidArgument(file: file, message: "unknown input format '\(name)'")
            }
        }
        if options.format == "rawvideo" {
            guard let size = options.rawSize else {
                throw MediaError.invalidArgument(file: file, message: "raw video needs a frame size (--size WxH)")
            }
            guard av_get_pix_fmt(options.rawPixelFormat) != AV_PIX_FMT_NONE else {
                throw MediaError.invalidArgument(file: file, message: "unknown pixel format '\(options.rawPixelFormat)'")
            }
            guard options.rawRate > 0, options.rawRate.isFinite else {
                throw MediaError.invalidArgument(file: file, message: "raw video needs a positive --rate")
            }
            let rate = Rational(approximating: options.rawRate)
            av_dict_set(&dict, "video_size", size.description, 0)
            av_dict_set(&dict, "pixel_format", options.rawPixelFormat, 0)
            av_dict_set(&dict, "framerate", "\(rate.num)/\(rate.den)", 0)
        }
        if path == "-" { return try openPipe(file: file, format: format, options: &dict) }
        // "file:" keeps a path with a colon from being read as a protocol.
        var ctx: UnsafeMutablePointer<AVFormatContext>?
        try ff("avformat_open_input", file: file, mapping: { status in
            if status == FFCode.eof {   // nothing, or a file that ends inside its container's header
                var st = stat()
                let size = stat(path, &st) == 0 ? Int(st.st_size) : 0
                if size == 0 { return .emptyInput(file: file) }
                return .unrecognisedInput(file: file, message: "it ends inside its header, after \(size) bytes: truncated?")
            }
            if status == FFCode.posix(ENOENT) { return .fileNotFound(file: file) }
            if status == FFCode.posix(EACCES) { return .unrecognisedInput(file: file, message: "permission denied") }
            if VideoSource.startsLikeMP4(path) {
                return .endsEarly(file: file, framesDecoded: 0,
                                  message: "an mp4 without its index (moov): cut off, or a recording never finished")
            }
            return .unrecognisedInput(file: file, message: ffMessage(status))
        }) { avformat_open_input(&ctx, "file:" + path, format, &dict) }
        guard let ctx else { throw MediaError.unrecognisedInput(file: file, message: "no demuxer context") }
        return ctx
    }

    /// Standard input through an I/O context we own, so that after a failed probe we can tell
    /// "nothing arrived" (stdin closed at once) from "bytes that are not a video".
    static func openPipe(file: String, format: UnsafePointer<AVInputFormat>?, options dict: inout OpaquePointer?) throws
        -> UnsafeMutablePointer<AVFormatContext> {
        var pb: UnsafeMutablePointer<AVIOContext>?
        try ff("avio_open2(pipe:0)", file: file) { avio_open2(&pb, "pipe:0", AVIO_FLAG_READ, nil, nil) }
        guard let allocated = avformat_alloc_context() else {
            avio_closep(&pb)
            throw MediaError.ffmpeg(call: "avformat_alloc_context", file: file, code: 0, message: "out of memory")
        }
        allocated.pointee.pb = pb
        allocated.pointee.flags |= AVFMT_FLAG_CUSTOM_IO
        var ctx: UnsafeMutablePointer<AVFormatContext>? = allocated
        do {
            // On failure FFmpeg frees ctx but not our pb; pb's position says whether any byte came.
            try ff("avformat_open_input", file: file, mapping: { status in
                (pb?.pointee.pos ?? 0) == 0 ? .emptyInput(file: file) : .unrecognisedInput(file: file, message: ffMessage(status))
            }) { avformat_open_input(&ctx, "pipe:0", format, &dict) }
        } catch {
            avio_closep(&pb)
            throw error
        }
        guard let ctx else { throw MediaError.unrecognisedInput(file: file, message: "no demuxer context") }
        return ctx
    }

    /// True when the file begins with an ISO-BMFF `ftyp` box (mp4/mov family).
    static func startsLikeMP4(_ path: String) -> Bool {
        guard let handle = fopen(path, "rb") else { return false }
        defer { fclose(handle) }
        var head = [UInt8](repeating: 0, count: 8)
        guard fread(&head, 1, 8, handle) == 8 else { return false }
        return head[4...] == [0x66, 0x74, 0x79, 0x70][...]
    }
}
