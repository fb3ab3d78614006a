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
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            let size = shardSize ?? 1 << 30
            let shards = TarShardWriter(folder: folder, shardSize: size, overwrite: common.overwrite)
            var failures: [(status: Int32, line: String)] = []
            var tokens = 0, clips = 0
            for (n, path) in inputs.enumerated() {
                if Interrupt.received != 0 { break }
                do {
                    let report = try StreamReport.read(path: path)
                    if !report.damage.isEmpty {
                        if !damage.skipDamaged { throw DamageMessages.refusal(report.damage) }
                        if report.blocks.isEmpty { throw DamageMessages.nothingReadable(report.damage) }
                        DamageMessages.warn(report.damage)
                    }
                    if format == .tar {
                        let key = TokenExport.sampleKey(n, path: path)
                        try shards.add(key: key, members: try TokenExport.sampleMembers(report, key: key, source: path))
                    } else {
                        let clip = folder + BatchItem.outputPath(for: path, suffix: "")
                        try TokenExport.writeNPY(report, to: FolderPlacement(folder: clip, names: TokenExport.npyFiles,
                                                                           overwrite: common.overwrite, createParents: true))
                    }
                    tokens += report.tokens
                    clips += 1
                } catch let error as OutputError {
                    shards.discard()
                    throw error   // the output folder is the problem: every later clip would fail too
                } catch {
                    let (message, status) = ExitCodes.report(error)
                    failures.append((status, message.contains(path) ? message : "\(path): \(message)"))
                    printError("etok: " + failures[failures.count - 1].line)
                }
            }
            if format == .tar {
                let written = try shards.finish()
                try OutputPlacement(path: indexPath, overwrite: true)
                    .writeWhole(try TokenExport.shardIndex(written, shardSize: size))
                if !common.quiet {
                    printError("etok: exported \(BlockRangeText.count(clips, "clip")), \(BlockRangeText.count(tokens, "token")) "
                               + "into \(BlockRangeText.count(written.count, "shard")) in \(output) (index: \(indexPath))"
                               + (failures.isEmpty ? "" : "; \(failures.count) failed"))
                }
            } else if !common.quiet {
                printError("etok: exported \(BlockRangeText.count(clips, "clip")), \(BlockRangeText.count(tokens, "token")) "
                           + "into folders under \(output)" + (failures.isEmpty ? "" : "; \(failures.count) failed"))
            }
            if let first = failures.first {
                throw ExitCode(failures.count == inputs.count ? first.status : ExitCodes.someInputsFailed)
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
