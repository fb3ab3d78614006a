import CFFmpeg

/// The model's input shape and how frames are fitted to it.
public struct PreprocessOptions: Sendable, Equatable {
    /// Output width and height in pixels (the model resolution).
    public var width: Int
    public var height: Int
    /// How another shape is fitted (`--fit`).
    public var fit: FitMode

    /// Defaults: 128×128, centre crop (as ElasticTok's data pipeline).
    public init(width: Int = 128, height: Int = 128, fit: FitMode = .crop) {
        self.width = width
        self.height = height
        self.fit = fit
    }
}

/// Turns decoded frames of any size and pixel format into model-input `VideoFrame`s: crops or
/// pads per `FitMode` (honouring the pixel aspect ratio), scales (bicubic), converts to RGB24 with
/// the source's colour matrix and range (BT.601/709/2020, limited/full; untagged counts as BT.601
/// as in FFmpeg) and applies the stream's rotation.
///
/// Owns a swscale context, rebuilt only when the source's size, format or colour tags change.
/// Not thread-safe: one preprocessor per stage/thread. Cost per frame: one swscale pass over the
/// kept region, writing `width*height*3` bytes, plus a byte copy when rotating.
public final class Preprocessor: @unchecked Sendable {
    /// The target shape and fit.
    public let options: PreprocessOptions

    private struct ContextKey: Equatable {
        var width: Int32, height: Int32, format: Int32
        var targetWidth: Int, targetHeight: Int
        var matrix: Int32, fullRange: Bool
    }

    private var context: OpaquePointer?
    private var key: ContextKey?

    /// A preprocessor for `options`; sizes must be 1...16384.
    public init(options: PreprocessOptions = PreprocessOptions()) throws {
        guard (1...16384).contains(options.width), (1...16384).contains(options.height) else {
            throw MediaError.invalidArgument(file: "preprocess", message: "size \(options.width)x\(options.height) is out of range")
        }
        self.options = options
    }

    deinit { sws_freeContext(context) }

    /// The model-input picture for `frame`, keeping its index and timestamp.
    public func process(_ frame: DecodedFrame) throws -> VideoFrame {
        let quarterTurn = frame.rotation == 90 || frame.rotation == 270
        let canvasWidth = quarterTurn ? options.height : options.width
        let canvasHeight = quarterTurn ? options.width : options.height
        var plan = FitPlan(width: frame.width, height: frame.height, aspect: frame.sampleAspect.value ?? 1,
                           canvasWidth: canvasWidth, canvasHeight: canvasHeight, mode: options.fit)
        guard let desc = av_pix_fmt_desc_get(AVPixelFormat(rawValue: frame.frame.pointee.format)) else {
            throw MediaError.invalidArgument(file: frame.file, message: "frame has no pixel format")
        }
        // Chroma planes can only be cut on whole chroma samples.
        let alignX = 1 << Int(desc.pointee.log2_chroma_w), alignY = 1 << Int(desc.pointee.log2_chroma_h)
        plan.source.x -= plan.source.x % alignX
        plan.source.y -= plan.source.y % alignY

        let source = try cropped(frame, to: plan.source)
        defer { if source != frame.frame { var s: UnsafeMutablePointer<AVFrame>? = source; av_frame_free(&s) } }
        let sws = try scaler(for: source.pointee, desc: desc, target: plan.target)

        var canvas = [UInt8](repeating: 0, count: canvasWidth * canvasHeight * 3)
        let srcData = withUnsafeBytes(of: source.pointee.data) { Array($0.bindMemory(to: UnsafePointer<UInt8>?.self)) }
        let srcStride = withUnsafeBytes(of: source.pointee.linesize) { Array($0.bindMemory(to: Int32.self)) }
        try canvas.withUnsafeMutableBufferPointer { buffer in
            let start = buffer.baseAddress! + (plan.target.y * canvasWidth + plan.target.x) * 3
            let dst: [UnsafeMutablePointer<UInt8>?] = [start, nil, nil, nil]
            let dstStride: [Int32] = [Int32(canvasWidth * 3), 0, 0, 0]
            try ff("sws_scale", file: frame.file) {
                sws_scale(sws, srcData, srcStride, 0, source.pointee.height, dst, dstStride)
            }
        }
        let rgb = frame.rotation == 0 ? canvas
            : rotateRGB(canvas, width: canvasWidth, height: canvasHeight, clockwise: frame.rotation)
        return VideoFrame(index: frame.index, pts: frame.pts, timeBase: frame.timeBase,
                          width: options.width, height: options.height, rgb: rgb)
    }

    /// A new reference to `frame` cut to `rect` (no pixel copy), or the frame itself if uncut.
    private func cropped(_ frame: DecodedFrame, to rect: PixelRect) throws -> UnsafeMutablePointer<AVFrame> {
        let f = frame.frame
        if rect.x == 0 && rect.y == 0 && rect.width == frame.width && rect.height == frame.height { return f }
        guard let ref = av_frame_alloc() else {
            throw MediaError.ffmpeg(call: "av_frame_alloc", file: frame.file, code: 0, message: "out of memory")
        }
        do {
            try ff("av_frame_ref", file: frame.file) { av_frame_ref(ref, f) }
            ref.pointee.crop_left = rect.x
            ref.pointee.crop_top = rect.y
            ref.pointee.crop_right = frame.width - rect.x - rect.width
            ref.pointee.crop_bottom = frame.height - rect.y - rect.height
            try ff("av_frame_apply_cropping", file: frame.file) {
                av_frame_apply_cropping(ref, Int32(AV_FRAME_CROP_UNALIGNED))
            }
        } catch {
            var r: UnsafeMutablePointer<AVFrame>? = ref
            av_frame_free(&r)
            throw error
        }
        return ref
    }

    /// The swscale context for this source shape and colour, rebuilt only when they change.
    private func scaler(for frame: AVFrame, desc: UnsafePointer<AVPixFmtDescriptor>, target: PixelRect) throws -> OpaquePointer {
        let isRGB = desc.pointee.flags & UInt64(AV_PIX_FMT_FLAG_RGB) != 0
        let isGray = desc.pointee.nb_components < 3
        let fullRange = frame.color_range == AVCOL_RANGE_JPEG
        let wanted = ContextKey(width: frame.width, height: frame.height, format: frame.format,
                                targetWidth: target.width, targetHeight: target.height,
                                matrix: Preprocessor.matrix(of: frame.colorspace), fullRange: fullRange)
        if let context, key == wanted { return context }
        sws_freeContext(context)
        context = nil
        key = nil
        guard let made = sws_getContext(frame.width, frame.height, AVPixelFormat(rawValue: frame.format),
                                        Int32(target.width), Int32(target.height), AV_PIX_FMT_RGB24,
                                        SWS_BICUBIC, nil, nil, nil) else {
            throw MediaError.ffmpeg(call: "sws_getContext", file: "preprocess", code: 0,
                                    message: "cannot convert \(frame.width)x\(frame.height) \(String(cString: desc.pointee.name)) to RGB24")
        }
        context = made
        if !isRGB && !isGray {
            // Source matrix and range in; full-range RGB out (the last matrix is unused for RGB).
            let table = sws_getCoefficients(wanted.matrix)
            try ff("sws_setColorspaceDetails", file: "preprocess") {
                sws_setColorspaceDetails(made, table, fullRange ? 1 : 0, sws_getCoefficients(SWS_CS_DEFAULT), 1,
                                         0, 1 << 16, 1 << 16)
            }
        }
        key = wanted
        return made
    }

    /// swscale's matrix constant for an FFmpeg colour-space tag; untagged counts as BT.601.
    static func matrix(of space: AVColorSpace) -> Int32 {
        switch space {
        case AVCOL_SPC_BT709: return SWS_CS_ITU709
        case AVCOL_SPC_FCC: return SWS_CS_FCC
        case AVCOL_SPC_SMPTE240M: return SWS_CS_SMPTE240M
        case AVCOL_SPC_BT2020_NCL, AVCOL_SPC_BT2020_CL: return SWS_CS_BT2020
        default: return SWS_CS_ITU601
        }
    }
}

/// Turns a packed RGB24 picture by `clockwise` degrees (90, 180 or 270). Cost: one pass, 3 bytes
/// per pixel. A 90/270 turn swaps width and height.
func rotateRGB(_ src: [UInt8], width: Int, height: Int, clockwise: Int) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: src.count)
    let outWidth = clockwise == 180 ? width : height
    let outHeight = clockwise == 180 ? height : width
    for y in 0..<outHeight {
        for x in 0..<outWidth {
            let (sx, sy): (Int, Int)
            switch clockwise {
            case 90: (sx, sy) = (y, height - 1 - x)
            case 180: (sx, sy) = (width - 1 - x, height - 1 - y)
            default: (sx, sy) = (width - 1 - y, x)
            }
            let s = (sy * width + sx) * 3, d = (y * outWidth + x) * 3
            out[d] = src[s]
            out[d + 1] = src[s + 1]
            out[d + 2] = src[s + 2]
        }
    }
    return out
}
