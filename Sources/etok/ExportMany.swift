import ArgumentParser
import EtokFormat
import EtokIO
import EtokTokenizer
import Foundation

extension Export {
    func validateMany() throws {
        let format = effectiveFormat ?? .tar
        if format == .jsonl { throw ValidationError("jsonl exports one stream; for several give --format tar (shards) or npy (a folder per clip).") }
        if inputs.contains("-") { throw ValidationError("several inputs are files; stdin (-) is for a single input.") }
        if output == "-" { throw ValidationError("a dataset export writes a folder: give -o DIR.") }
        if format == .npy && shardSize != nil { throw ValidationError("--shard-size is for tar shards (--format tar).") }
        if let shardSize, shardSize < TarShardWriter.blockSize * 3 {
            throw ValidationError("--shard-size must be at least 1536 bytes (a tar member and the archive's end).")
        }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: output, isDirectory: &isDirectory) && !isDirectory.boolValue {
            throw ValidationError("-o \(output) is a file; a dataset export writes into a folder.")
        }
    }

    /// Many .etok files: tar shards with an index, or a folder per clip. A file that cannot be
    /// exported is named on one line and left out; the exit status is then 2 (all failed: the
    /// first one's status).
    func runMany() throws {
        let interrupt = common.startCommand()
        defer { interrupt.stop() }
        try ExitCodes.reporting {
            let format = effectiveFormat ?? .tar
            let folder = output.hasSuffix("/") ? output : output + "/"
            let indexPath = folder + "index.json"
            // Output problems first: an index of an older export stays unless -y.
            if format == .tar && !common.overwrite && FileManager.default.fileExists(atPath: indexPath) {
                throw OutputError.exists(file: indexPath)
            }
            let size = shardSize ?? 1 << 30
            let result = try TokenExport.writeDataset(
                paths: inputs, folder: folder, format: format, shardSize: size, overwrite: common.overwrite,
                accept: { report in
                    guard !report.damage.isEmpty else { return }
                    if !damage.skipDamaged { throw DamageMessages.refusal(report.damage) }
                    if report.blocks.isEmpty { throw DamageMessages.nothingReadable(report.damage) }
                    DamageMessages.warn(report.damage)
                },
                failed: { path, error in
                    let message = ExitCodes.report(error).message
                    printError("etok: " + (message.contains(path) ? message : "\(path): \(message)"))
                },
                stop: { Interrupt.received != 0 })
            let failures = result.failures.map { ExitCodes.report($0.error).status }
            if !common.quiet {
                let into = format == .tar
                    ? "into \(BlockRangeText.count(result.shards.count, "shard")) in \(output) (index: \(indexPath))"
                    : "into folders under \(output)"
                printError("etok: exported \(BlockRangeText.count(result.clips, "clip")), \(BlockRangeText.count(result.tokens, "token")) "
                           + into + (failures.isEmpty ? "" : "; \(failures.count) failed"))
            }
            if let first = failures.first {
                throw ExitCode(failures.count == inputs.count ? first : ExitCodes.someInputsFailed)
            }
        }
    }
}

/// A byte count: a whole number, optionally with K, M or G (1024-based; a trailing B or iB is allowed).
func parseByteSize(_ text: String) throws -> Int {
    var digits = text.uppercased()
    for suffix in ["IB", "B"] where digits.hasSuffix(suffix) && digits.count > suffix.count { digits.removeLast(suffix.count); break }
    var scale = 1
    if let last = digits.last, let power = ["K": 10, "M": 20, "G": 30, "T": 40][String(last)] {
        scale = 1 << power
        digits.removeLast()
    }
    guard let value = Int(digits), value > 0, value <= Int.max / scale else {
        throw ValidationError("'\(text)' is not a size: give bytes, or a number with K, M or G (for example 512M).")
    }
    return value * scale
}
