import EtokFormat
import EtokMedia
import EtokTokenizer
import Foundation

// Encoding and decoding through the C ABI (include/etok.h, "Encoding and decoding"): the same
// `EncodeRun` and `DecodeRun` that `etok encode` and `etok decode` run, so the .etok bytes and
// the frames are the CLI's, bit for bit. Frames in memory travel as a raw rgb24 file named
// `frames.rgb` in a private temporary folder: exactly `etok encode frames.rgb --input-format
// rawvideo --size WxH --rate R`, and `etok decode x.etok -o frames.rgb` the other way. Every call
// runs on a model the caller opened once (`etok_model`, Model.swift).

/// `etok_encode_options` (include/etok.h): all zero means the CLI's defaults. Same field order.
public struct EtokEncodeOptions {
    public var search: UnsafePointer<CChar>?
    public var fit: UnsafePointer<CChar>?
    public var inputFormat: UnsafePointer<CChar>?
    public var rawPixelFormat: UnsafePointer<CChar>?
    public var threshold: Double
    public var psnr: Double
    public var fps: Double
    public var rawRate: Double
    public var fixed: Int32
    public var chunk: Int32
    public var threads: Int32
    public var overwrite: Int32
    public var rawWidth: Int32
    public var rawHeight: Int32
    public var skipDamaged: Int32
    public var noRepeat: Int32
    public var tokensPerSecond: Double
    public var budget: Int64
    public var maxTokensPerChunk: Int32
    public var rateObjective: UnsafePointer<CChar>?
}

/// `etok_decode_options` (include/etok.h): all zero means the CLI's defaults. Same field order.
public struct EtokDecodeOptions {
    public var threads: Int32
    public var skipDamaged: Int32
    public var overwrite: Int32
    public var allowModelMismatch: Int32
}

/// An optional C string.
private func optional(_ p: UnsafePointer<CChar>?) -> String? { p.map { String(cString: $0) } }

/// The encode job `o` describes, with the checks `etok encode` makes on its options.
func encodeJob(input: String, output: String, _ o: EtokEncodeOptions, model: LoadedModel) throws -> EncodeJob {
    func bad(_ m: String) -> CABIError { .argument(m) }
    if o.threshold != 0 && o.psnr != 0 { throw bad("give threshold or psnr, not both") }
    if o.threshold != 0 && !(o.threshold > 0 && o.threshold.isFinite) { throw bad("threshold must be a positive MSE (for example 0.003)") }
    if o.psnr != 0 && !(o.psnr > 0 && o.psnr < 100) { throw bad("psnr must be in dB between 0 and 100 (for example 30)") }
    if o.fixed != 0 && (o.threshold != 0 || o.psnr != 0) { throw bad("fixed keeps a set budget; it takes no threshold or psnr") }
    if o.fixed < 0 { throw bad("fixed must be a positive number of tokens") }
    if o.chunk < 0 { throw bad("chunk must be at least 1 block") }
    if o.threads < 0 || o.threads > 256 { throw bad("threads must be 0 (all cores) to 256") }
    if !(o.fps >= 0 && o.fps.isFinite) { throw bad("fps must be positive (or 0: keep every frame)") }
    if !(o.rawRate >= 0 && o.rawRate.isFinite) { throw bad("raw rate must be positive") }
    let search = try optional(o.search).map { name in
        guard let s = SearchStrategy(rawValue: name) else { throw bad("search must be fast, binary or linear, not \(name)") }
        return s
    }
    if o.fixed != 0 && search != nil { throw bad("fixed keeps a set budget; it takes no search") }
    let fit = try optional(o.fit).map { name in
        guard let f = FitMode(rawValue: name) else { throw bad("fit must be crop, pad or stretch, not \(name)") }
        return f
    } ?? .crop
    let format = optional(o.inputFormat)
    if (format == "rawvideo") != (o.rawWidth > 0 && o.rawHeight > 0) {
        throw bad("raw input needs input_format \"rawvideo\" and a positive raw_width and raw_height, together")
    }
    // Rate control, with `etok encode`'s checks.
    if !(o.tokensPerSecond >= 0 && o.tokensPerSecond.isFinite) { throw bad("tokens_per_second must be a positive rate (for example 3000)") }
    if o.budget < 0 { throw bad("budget must be a positive number of tokens") }
    if o.maxTokensPerChunk < 0 { throw bad("max_tokens_per_chunk must be a positive number of tokens") }
    if o.tokensPerSecond != 0 && o.budget != 0 { throw bad("give tokens_per_second or budget, not both") }
    let rateTarget: RateTarget? = o.tokensPerSecond != 0 ? .tokensPerSecond(o.tokensPerSecond) : o.budget != 0 ? .budget(Int(o.budget)) : nil
    if o.fixed != 0 && (rateTarget != nil || o.maxTokensPerChunk != 0) {
        throw bad("fixed keeps a set budget; it takes no tokens_per_second, budget or max_tokens_per_chunk")
    }
    if rateTarget != nil && search != nil { throw bad("tokens_per_second and budget run no threshold search; drop search") }
    let objective = try optional(o.rateObjective).map { name in
        guard let r = RateObjective(rawValue: name) else { throw bad("rate_objective must be balanced, psnr or mse, not \(name)") }
        return r
    }
    if objective != nil && rateTarget == nil && o.maxTokensPerChunk == 0 {
        throw bad("rate_objective goes with tokens_per_second, budget or max_tokens_per_chunk")
    }
    let settings = EncoderSettings(
        threshold: EncoderSettings.mseThreshold(threshold: o.threshold == 0 ? nil : Float(o.threshold),
                                                psnr: o.psnr == 0 ? nil : o.psnr, model: model),
        search: search ?? .fast, fixedTokens: o.fixed == 0 ? nil : Int(o.fixed),
        chunkBlocks: o.chunk == 0 ? nil : Int(o.chunk),
        maxTokensPerChunk: o.maxTokensPerChunk == 0 ? nil : Int(o.maxTokensPerChunk), rateTarget: rateTarget,
        rateObjective: objective ?? .default, repeatBlocks: o.noRepeat == 0)
    var inputOptions = InputOptions(format: format,
                                    rawSize: o.rawWidth > 0 ? PixelSize(width: Int(o.rawWidth), height: Int(o.rawHeight)) : nil,
                                    rawPixelFormat: optional(o.rawPixelFormat) ?? "rgb24",
                                    rawRate: o.rawRate == 0 ? 25 : o.rawRate, frameRate: o.fps == 0 ? nil : o.fps)
    inputOptions.keepsTruncatedInput = o.skipDamaged != 0
    return EncodeJob(input: input, inputOptions: inputOptions, fit: fit, output: output, overwrite: o.overwrite != 0,
                     settings: settings, workers: o.threads == 0 ? ThreadPolicy.defaultWorkers : Int(o.threads))
}

/// Encodes with `o` and `model` and returns the summary as JSON (`etok encode --stats`).
func encode(input: String, output: String, _ o: EtokEncodeOptions, model: LoadedModel) throws -> String {
    FFmpegLog.silence()   // as the command by default: problems come back as one-line errors
    let run = try EncodeRun(job: try encodeJob(input: input, output: output, o, model: model), model: model)
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    return String(decoding: try encoder.encode(try run.run()), as: UTF8.self)
}

/// A private temporary folder, removed with everything in it after `body`.
func withTemporaryFolder<T>(_ body: (URL) throws -> T) throws -> T {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("etok-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: false,
                                            attributes: [.posixPermissions: 0o700])
    defer { try? FileManager.default.removeItem(at: folder) }
    return try body(folder)
}

private func options<T>(_ p: UnsafeRawPointer?, zero: T) -> T { p.map { $0.load(as: T.self) } ?? zero }
private var zeroEncode: EtokEncodeOptions { EtokEncodeOptions(threshold: 0, psnr: 0, fps: 0, rawRate: 0, fixed: 0, chunk: 0, threads: 0,
                                           overwrite: 0, rawWidth: 0, rawHeight: 0, skipDamaged: 0, noRepeat: 0,
                                           tokensPerSecond: 0, budget: 0, maxTokensPerChunk: 0) }
private var zeroDecode: EtokDecodeOptions { EtokDecodeOptions(threads: 0, skipDamaged: 0, overwrite: 0, allowModelMismatch: 0) }

/// Encodes the video at `input` (`-`: stdin) into the .etok file `output`; `summary`, when not
/// NULL, receives the encode's statistics as JSON (free with `etok_string_free`).
@_cdecl("etok_encode_file")
public func etok_encode_file(_ m: OpaquePointer?, _ input: UnsafePointer<CChar>?, _ output: UnsafePointer<CChar>?,
                             _ opts: UnsafeRawPointer?,
                             _ summary: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    guarded {
        summary?.pointee = nil
        let model = try loadedModel(m)
        let json = try encode(input: try string(input, "input"), output: try string(output, "output"),
                              options(opts, zero: zeroEncode), model: model)
        summary?.pointee = handOut(json)
    }
}

/// Encodes `count` frames of `height` × `width` RGB24 (row-major, frame after frame, no padding)
/// at `rate` frames per second into `output`, as `etok encode frames.rgb --input-format rawvideo
/// --size WxH --rate R` would; the input options of `opts` are ignored.
@_cdecl("etok_encode_frames")
public func etok_encode_frames(_ m: OpaquePointer?, _ rgb: UnsafePointer<UInt8>?, _ count: Int64, _ height: Int64, _ width: Int64,
                               _ rate: Double, _ output: UnsafePointer<CChar>?, _ opts: UnsafeRawPointer?,
                               _ summary: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    guarded {
        summary?.pointee = nil
        let model = try loadedModel(m)
        guard count > 0, (1...16384).contains(height), (1...16384).contains(width) else {
            throw CABIError.argument("frames must be a (T, H, W, 3) array with T ≥ 1 and sides 1...16384, not (\(count), \(height), \(width), 3)")
        }
        guard rate > 0, rate.isFinite else { throw CABIError.argument("rate must be a positive number of frames per second") }
        guard let rgb else { throw CABIError.argument("frames is NULL") }
        let out = try string(output, "output")
        var o = options(opts, zero: zeroEncode)
        let json = try withTemporaryFolder { folder -> String in
            let file = folder.appendingPathComponent("frames.rgb")
            try Data(bytesNoCopy: UnsafeMutableRawPointer(mutating: rgb), count: Int(count * height * width * 3),
                     deallocator: .none).write(to: file)
            return try "rawvideo".withCString { format in
                try "rgb24".withCString { pixels in
                    o.inputFormat = format
                    o.rawPixelFormat = pixels
                    (o.rawWidth, o.rawHeight, o.rawRate) = (Int32(width), Int32(height), rate)
                    return try encode(input: file.path, output: out, o, model: model)
                }
            }
        }
        summary?.pointee = handOut(json)
    }
}

/// Decodes `input` → `output` with `o` and `model`; the summary.
func decode(input: String, output: String, _ o: EtokDecodeOptions, model: LoadedModel) throws -> [String: Any] {
    FFmpegLog.silence()
    guard o.threads >= 0, o.threads <= 256 else { throw CABIError.argument("threads must be 0 (all cores) to 256") }
    var outputOptions = OutputOptions()
    outputOptions.overwrite = o.overwrite != 0
    let job = DecodeJob(input: input, output: output, outputOptions: outputOptions,
                        allowModelMismatch: o.allowModelMismatch != 0,
                        workers: o.threads == 0 ? ThreadPolicy.defaultWorkers : Int(o.threads), skipDamaged: o.skipDamaged != 0)
    let summary = try DecodeRun(job: job, model: model).run()
    let (h, w) = model.model.config.imageSize
    return ["frames": summary.framesWritten, "blocks": summary.blocksDecoded, "height": h, "width": w,
            "skipped": summary.skipped.map { ["blocks": $0.blocksText, "reason": $0.reason.problem] }]
}

/// Decodes the .etok stream `input` into the video `output` (.mp4, .y4m, .rgb, .png or a %05d
/// PNG pattern), as `etok decode`; `summary` as for encoding.
@_cdecl("etok_decode_file")
public func etok_decode_file(_ m: OpaquePointer?, _ input: UnsafePointer<CChar>?, _ output: UnsafePointer<CChar>?,
                             _ opts: UnsafeRawPointer?,
                             _ summary: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    guarded {
        summary?.pointee = nil
        let model = try loadedModel(m)
        let result = try decode(input: try string(input, "input"), output: try string(output, "output"),
                                options(opts, zero: zeroDecode), model: model)
        summary?.pointee = handOut(String(decoding: try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys]),
                                          as: UTF8.self))
    }
}

/// Decoded frames the library holds for the caller: `count` × `height` × `width` × 3 bytes.
final class FramesHandle {
    /// The bytes, allocated here (a stable address to hand out, unlike an array's storage).
    let bytes: UnsafeMutableBufferPointer<UInt8>
    let count: Int, height: Int, width: Int
    let summary: UnsafeMutablePointer<CChar>
    init(data: Data, count: Int, height: Int, width: Int, summary: String) {
        bytes = .allocate(capacity: max(1, data.count))
        _ = data.copyBytes(to: bytes)
        (self.count, self.height, self.width) = (count, height, width)
        self.summary = strdup(summary)
    }
    deinit {
        bytes.deallocate()
        free(summary)
    }
}

/// Decodes `input` into frames held by the library (`etok_frames_*`; release with `etok_frames_free`).
@_cdecl("etok_decode_frames")
public func etok_decode_frames(_ m: OpaquePointer?, _ input: UnsafePointer<CChar>?, _ opts: UnsafeRawPointer?,
                               _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded {
        guard let out else { throw CABIError.argument("out is NULL") }
        out.pointee = nil
        let model = try loadedModel(m)
        let path = try string(input, "input")
        var o = options(opts, zero: zeroDecode)
        o.overwrite = 0
        let handle = try withTemporaryFolder { folder -> FramesHandle in
            let file = folder.appendingPathComponent("frames.rgb")
            let result = try decode(input: path, output: file.path, o, model: model)
            let bytes = try Data(contentsOf: file)
            let (n, h, w) = (result["frames"] as! Int, result["height"] as! Int, result["width"] as! Int)
            guard bytes.count == n * h * w * 3 else {
                throw CABIError(status: .other, description: "\(path): decoded \(bytes.count) bytes for \(n) frames of \(w)x\(h)")
            }
            let json = String(decoding: try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys]), as: UTF8.self)
            return FramesHandle(data: bytes, count: n, height: h, width: w, summary: json)
        }
        out.pointee = OpaquePointer(Unmanaged.passRetained(handle).toOpaque())
    }
}

private func frames(_ f: OpaquePointer?) -> FramesHandle? {
    f.map { Unmanaged<FramesHandle>.fromOpaque(UnsafeRawPointer($0)).takeUnretainedValue() }
}

/// The frames' shape (count, height, width; 3 bytes a pixel); zeros for NULL.
@_cdecl("etok_frames_shape")
public func etok_frames_shape(_ f: OpaquePointer?, _ count: UnsafeMutablePointer<Int64>?,
                              _ height: UnsafeMutablePointer<Int64>?, _ width: UnsafeMutablePointer<Int64>?) {
    let h = frames(f)
    count?.pointee = Int64(h?.count ?? 0)
    height?.pointee = Int64(h?.height ?? 0)
    width?.pointee = Int64(h?.width ?? 0)
}

/// The frames' bytes, owned by the handle (valid until `etok_frames_free`); NULL for NULL.
@_cdecl("etok_frames_data")
public func etok_frames_data(_ f: OpaquePointer?) -> UnsafePointer<UInt8>? {
    frames(f).map { UnsafePointer($0.bytes.baseAddress!) }
}

/// The decode's summary as JSON, owned by the handle; NULL for NULL.
@_cdecl("etok_frames_summary")
public func etok_frames_summary(_ f: OpaquePointer?) -> UnsafePointer<CChar>? { frames(f).map { UnsafePointer($0.summary) } }

/// Releases decoded frames (NULL is ignored).
@_cdecl("etok_frames_free")
public func etok_frames_free(_ f: OpaquePointer?) {
    guard let f else { return }
    Unmanaged<FramesHandle>.fromOpaque(UnsafeRawPointer(f)).release()
}
