import CFFmpeg

/// Where the send/receive loop stands, and what it saw that decides how the stream ended.
struct DecodeState {
    /// av_read_frame reported the end; the decoder was told to drain.
    var inputEnded = false
    /// The decoder returned its last frame.
    var drained = false
    /// The last packet read was flagged corrupt by the demuxer (typically cut off by truncation).
    var lastPacketCorrupt = false
    /// The decoder's last result was damage: a frame flagged corrupt, or an error in its place.
    /// Frame threading returns results in packet order, so this is the last packet's fate.
    var lastResultDamaged = false
    /// Timestamp of the previous frame, to keep timestamps strictly increasing.
    var lastPts: Int64?
    /// Timestamp of the previous resampled (`--fps`) frame, in `frameTimeBase` units.
    var lastResampledPts: Int64?
    /// Demuxer errors logged before the last two reads: errors after it come from the end of the
    /// input (Matroska's "File ended prematurely"), errors before it from damage in the middle.
    var demuxerErrorsBeforeLastReads = 0
    var demuxerErrorsBeforeLastRead = 0
    /// Decode errors in a row without a good frame between them (a runaway guard).
    var errorsInARow = 0
}

extension VideoSource {
    /// The next frame in output order, or nil at the end of the stream.
    ///
    /// Without `frameRate` every decoded frame comes out (index = decode order). With it, frames
    /// come out on the resampled timeline: index k at `origin + k / rate` seconds, where origin is
    /// the first frame's time, stamped in `frameTimeBase` units; some source frames are dropped or
    /// repeated. Decode errors in the middle are counted in `decodeErrors`
    /// and skipped. Throws `MediaError` when the input ends early (truncated file, stdin closed in
    /// the middle of a frame, a partial raw frame, an mp4 index unreadable on a pipe) or when no
    /// frame decodes at all.
    public func nextFrame() throws -> DecodedFrame? {
        guard sampler != nil else { return try decodeNext() }
        while ready.isEmpty {
            guard let next = try decodeNext() else {
                guard let last = held else { return nil }
                held = nil
                let unit = timeBase.value ?? 0
                resample(last, until: last.seconds + Double(nominalDuration) * unit)
                break
            }
            if let previous = held { resample(previous, until: next.seconds) }
            held = next
        }
        return ready.isEmpty ? nil : ready.removeFirst()
    }

    /// Queues `frame` once for every resampled index whose time falls before `end`, stamped with
    /// that index's time `origin + k / rate` in `frameTimeBase` units (strictly increasing).
    private func resample(_ frame: DecodedFrame, until end: Double) {
        guard var sampler else { return }
        let range = sampler.indices(from: frame.seconds, to: end)
        self.sampler = sampler
        guard let origin = sampler.origin, let unit = frameTimeBase.value else { return }
        for k in range {
            var pts = Int64(((origin + sampler.time(of: k)) / unit).rounded())
            if let last = decode.lastResampledPts, pts <= last { pts = last + 1 }
            decode.lastResampledPts = pts
            if let copy = frame.retimed(index: k, pts: pts, timeBase: frameTimeBase) { ready.append(copy) }
        }
    }

    /// Decodes the next frame of the stream (decode order = presentation order out of the decoder).
    func decodeNext() throws -> DecodedFrame? {
        guard let codec = codecContext, let frame = scratch else { return nil }
        while !decode.drained {
            let status = avcodec_receive_frame(codec, frame)
            if status == 0 {
                return try accept(frame)
            } else if status == FFCode.eof || (status == FFCode.again && decode.inputEnded) {
                decode.drained = true
                try checkEnding()
            } else if status == FFCode.again {
                try feed(codec)
            } else {
                try noteDecodeError(status)
            }
        }
        return nil
    }

    /// Reads packets until one of our stream goes to the decoder, or the input ends.
    private func feed(_ codec: UnsafeMutablePointer<AVCodecContext>) throws {
        guard let ctx = formatContext, let packet else { return }
        while true {
            decode.demuxerErrorsBeforeLastReads = decode.demuxerErrorsBeforeLastRead
            decode.demuxerErrorsBeforeLastRead = demuxerErrors
            var status: Int32
            do {
                status = try ff("av_read_frame", file: file, passing: [FFCode.eof, FFCode.again],
                                mapping: readFailure) { av_read_frame(ctx, packet) }
            } catch let error as MediaError {
                guard case .endsEarly = error, try endEarly(error) else { throw error }
                status = FFCode.eof
            }
            if status == FFCode.eof {
                decode.inputEnded = true
                avcodec_send_packet(codec, nil)   // enter draining; it cannot fail in a useful way
                return
            }
            if status == FFCode.again { continue }
            defer { av_packet_unref(packet) }
            guard packet.pointee.stream_index == streamIndex else { continue }
            if let expected = rawFrameBytes, Int(packet.pointee.size) < expected {
                _ = try endEarly(.partialRawFrame(file: file, bytes: Int(packet.pointee.size),
                                                  frameBytes: expected, framesRead: framesDecoded))
                decode.inputEnded = true   // the partial frame is dropped
                avcodec_send_packet(codec, nil)
                return
            }
            decode.lastPacketCorrupt = packet.pointee.flags & AV_PKT_FLAG_CORRUPT != 0
            // A rejected packet is a decode error to count, not a failure: decoding goes on.
            let sent = avcodec_send_packet(codec, packet)
            if sent < 0 && sent != FFCode.again { try noteDecodeError(sent) }
            return
        }
    }

    /// Takes the decoder's frame: counts it, flags damage, gives it a strictly increasing timestamp.
    private func accept(_ frame: UnsafeMutablePointer<AVFrame>) throws -> DecodedFrame {
        decode.lastResultDamaged = frame.pointee.flags & AV_FRAME_FLAG_CORRUPT != 0 || frame.pointee.decode_error_flags != 0
        decode.errorsInARow = 0
        var pts = frame.pointee.best_effort_timestamp
        if pts == etok_av_nopts_value() {
            pts = decode.lastPts.map { $0 + nominalDuration } ?? 0
        } else if let last = decode.lastPts, pts <= last {
            pts = last + nominalDuration
        }
        decode.lastPts = pts
        guard let owned = av_frame_alloc() else {
            throw MediaError.ffmpeg(call: "av_frame_alloc", file: file, code: 0, message: "out of memory")
        }
        av_frame_move_ref(owned, frame)
        framesDecoded += 1
        var aspect = Rational(owned.pointee.sample_aspect_ratio)
        if aspect.num <= 0 || aspect.den <= 0 { aspect = info.sampleAspect }
        return DecodedFrame(frame: owned, index: framesDecoded - 1, pts: pts, timeBase: timeBase,
                            rotation: info.rotation, sampleAspect: aspect, file: file)
    }

    /// A send or receive call failed: decoding goes on (the decoder logged it, which is what
    /// `decodeErrors` counts), unless it fails on and on without a frame.
    private func noteDecodeError(_ status: Int32) throws {
        decode.lastResultDamaged = true
        decode.errorsInARow += 1
        if decode.errorsInARow > 1000 {
            throw MediaError.ffmpeg(call: "avcodec_receive_frame", file: file, code: status,
                                    message: "\(ffMessage(status)), 1000 times in a row")
        }
    }

    /// A read error: on a pipe, an mp4 that never produced a frame has its index at the end;
    /// otherwise the data stops where the container says more should be.
    private func readFailure(_ status: Int32) -> MediaError {
        if isPipe && info.container.hasPrefix("mov") && framesDecoded == 0 {
            return .indexAtEndOnPipe(file: file)
        }
        return .endsEarly(file: file, framesDecoded: framesDecoded, message: ffMessage(status))
    }

    /// At the end: no frame at all is an error, and so is a stream whose last packet or frame
    /// was cut off (truncated file, stdin closed in the middle of a frame).
    private func checkEnding() throws {
        if framesDecoded == 0 {
            if isPipe && info.container.hasPrefix("mov") { throw MediaError.indexAtEndOnPipe(file: file) }
            // Raw input opens without reading a byte, so an empty stdin shows only here.
            if let pb = formatContext?.pointee.pb, pb.pointee.pos == 0 { throw MediaError.emptyInput(file: file) }
            throw MediaError.noFrames(file: file)
        }
        if decode.lastPacketCorrupt || decode.lastResultDamaged {
            _ = try endEarly(.endsEarly(file: file, framesDecoded: framesDecoded, message: "the last frame is incomplete"))
        } else if demuxerErrors > decode.demuxerErrorsBeforeLastReads {
            // Errors the demuxer logged in its last reads: the file stops where more should be.
            _ = try endEarly(.endsEarly(file: file, framesDecoded: framesDecoded,
                                        message: "the container reported an error at its end"))
        }
    }

    /// The input ends before its end: throws `error`, unless `keepsTruncatedInput` lets the stream
    /// end here (after at least one frame), noting why in `endedEarly` and returning true.
    private func endEarly(_ error: MediaError) throws -> Bool {
        guard options.keepsTruncatedInput, framesDecoded > 0 else { throw error }
        if endedEarly == nil { endedEarly = error }
        return true
    }
}
