import CFFmpeg
import EtokIO
#if canImport(Glibc)
import Glibc
#endif

/// Encodes RGB24 frames to PNG bytes with libavcodec's PNG encoder. Owns the encoder context and
/// a packet; one thread at a time. Cost: zlib compression of `width*height*3` bytes per frame.
final class PNGEncoder {
    private var context: UnsafeMutablePointer<AVCodecContext>?
    private var packet: UnsafeMutablePointer<AVPacket>?
    private var frame: UnsafeMutablePointer<AVFrame>?
    let file: String

    init(file: String) { self.file = file }

    deinit {
        avcodec_free_context(&context)
        av_packet_free(&packet)
        av_frame_free(&frame)
    }

    /// The PNG file bytes for `image`.
    func encode(_ image: VideoFrame) throws -> [UInt8] {
        if context == nil || context!.pointee.width != Int32(image.width) || context!.pointee.height != Int32(image.height) {
            try open(width: image.width, height: image.height)
        }
        guard let context, let packet, let frame else { return [] }
        var bytes: [UInt8] = []
        try image.rgb.withUnsafeBufferPointer { rgb in
            // The encoder copies non-refcounted input, so pointing at our array is safe.
            frame.pointee.data.0 = UnsafeMutablePointer(mutating: rgb.baseAddress)
            frame.pointee.linesize.0 = Int32(image.width * 3)
            frame.pointee.pts = Int64(image.index)
            defer { frame.pointee.data.0 = nil }
            try ff("avcodec_send_frame", file: file) { avcodec_send_frame(context, frame) }
        }
        try ff("avcodec_receive_packet", file: file) { avcodec_receive_packet(context, packet) }
        defer { av_packet_unref(packet) }
        bytes = Array(UnsafeBufferPointer(start: packet.pointee.data, count: Int(packet.pointee.size)))
        return bytes
    }

    private func open(width: Int, height: Int) throws {
        avcodec_free_context(&context)
        guard let codec = avcodec_find_encoder(AV_CODEC_ID_PNG), let ctx = avcodec_alloc_context3(codec) else {
            throw MediaError.invalidArgument(file: file, message: "no PNG encoder in this FFmpeg")
        }
        context = ctx
        ctx.pointee.width = Int32(width)
        ctx.pointee.height = Int32(height)
        ctx.pointee.pix_fmt = AV_PIX_FMT_RGB24
        ctx.pointee.time_base = AVRational(num: 1, den: 25)
        try ff("avcodec_open2", file: file) { avcodec_open2(ctx, codec, nil) }
        if packet == nil { packet = av_packet_alloc() }
        if frame == nil { frame = av_frame_alloc() }
        guard let frame, packet != nil else {
            throw MediaError.ffmpeg(call: "av_frame_alloc", file: file, code: 0, message: "out of memory")
        }
        frame.pointee.format = AV_PIX_FMT_RGB24.rawValue
        frame.pointee.width = Int32(width)
        frame.pointee.height = Int32(height)
    }
}

/// Writes exactly one picture to a `.png` name; a second frame is an error (use a pattern).
final class PNGWriter: VideoWriter, @unchecked Sendable {
    let file: String
    private(set) var framesWritten = 0
    private let placement: OutputPlacement
    private let encoder: PNGEncoder
    private var done = false

    init(path: String, options: OutputOptions) throws {
        placement = try OutputPlacement(path: path, overwrite: options.overwrite)
        file = placement.file
        encoder = PNGEncoder(file: file)
    }

    deinit { cancel() }

    func write(_ frame: VideoFrame) throws {
        guard framesWritten == 0 else { throw MediaError.tooManyFramesForImage(file: file) }
        let sink = try FileSink(placement)
        try sink.write(try encoder.encode(frame))
        try sink.close()
        framesWritten = 1
    }

    func finish() throws {
        guard !done else { return }
        guard framesWritten == 1 else {
            cancel()
            throw MediaError.invalidArgument(file: file, message: "no frames to write")
        }
        done = true
        do { try placement.commit() } catch { placement.discard(); throw error }
    }

    func cancel() {
        done = true
        placement.discard()
    }
}

/// A printf-style numbered file name such as `frames/%05d.png`: exactly one `%d` or `%0Nd`;
/// `%%` is a literal percent sign.
public struct ImagePattern: Sendable, Equatable {
    private let prefix: String
    private let suffix: String
    private let width: Int

    /// Parses `pattern`; nil unless it holds exactly one `%d`/`%0Nd`.
    public init?(_ pattern: String) {
        var prefix = "", suffix = "", width = 0, found = false
        var chars = Array(pattern)[...]
        while let c = chars.popFirst() {
            if c != "%" {
                if found { suffix.append(c) } else { prefix.append(c) }
                continue
            }
            if chars.first == "%" {
                chars.removeFirst()
                if found { suffix.append("%") } else { prefix.append("%") }
                continue
            }
            guard !found else { return nil }
            var digits = ""
            while let d = chars.first, d.isNumber { digits.append(d); chars.removeFirst() }
            guard chars.popFirst() == "d", digits.isEmpty || digits.hasPrefix("0") || digits.count == 1 else { return nil }
            width = Int(digits) ?? 0
            guard width <= 12 else { return nil }
            found = true
        }
        guard found else { return nil }
        self.prefix = prefix
        self.suffix = suffix
        self.width = width
    }

    /// The name of picture `number`, zero-padded to the pattern's width.
    public func path(for number: Int) -> String {
        let digits = String(number)
        return prefix + String(repeating: "0", count: max(0, width - digits.count)) + digits + suffix
    }
}

/// Writes each frame to its own PNG named by an `ImagePattern`, numbered from 1 as ffmpeg does.
/// Each file appears whole (temporary name, then rename); `cancel()` removes every file this
/// writer made, so an interrupted run leaves no partial sequence behind.
final class PNGSequenceWriter: VideoWriter, @unchecked Sendable {
    let file: String
    private(set) var framesWritten = 0
    private let pattern: ImagePattern
    private let options: OutputOptions
    private let encoder: PNGEncoder
    private var written: [String] = []
    private var done = false

    init(pattern text: String, options: OutputOptions) throws {
        guard let pattern = ImagePattern(text) else {
            throw MediaError.invalidArgument(file: text, message: "a picture pattern needs exactly one %d or %0Nd, e.g. frames/%05d.png")
        }
        self.pattern = pattern
        self.options = options
        file = text
        encoder = PNGEncoder(file: text)
        // Check the first name now (folder exists and is writable, no file in the way).
        let first = try OutputPlacement(path: pattern.path(for: 1), overwrite: options.overwrite)
        first.discard()
    }

    deinit { cancel() }

    func write(_ frame: VideoFrame) throws {
        guard !done else { throw OutputError.writeFailed(file: file, message: "writer already closed") }
        let path = pattern.path(for: framesWritten + 1)
        let placement = try OutputPlacement(path: path, overwrite: options.overwrite)
        do {
            let sink = try FileSink(placement)
            try sink.write(try encoder.encode(frame))
            try sink.close()
            try placement.commit()
        } catch {
            placement.discard()
            throw error
        }
        written.append(path)
        framesWritten += 1
    }

    func finish() throws {
        guard !done else { return }
        guard framesWritten > 0 else {
            cancel()
            throw MediaError.invalidArgument(file: file, message: "no frames to write")
        }
        done = true
    }

    func cancel() {
        guard !done else { return }
        done = true
        for path in written { unlink(path) }
        written = []
    }
}
