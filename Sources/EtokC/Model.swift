import EtokTokenizer
import Foundation

// The model handle of the C ABI (include/etok.h, "Models"): weights loaded and checked once, then
// shared by every encode and decode through it, from any thread. The model is immutable
// (`ElasticTokModel`); each call builds its own sessions, so calls through one handle are
// independent and give the same bytes as the command.

/// A model the caller holds (`etok_model`): the loaded weights and their description as JSON.
final class ModelHandle {
    let loaded: LoadedModel
    let info: UnsafeMutablePointer<CChar>
    init(_ loaded: LoadedModel) throws {
        self.loaded = loaded
        let c = loaded.model.config
        var fields: [String: Any] = [
            "name": loaded.name, "path": loaded.path, "sha256": loaded.sha256,
            "image_size": [c.imageSize.height, c.imageSize.width], "frames_per_block": c.framesPerBlock,
            "min_toks": c.minToks, "max_toks": c.maxToks, "context_blocks": c.contextBlocks,
            "bottleneck": c.isFSQ ? "fsq" : "vae"]
        if let threshold = loaded.calibratedThreshold { fields["calibrated_threshold"] = Double(threshold) }
        info = strdup(String(decoding: try JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys]),
                             as: UTF8.self))
    }
    deinit { free(info) }
}

/// The model named, else the default: beside this library (a SwiftPM build folder's resource
/// bundle, or a copy next to it), else where the CLI looks (`ModelCatalog.defaultModelPath`).
func loadModel(_ path: String?) throws -> LoadedModel {
    if let path { return try ModelCatalog.load(path: path) }
    if let library = libraryPath() {
        let folder = URL(fileURLWithPath: library).resolvingSymlinksInPath().deletingLastPathComponent()
        for candidate in ["etok_EtokTokenizer.resources/\(ModelCatalog.defaultFileName)", ModelCatalog.defaultFileName] {
            let file = folder.appendingPathComponent(candidate).path
            if FileManager.default.isReadableFile(atPath: file) { return try ModelCatalog.load(path: file) }
        }
    }
    return try ModelCatalog.load(path: nil)
}

/// This shared library's file: the mapping in /proc/self/maps that holds its own code (Glibc's
/// dladdr is not visible from Swift).
func libraryPath() -> String? {
    let address = UInt(bitPattern: #dsohandle)
    guard let maps = try? String(contentsOfFile: "/proc/self/maps", encoding: .utf8) else { return nil }
    for line in maps.split(separator: "\n") {
        let fields = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
        guard fields.count == 6, fields[5].hasPrefix("/") else { continue }
        let range = fields[0].split(separator: "-")
        guard range.count == 2, let lo = UInt(range[0], radix: 16), let hi = UInt(range[1], radix: 16) else { continue }
        if address >= lo && address < hi { return String(fields[5]).trimmingCharacters(in: .whitespaces) }
    }
    return nil
}

/// The model behind a handle; a NULL handle is a bad argument.
func loadedModel(_ m: OpaquePointer?) throws -> LoadedModel {
    guard let m else { throw CABIError.argument("model is NULL (open one with etok_model_open)") }
    return Unmanaged<ModelHandle>.fromOpaque(UnsafeRawPointer(m)).takeUnretainedValue().loaded
}

/// Loads and checks the weights at `path` (NULL: the default model) into a handle for every
/// encode and decode (`etok_model_close` releases it).
@_cdecl("etok_model_open")
public func etok_model_open(_ path: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded {
        guard let out else { throw CABIError.argument("out is NULL") }
        out.pointee = nil
        let handle = try ModelHandle(try loadModel(path.map { String(cString: $0) }))
        out.pointee = OpaquePointer(Unmanaged.passRetained(handle).toOpaque())
    }
}

/// The model's description as JSON (name, path, sha256, image_size, frames_per_block, min_toks,
/// max_toks, context_blocks, bottleneck, calibrated_threshold when it has one); owned by the
/// handle. NULL for NULL.
@_cdecl("etok_model_info_json")
public func etok_model_info_json(_ m: OpaquePointer?) -> UnsafePointer<CChar>? {
    m.map { UnsafePointer(Unmanaged<ModelHandle>.fromOpaque(UnsafeRawPointer($0)).takeUnretainedValue().info) }
}

/// Releases a model handle (NULL is ignored); no call through it may be running or follow.
@_cdecl("etok_model_close")
public func etok_model_close(_ m: OpaquePointer?) {
    guard let m else { return }
    Unmanaged<ModelHandle>.fromOpaque(UnsafeRawPointer(m)).release()
}
