import CFFmpeg
import Foundation

/// SHA-256 digests through libavutil's `av_sha`, used to name the exact model weights an `.etok`
/// stream was made with. Owns nothing beyond the call; cost is one sequential read of the file.
public enum FileDigest {
    /// Hex SHA-256 of the bytes at `path`.
    /// - Throws: `MediaError` when the file cannot be read.
    public static func sha256(ofFileAt path: String) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw DigestError.unreadable(path: path)
        }
        defer { try? handle.close() }
        guard let context = av_sha_alloc() else { throw DigestError.unreadable(path: path) }
        defer { av_free(UnsafeMutableRawPointer(context)) }
        av_sha_init(context, 256)
        while true {
            let chunk = handle.readData(ofLength: 1 << 20)
            if chunk.isEmpty { break }
            chunk.withUnsafeBytes { raw in
                av_sha_update(context, raw.bindMemory(to: UInt8.self).baseAddress, chunk.count)
            }
        }
        return finalHex(context)
    }

    /// Hex SHA-256 of `bytes`.
    public static func sha256(of bytes: [UInt8]) -> String {
        guard let context = av_sha_alloc() else { preconditionFailure("av_sha_alloc: out of memory") }
        defer { av_free(UnsafeMutableRawPointer(context)) }
        av_sha_init(context, 256)
        bytes.withUnsafeBufferPointer { av_sha_update(context, $0.baseAddress, $0.count) }
        return finalHex(context)
    }

    private static func finalHex(_ context: OpaquePointer) -> String {
        var digest = [UInt8](repeating: 0, count: 32)
        av_sha_final(context, &digest)
        return digest.map { String(format: "%02x", $0) }.joined()
    }
}

/// Failure to hash a file.
public enum DigestError: Error, CustomStringConvertible {
    case unreadable(path: String)
    public var description: String { switch self { case .unreadable(let path): "\(path): cannot read file" } }
}
