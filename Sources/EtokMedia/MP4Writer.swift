import CFFmpeg
import EtokIO

/// Writes frames as H.264 (libx264, CRF) in mp4, yuv420p tagged BT.601 limited range; falls back
/// to MPEG-4 Part 2 when libx264 is missing. The encoder opens at the first frame (it needs the
/// size); the file is written under a temporary name and renamed by `finish()`.
///
/// Timestamps: the first frame lands at 0; each frame keeps its distance from the first. FFmpeg 5.1
/// encoders hand back packets with duration 0, so each packet gets the nominal frame duration
/// (in the encoder's time base, before rescaling to the stream's) or the mp4 loses its last frame.
///
/// Owns the muxer, encoder, a swscale context and one YUV frame; one thread at a time.
final class MP4Writer: VideoWriter, @unchecked Sendable {
    let file: String
    private(set) var framesWritten = 0
    private let options: OutputOptions
    private let placement: OutputPlacement
    private var muxer: UnsafeMutablePointer<AVFormatContext>?
    private var encoder: UnsafeMutablePointer<AVCodecContext>?
    private var stream: UnsafeMutablePointer<AVStream>?
    private var yuv: UnsafeMutablePointer<AVFrame>?
    private var packet: UnsafeMutablePointer<AVPacket>?
    private var converter: RGBConverter?
    private var firstPts: Int64 = 0
    private var lastPts: Int64?
    private var frameDuration: Int64 = 1
    private var closed = false

    init(path: String, options: OutputOptions) throws {
        self.options = options
        placement = try OutputPlacement(path: path, overwrite: options.overwrite)
        file = placement.file
    }

    deinit { cancel() }

    /// The encoder this build will use: the requested one, else libx264, else mpeg4.
    static func pickEncoder(named name: String?) -> UnsafePointer<AVCodec>? {
        if let name, let codec = avcodec_find_encoder_by_name(name) { return codec }
        return avcodec_find_encoder_by_name("libx264") ?? avcodec_find_encoder(AV_CODEC_ID_MPEG4)
    }

    private func open(for frame: VideoFrame) throws {
        guard frame.width % 2 == 0, frame.height % 2 == 0 else {
            throw MediaError.invalidArgument(file: file, message: "mp4 (yuv420p) needs an even width and height, got \(frame.width)x\(frame.height)")
        }
        guard let codec = MP4Writer.pickEncoder(named: options.videoCodec) else {
            throw MediaError.invalidArgument(file: file, message: "no H.264 or MPEG-4 encoder in this FFmpeg")
        }
        var ctx: UnsafeMutablePointer<AVFormatContext>?
        try ff("avformat_alloc_output_context2", file: file) { avformat_alloc_output_context2(&ctx, nil, "mp4", nil) }
        muxer = ctx
        guard let ctx, let stream = avformat_new_stream(ctx, nil), let enc = avcodec_alloc_context3(codec) else {
            throw MediaError.ffmpeg(call: "avformat_new_stream", file: file, code: 0, message: "out of memory")
        }
        self.stream = stream
        encoder = enc
        // The frames' own time base when an encoder can take it; MPEG-4 caps the denominator.
        var timeBase = frame.timeBase
        if timeBase.num <= 0 || timeBase.den <= 0 || timeBase.den > 65535 {
            timeBase = Rational(options.frameRate.den, options.frameRate.num)
        }
        enc.pointee.width = Int32(frame.width)
        enc.pointee.height = Int32(frame.height)
        enc.pointee.pix_fmt = AV_PIX_FMT_YUV420P
        enc.pointee.time_base = timeBase.av
        enc.pointee.framerate = options.frameRate.av
        enc.pointee.sample_aspect_ratio = AVRational(num: 1, den: 1)
        enc.pointee.colorspace = AVCOL_SPC_SMPTE170M
        enc.pointee.color_primaries = AVCOL_PRI_SMPTE170M
        enc.pointee.color_trc = AVCOL_TRC_SMPTE170M
        enc.pointee.color_range = AVCOL_RANGE_MPEG
        if ctx.pointee.oformat.pointee.flags & AVFMT_GLOBALHEADER != 0 {
            enc.pointee.flags |= AV_CODEC_FLAG_GLOBAL_HEADER
        }
        if String(cString: codec.pointee.name) == "libx264" {
            try ff("av_opt_set(crf)", file: file) { av_opt_set(enc.pointee.priv_data, "crf", "\(options.crf)", 0) }
        } else {
            // MPEG-4 Part 2: fixed quantiser, roughly CRF's quality band.
            enc.pointee.flags |= AV_CODEC_FLAG_QSCALE
            enc.pointee.global_quality = Int32(FF_QP2LAMBDA) * Int32(max(2, min(31, options.crf / 6)))
        }
        try ff("avcodec_open2", file: file) { avcodec_open2(enc, codec, nil) }
        try ff("avcodec_parameters_from_context", file: file) { avcodec_parameters_from_context(stream.pointee.codecpar, enc) }
        stream.pointee.time_base = enc.pointee.time_base
        guard let target = placement.writePath else { throw MediaError.invalidArgument(file: file, message: "mp4 needs a file") }
        try writing("avio_open") { avio_open(&ctx.pointee.pb, "file:" + target, AVIO_FLAG_WRITE) }
        try writing("avformat_write_header") { avformat_write_header(ctx, nil) }
        frameDuration = max(1, av_rescale_q(1, AVRational(num: options.frameRate.den, den: options.frameRate.num), enc.pointee.time_base))

        guard let yuv = av_frame_alloc(), let packet = av_packet_alloc() else {
            throw MediaError.ffmpeg(call: "av_frame_alloc", file: file, code: 0, message: "out of memory")
        }
        self.yuv = yuv
        self.packet = packet
        yuv.pointee.format = AV_PIX_FMT_YUV420P.rawValue
        yuv.pointee.width = Int32(frame.width)
        yuv.pointee.height = Int32(frame.height)
        try ff("av_frame_get_buffer", file: file) { av_frame_get_buffer(yuv, 0) }
        converter = try RGBConverter(width: frame.width, height: frame.height, to: AV_PIX_FMT_YUV420P, file: file)
        firstPts = av_rescale_q(frame.pts, frame.timeBase.av, enc.pointee.time_base)
    }

    func write(_ frame: VideoFrame) throws {
        guard !closed else { throw OutputError.writeFailed(file: file, message: "writer already closed") }
        if encoder == nil { try open(for: frame) }
        guard let enc = encoder, let yuv, let converter else { return }
        guard Int32(frame.width) == enc.pointee.width, Int32(frame.height) == enc.pointee.height else {
            throw MediaError.invalidArgument(file: file, message: "frame size changed to \(frame.width)x\(frame.height)")
        }
        try ff("av_frame_make_writable", file: file) { av_frame_make_writable(yuv) }
        let planes = withUnsafeBytes(of: yuv.pointee.data) { Array($0.bindMemory(to: UnsafeMutablePointer<UInt8>?.self)) }
        let strides = withUnsafeBytes(of: yuv.pointee.linesize) { Array($0.bindMemory(to: Int32.self)) }
        try frame.rgb.withUnsafeBufferPointer { try converter.convert($0.baseAddress!, into: planes, strides: strides) }
        var pts = av_rescale_q(frame.pts, frame.timeBase.av, enc.pointee.time_base) - firstPts
        if let last = lastPts, pts <= last { pts = last + 1 }   // an encoder rejects repeats
        lastPts = pts
        yuv.pointee.pts = pts
        try ff("avcodec_send_frame", file: file) { avcodec_send_frame(enc, yuv) }
        try drainPackets()
        framesWritten += 1
    }

    /// Moves every packet the encoder has ready into the muxer.
    private func drainPackets() throws {
        guard let enc = encoder, let packet, let stream, let muxer else { return }
        while true {
            let status = try ff("avcodec_receive_packet", file: file, passing: [FFCode.again, FFCode.eof]) {
                avcodec_receive_packet(enc, packet)
            }
            if status < 0 { return }
            if packet.pointee.duration == 0 { packet.pointee.duration = frameDuration }
            av_packet_rescale_ts(packet, enc.pointee.time_base, stream.pointee.time_base)
            packet.pointee.stream_index = stream.pointee.index
            try writing("av_interleaved_write_frame") { av_interleaved_write_frame(muxer, packet) }
        }
    }

    /// An FFmpeg call that writes: a failure is a write failure of this output (full disk...).
    private func writing(_ call: String, _ body: () -> Int32) throws {
        let status = body()
        guard status < 0 else { return }
        if status == FFCode.posix(EPIPE) { throw OutputError.closed(file: file) }
        throw OutputError.writeFailed(file: file, message: "\(call): \(ffMessage(status))")
    }

    func finish() throws {
        guard !closed else { return }
        do {
            guard let enc = encoder, let muxer else {
                throw MediaError.invalidArgument(file: file, message: "no frames to write")
            }
            try ff("avcodec_send_frame", file: file) { avcodec_send_frame(enc, nil) }
            try drainPackets()
            try writing("av_write_trailer") { av_write_trailer(muxer) }
            try writing("avio_closep") { avio_closep(&muxer.pointee.pb) }
            release()
            try placement.commit()
        } catch {
            cancel()
            throw error
        }
    }

    func cancel() {
        release()
        placement.discard()
    }

    private func release() {
        closed = true
        if let muxer {
            if muxer.pointee.pb != nil { avio_closep(&muxer.pointee.pb) }
            avformat_free_context(muxer)
            self.muxer = nil
        }
        avcodec_free_context(&encoder)
        av_frame_free(&yuv)
        av_packet_free(&packet)
        converter = nil
    }
}
