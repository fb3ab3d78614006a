import CFFmpeg

/// Resizes RGB24 `VideoFrame`s (bicubic, through swscale): `etok decode --scale WxH`.
///
/// Owns one swscale context, rebuilt only when the input size changes. Not thread-safe: one per
/// stage. Cost per frame: one swscale pass writing `width*height*3` bytes.
public final class RGBScaler: @unchecked Sendable {
    public let width: Int
    public let height: Int
    private var context: OpaquePointer?
    private var sourceSize: (Int, Int)?

    /// A scaler to width × height (1...16384 each).
    public init(width: Int, height: Int) throws {
        guard (1...16384).contains(width), (1...16384).contains(height) else {
            throw MediaError.invalidArgument(file: "scale", message: "size \(width)x\(height) is out of range")
        }
        self.width = width
        self.height = height
    }

    deinit { sws_freeContext(context) }

    /// `frame` resized; index and timestamp are kept. A frame already at the size is returned as is.
    public func scale(_ frame: VideoFrame) throws -> VideoFrame {
        if frame.width == width && frame.height == height { return frame }
        if sourceSize.map({ $0 != (frame.width, frame.height) }) ?? true {
            sws_freeContext(context)
            context = sws_getContext(Int32(frame.width), Int32(frame.height), AV_PIX_FMT_RGB24,
                                     Int32(width), Int32(height), AV_PIX_FMT_RGB24, SWS_BICUBIC, nil, nil, nil)
            sourceSize = (frame.width, frame.height)
        }
        guard let context else {
            throw MediaError.ffmpeg(call: "sws_getContext", file: "scale", code: 0,
                                    message: "cannot scale \(frame.width)x\(frame.height) to \(width)x\(height)")
        }
        var out = [UInt8](repeating: 0, count: width * height * 3)
        try frame.rgb.withUnsafeBufferPointer { src in
            try out.withUnsafeMutableBufferPointer { dst in
                let srcData: [UnsafePointer<UInt8>?] = [src.baseAddress, nil, nil, nil]
                let srcStride: [Int32] = [Int32(frame.width * 3), 0, 0, 0]
                let dstData: [UnsafeMutablePointer<UInt8>?] = [dst.baseAddress, nil, nil, nil]
                let dstStride: [Int32] = [Int32(width * 3), 0, 0, 0]
                try ff("sws_scale", file: "scale") {
                    sws_scale(context, srcData, srcStride, 0, Int32(frame.height), dstData, dstStride)
                }
            }
        }
        return VideoFrame(index: frame.index, pts: frame.pts, timeBase: frame.timeBase, width: width, height: height, rgb: out)
    }
}
