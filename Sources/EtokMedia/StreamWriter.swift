import CFFmpeg
import EtokIO

/// Writes uncompressed frames: y4m (YUV4MPEG2, 4:4:4, BT.601 limited range, the format ffmpeg
/// reads from a pipe) or raw RGB24. To a file (through a temporary name) or stdout.
///
/// Owns the output descriptor and, for y4m, a swscale context and one YUV frame buffer.
/// Cost per frame: one RGB→YUV pass for y4m; raw RGB is written as is.
final class StreamWriter: VideoWriter, @unchecked Sendable {
    let file: String
    private(set) var framesWritten = 0
    private let format: OutputFormat
    private let options: OutputOptions
    private let placement: OutputPlacement
    private var sink: FileSink?
    private var converter: RGBConverter?
    private var size: (width: Int, height: Int)?
    private var planes: [UInt8] = []

    init(path: String, format: OutputFormat, options: OutputOptions) throws {
        self.format = format
        self.options = options
        placement = try OutputPlacement(path: path, overwrite: options.overwrite)
        file = placement.file
        do {
            sink = try FileSink(placement)
        } catch {
            placement.discard()
            throw error
        }
    }

    deinit { cancel() }

    func write(_ frame: VideoFrame) throws {
        guard let sink else { throw OutputError.writeFailed(file: file, message: "writer already closed") }
        try checkSize(frame)
        if format == .rgb {
            try sink.write(frame.rgb)
        } else {
            if framesWritten == 0 {
                let rate = options.frameRate
                let header = "YUV4MPEG2 W\(frame.width) H\(frame.height) F\(rate.num):\(rate.den) Ip A1:1 C444\n"
                try sink.write(Array(header.utf8))
            }
            if converter == nil {
                converter = try RGBConverter(width: frame.width, height: frame.height, to: AV_PIX_FMT_YUV444P, file: file)
            }
            try converter!.convert(frame, into: &planes)
            try sink.write(Array("FRAME\n".utf8))
            try sink.write(planes)
        }
        framesWritten += 1
    }

    private func checkSize(_ frame: VideoFrame) throws {
        if let size {
            guard size == (frame.width, frame.height) else {
                throw MediaError.invalidArgument(file: file, message: "frame size changed from \(size.width)x\(size.height) to \(frame.width)x\(frame.height)")
            }
        } else {
            size = (frame.width, frame.height)
        }
    }

    func finish() throws {
        guard let sink else { return }
        self.sink = nil
        do {
            try sink.close()
            try placement.commit()
        } catch {
            placement.discard()
            throw error
        }
    }

    func cancel() {
        if let sink { try? sink.close() }
        sink = nil
        placement.discard()
    }
}

/// RGB24 → a YUV format with BT.601 limited-range coefficients, the convention of untagged
/// YUV (y4m) and of the tags our mp4 writer sets. Owns a swscale context; one thread at a time.
final class RGBConverter {
    private let context: OpaquePointer
    let width: Int, height: Int
    let format: AVPixelFormat
    let file: String

    init(width: Int, height: Int, to format: AVPixelFormat, file: String) throws {
        guard let context = sws_getContext(Int32(width), Int32(height), AV_PIX_FMT_RGB24, Int32(width), Int32(height),
                                           format, SWS_BICUBIC, nil, nil, nil) else {
            throw MediaError.ffmpeg(call: "sws_getContext", file: file, code: 0, message: "cannot convert RGB24 to YUV")
        }
        self.context = context
        self.width = width
        self.height = height
        self.format = format
        self.file = file
        let bt601 = sws_getCoefficients(SWS_CS_ITU601)
        try ff("sws_setColorspaceDetails", file: file) {
            sws_setColorspaceDetails(context, bt601, 1, bt601, 0, 0, 1 << 16, 1 << 16)
        }
    }

    deinit { sws_freeContext(context) }

    /// Converts into planes laid out one after another with no padding (y4m's layout).
    func convert(_ frame: VideoFrame, into planes: inout [UInt8]) throws {
        let chromaW = format == AV_PIX_FMT_YUV420P ? (width + 1) / 2 : width
        let chromaH = format == AV_PIX_FMT_YUV420P ? (height + 1) / 2 : height
        let total = width * height + 2 * chromaW * chromaH
        if planes.count != total { planes = [UInt8](repeating: 0, count: total) }
        try frame.rgb.withUnsafeBufferPointer { rgb in
            try planes.withUnsafeMutableBufferPointer { out in
                let y = out.baseAddress!
                let u = y + width * height
                let v = u + chromaW * chromaH
                try convert(rgb.baseAddress!, into: [y, u, v, nil], strides: [Int32(width), Int32(chromaW), Int32(chromaW), 0])
            }
        }
    }

    /// Converts into caller-provided planes (an AVFrame's buffers).
    func convert(_ rgb: UnsafePointer<UInt8>, into planes: [UnsafeMutablePointer<UInt8>?], strides: [Int32]) throws {
        let src: [UnsafePointer<UInt8>?] = [rgb, nil, nil, nil]
        let srcStride: [Int32] = [Int32(width * 3), 0, 0, 0]
        try ff("sws_scale", file: file) { sws_scale(context, src, srcStride, 0, Int32(height), planes, strides) }
    }
}
