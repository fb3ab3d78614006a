import CFFmpeg

extension VideoSource {
    /// Reads the stream's metadata from the demuxer and codec parameters (no decoding).
    static func describe(ctx: UnsafeMutablePointer<AVFormatContext>, stream: UnsafeMutablePointer<AVStream>,
                         file: String) -> VideoInfo {
        let par = stream.pointee.codecpar.pointee
        let container = String(cString: ctx.pointee.iformat.pointee.name)
        let tb = Rational(stream.pointee.time_base)
        var aspect = Rational(av_guess_sample_aspect_ratio(ctx, stream, nil))
        if aspect.num <= 0 || aspect.den <= 0 { aspect = Rational(1, 1) }
        let avg = Rational(stream.pointee.avg_frame_rate)
        let real = Rational(stream.pointee.r_frame_rate)
        let fps = avg.value.flatMap { $0 > 0 && $0 < 1000 ? $0 : nil } ?? real.value.flatMap { $0 > 0 && $0 < 1000 ? $0 : nil }
        let noPts = etok_av_nopts_value()
        var duration: Double?
        if stream.pointee.duration != noPts, stream.pointee.duration > 0, let unit = tb.value {
            duration = Double(stream.pointee.duration) * unit
        } else if ctx.pointee.duration != noPts, ctx.pointee.duration > 0 {
            duration = Double(ctx.pointee.duration) / Double(AV_TIME_BASE)
        }
        let bitRate = par.bit_rate > 0 ? Int(par.bit_rate) : (ctx.pointee.bit_rate > 0 ? Int(ctx.pointee.bit_rate) : nil)
        let pixFmt = av_get_pix_fmt_name(AVPixelFormat(rawValue: par.format)).map { String(cString: $0) } ?? "unknown"
        // One picture file; a pattern (frames/%05d.png) is a sequence of them.
        let isStill = (container == "image2" && !file.contains("%")) || container.hasSuffix("_pipe")
        return VideoInfo(
            input: file,
            container: container,
            codec: String(cString: avcodec_get_name(par.codec_id)),
            width: Int(par.width), height: Int(par.height),
            pixelFormat: pixFmt,
            sampleAspect: aspect,
            rotation: rotation(of: stream),
            frameRate: fps,
            timeBase: tb,
            duration: isStill ? nil : duration,
            containerFrameCount: stream.pointee.nb_frames > 0 ? Int(stream.pointee.nb_frames) : nil,
            colorSpace: av_color_space_name(par.color_space).map { String(cString: $0) } ?? "unknown",
            colorRange: av_color_range_name(par.color_range).map { String(cString: $0) } ?? "unknown",
            bitRate: bitRate,
            isStill: isStill)
    }

    /// Clockwise degrees (0/90/180/270) to turn the picture upright, from the display matrix.
    /// av_display_rotation_get gives the counter-clockwise angle the matrix applies; as ffmpeg's
    /// autorotation does, we turn by its negation, rounded to a quarter turn.
    static func rotation(of stream: UnsafeMutablePointer<AVStream>) -> Int {
        guard let data = av_stream_get_side_data(stream, AV_PKT_DATA_DISPLAYMATRIX, nil) else { return 0 }
        let angle = data.withMemoryRebound(to: Int32.self, capacity: 9) { av_display_rotation_get($0) }
        guard angle.isFinite else { return 0 }
        let quarter = Int((-angle / 90).rounded())
        return ((quarter % 4) + 4) % 4 * 90
    }
}
