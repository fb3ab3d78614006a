import EtokFormat
import EtokIO
import EtokMedia
import EtokModel
import EtokPipeline
import EtokTensor
import EtokTokenizer
import Foundation

// The C ABI's plumbing (include/etok.h): status codes, the per-thread last error, and strings the
// library hands out. Every exported function funnels its work through `guarded`, so a Swift error
// becomes a status code plus a message and never crosses the boundary (nor crashes the caller).

/// Status codes of include/etok.h (`ETOK_OK` ... `ETOK_E_OTHER`), by what the caller can do about
/// them: the library's error categories (`ErrorCategory`, the same the command's exit codes come
/// from), coarser.
enum Status: Int32 {
    case ok = 0
    /// A bad argument: a null pointer, a setting out of range, a buffer too small.
    case argument = 1
    /// The input is missing or unreadable (no such file, a directory, no rights).
    case input = 2
    /// The input's data is unusable: not an .etok or video file, damaged, another model's stream.
    case data = 3
    /// The output cannot be created or written.
    case output = 4
    /// Anything else (an FFmpeg call that failed unexpectedly, unsupported media, interrupted, a bug).
    case other = 5

    /// The status of each error category: the one table of the C ABI.
    init(_ category: ErrorCategory) {
        switch category {
        case .usage: self = .argument
        case .noInput: self = .input
        case .dataError: self = .data
        case .cannotCreateOutput, .writeFailed, .outputClosed: self = .output
        case .unsupported, .software, .readFailed, .interrupted, .terminated, .other: self = .other
        }
    }
}

/// Errors the ABI itself raises (arguments it refuses).
struct CABIError: Error, CustomStringConvertible {
    var status: Status
    var description: String
    static func argument(_ message: String) -> CABIError { CABIError(status: .argument, description: message) }
}

/// The calling thread's last error message (a C string the library owns), replaced by the next
/// failing call on the same thread; threads never see each other's.
final class LastError {
    let text: UnsafeMutablePointer<CChar>
    init(_ message: String) { text = strdup(message) }
    deinit { free(text) }
    static let key = "etok.c.last_error"
    static func set(_ message: String) { Thread.current.threadDictionary[key] = LastError(message) }
    static var current: UnsafePointer<CChar>? { (Thread.current.threadDictionary[key] as? LastError).map { UnsafePointer($0.text) } }
}

/// Runs `body`; an error becomes its status and the thread's last error message (the same one
/// line the command prints, from the library's `ErrorReport`).
func guarded(_ body: () throws -> Void) -> Int32 {
    do {
        try body()
        return Status.ok.rawValue
    } catch let error as CABIError {
        LastError.set(error.description)
        return error.status.rawValue
    } catch {
        let report = ErrorReport(error)
        LastError.set(report.message)
        return Status(report.category).rawValue
    }
}

/// A Swift string from a C argument that may not be null.
func string(_ pointer: UnsafePointer<CChar>?, _ name: String) throws -> String {
    guard let pointer else { throw CABIError.argument("\(name) is NULL") }
    return String(cString: pointer)
}

/// A copy of `text` for the caller, released with `etok_string_free`.
func handOut(_ text: String) -> UnsafeMutablePointer<CChar> { strdup(text) }

/// The library's version string (the one written into .etok headers).
@_cdecl("etok_version")
public func etok_version() -> UnsafePointer<CChar> { versionText }
nonisolated(unsafe) private let versionText: UnsafePointer<CChar> = UnsafePointer(strdup(etokVersion))

/// The calling thread's last error message, or NULL when no call on it has failed.
@_cdecl("etok_last_error")
public func etok_last_error() -> UnsafePointer<CChar>? { LastError.current }

/// Releases a string the library handed out (NULL is ignored).
@_cdecl("etok_string_free")
public func etok_string_free(_ text: UnsafeMutablePointer<CChar>?) { free(text) }

/// The OpenBLAS kernels loaded in this process, and the ones the etok command would choose for
/// this CPU ("" when it leaves the choice to OpenBLAS): equal kernels give the CLI's results bit
/// for bit. Both strings are the library's and live as long as the process.
@_cdecl("etok_blas_kernels")
public func etok_blas_kernels(_ loaded: UnsafeMutablePointer<UnsafePointer<CChar>?>?,
                              _ chosen: UnsafeMutablePointer<UnsafePointer<CChar>?>?) {
    loaded?.pointee = blasLoaded
    chosen?.pointee = blasChosen
}
nonisolated(unsafe) private let blasLoaded: UnsafePointer<CChar> = UnsafePointer(strdup(BLASKernels.coreName))
nonisolated(unsafe) private let blasChosen: UnsafePointer<CChar> = UnsafePointer(strdup(BLASKernels.choice(for: .current)?.rawValue ?? ""))
