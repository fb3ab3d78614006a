import ArgumentParser
import EtokFormat
import EtokMedia
import EtokModel
import EtokTokenizer
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `etok export`: token sequences for ML pipelines.
struct Export: ParsableCommand {
    enum Format: String, ExpressibleByArgument, CaseIterable { case npy, jsonl }

    static let configuration = CommandConfiguration(
        abstract: "Export the token sequences of an .etok stream as .npy arrays or JSON lines.",
        discussion: """
        npy: -o DIR (a folder; its parent must exist) gets lengths.npy (int32, kept tokens per block), \
        tokens.npy (the kept tokens of all blocks concatenated: int32 FSQ indices, or float32 (N, dim) VAE \
        latents), pts.npy (float64 seconds per block), blocks.npy (int64, each block's index in the \
        stream), frames.npy (int32, frames per block: frames_per_block, fewer for a last partial \
        block) and chunks.npy (int64, each block's chunk, named by its first block: the model's \
        context resets where it changes). jsonl: one block per line, {"block", "chunk", "time", \
        "frames", "kept", "tokens"}; -o - for stdout. FSQ tokens are indices into the codebook \
        (etok info --json: vocabulary_size, fsq_quant_levels; digit d_i = index / Π_{j<i} L_j mod L_i).

        The way back: etok import reads either form, as written or edited (or tokens your own model \
        generated, same layout), and writes an .etok stream that etok decode turns into video.

        A damaged or truncated file is an error (exit 65, nothing written). --skip-damaged exports the \
        readable blocks instead and prints one warning per damaged range; the block numbers (blocks.npy, \
        "block") show the gaps.

        Examples:
          etok export bikes.etok --format npy -o bikes_tokens/
          etok export bikes.etok --format jsonl -o - | head -1
          etok import bikes_tokens/ -o edited.etok      # the way back, after editing; then etok decode
          etok export cut.etok --skip-damaged -o readable.jsonl
          python3 -c "import numpy as n; l=n.load('bikes_tokens/lengths.npy'); t=n.load('bikes_tokens/tokens.npy'); print(n.split(t, l.cumsum()[:-1])[0])"
        """)

    @Argument(help: "The .etok file, or - for stdin.")
    var input: String

    @Option(help: "npy or jsonl. Default: from -o, as in ffmpeg: a .jsonl or .json file, or - (stdout), is jsonl; a folder (an existing one, a name ending in /, or a name without an extension) is npy.")
    var format: Format?

    /// --format, else what the output's name says (nil: it does not say).
    var effectiveFormat: Format? {
        if let format { return format }
        if output == "-" { return .jsonl }
        let lower = output.lowercased()
        if lower.hasSuffix(".jsonl") || lower.hasSuffix(".json") { return .jsonl }
        if lower.hasSuffix(".npy") { return .npy }   // refused by validate() with what to do instead
        var isDirectory: ObjCBool = false
        if output.hasSuffix("/") || (FileManager.default.fileExists(atPath: output, isDirectory: &isDirectory) && isDirectory.boolValue) {
            return .npy
        }
        return URL(fileURLWithPath: output).pathExtension.isEmpty ? .npy : nil
    }

    @Option(name: .shortAndLong, help: "Output: a folder for npy (created if its parent exists); a file or - for jsonl.")
    var output: String

    @OptionGroup
    var damage: DamageOptions

    @OptionGroup(title: "Common")
    var common: CommonOptions

    /// The files of an npy export, in the order written.
    static let npyFiles = ["lengths.npy", "tokens.npy", "pts.npy", "blocks.npy", "frames.npy", "chunks.npy"]

    func validate() throws {
        try refuseOutputIsInput(input, output)
        guard let format = effectiveFormat else {
            throw ValidationError("cannot tell the format from -o \(output): name a .jsonl file or a folder (npy), or give --format.")
        }
        if format == .npy && output == "-" { throw ValidationError("npy export writes six files: give a folder with -o.") }
        if format == .npy && output.lowercased().hasSuffix(".npy") {
            throw ValidationError("npy export writes a folder of .npy files (\(Export.npyFiles.joined(separator: ", "))): give -o a folder name, not \(output).")
        }
    }

    func run() throws {
        common.applyLogging()
        try ExitCodes.reporting {
            // Output problems first: they cost nothing to find.
            let format = effectiveFormat ?? .jsonl   // validate() refused a name that says nothing
            switch format {
            case .npy: try checkNPYFolder()
            case .jsonl: if output != "-" { try checkOutputFile(output) }
            }
            let report = try StreamReport.read(path: input)
            if !report.damage.isEmpty {
                if !damage.skipDamaged { throw DamageMessages.refusal(report.damage) }
                if report.blocks.isEmpty { throw DamageMessages.nothingReadable(report.damage) }
            }
            switch format {
            case .npy: try writeNPY(report)
            case .jsonl: try writeJSONL(report)
            }
            DamageMessages.warn(report.damage)
            if !common.quiet {
                printError("etok: exported \(BlockRangeText.count(report.blocks.count, "block")), "
                           + "\(BlockRangeText.count(report.tokens, "token")) to \(output == "-" ? "stdout" : output)"
                           + DamageMessages.summaryNote(report.damage))
            }
        }
    }

    /// The folder's parent must exist (as for every other output); the folder may exist, but not as
    /// a file, and its .npy files only with -y.
    private func checkNPYFolder() throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: output, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw MediaError.cannotCreateOutput(file: output, message: "not a folder") }
            for name in Export.npyFiles {
                try checkOutputPath(URL(fileURLWithPath: output).appendingPathComponent(name).path, overwrite: common.overwrite)
            }
        } else {
            try requireParentFolder(output)
        }
    }

    /// A file output: its folder exists, and the file does not (unless -y) or is not a folder.
    private func checkOutputFile(_ path: String) throws {
        try requireParentFolder(path)
        try checkOutputPath(path, overwrite: common.overwrite)
    }

    private func writeNPY(_ r: StreamReport) throws {
        let lengths = r.blocks.map { Int32($0.record.kept) }
        let tokens: NPYArray
        if r.header.model.bottleneck == .fsq {
            let t = r.blocks.flatMap { b -> [Int32] in if case .fsq(let t) = b.tokens { t } else { [] } }
            tokens = NPYArray(shape: [t.count], int32: t)
        } else {
            let dim = r.header.model.vaeBottleneckDim ?? 1
            let values = r.blocks.flatMap { b -> [Float] in if case .vae(let v) = b.tokens { v } else { [] } }
            tokens = NPYArray(shape: [values.count / max(1, dim), dim], floats: values)
        }
        let contents = [NPYArray(shape: [lengths.count], int32: lengths).encoded(), tokens.encoded(),
                        NPY64.encode(r.blocks.map { r.seconds($0.record.pts) }),
                        NPY64.encode(r.blocks.map { Int64($0.index) }),
                        NPYArray(shape: [r.blocks.count], int32: r.blocks.map { Int32($0.record.frames) }).encoded(),
                        NPY64.encode(r.blocks.map { Int64($0.chunk) })]
        try FolderOutput.write(folder: output, files: Array(zip(Export.npyFiles, contents)))
    }

    private func writeJSONL(_ r: StreamReport) throws {
        var text = ""
        for b in r.blocks {
            let tokens: String
            switch b.tokens {
            case .fsq(let t): tokens = "[" + t.map(String.init).joined(separator: ",") + "]"
            case .vae(let v): tokens = "[" + v.map { "\($0)" }.joined(separator: ",") + "]"
            }
            text += "{\"block\":\(b.index),\"chunk\":\(b.chunk),\"time\":\(r.seconds(b.record.pts)),\"frames\":\(b.record.frames),"
                + "\"kept\":\(b.record.kept),\"tokens\":\(tokens)}\n"
        }
        if output == "-" {
            FileHandle.standardOutput.write(Data(text.utf8))
        } else {
            do {
                try Data(text.utf8).write(to: URL(fileURLWithPath: output), options: .atomic)
            } catch {
                throw MediaErrorBridge.cannotCreate(output, error)
            }
        }
    }
}

/// Refuses an output whose folder does not exist (`MediaError.cannotCreateOutput`, exit 73), as
/// the video writers do; etok creates no folders but an npy export's own.
func requireParentFolder(_ path: String) throws {
    let parent = URL(fileURLWithPath: path).deletingLastPathComponent().path
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: parent, isDirectory: &isDirectory), isDirectory.boolValue else {
        throw MediaError.cannotCreateOutput(file: path, message: "no folder \(parent)")
    }
}

/// Writes several files into one folder as a whole: each to a hidden temporary name first, then
/// all renamed into place; on any failure the temporary files go, and so does the folder if this
/// call created it. (A failure between two renames, which only a vanishing folder could cause,
/// may leave the files renamed so far.)
enum FolderOutput {
    static func write(folder: String, files: [(name: String, data: Data)]) throws {
        let manager = FileManager.default
        var created = false
        if !manager.fileExists(atPath: folder) {
            do {
                try manager.createDirectory(atPath: folder, withIntermediateDirectories: false)
            } catch {
                throw MediaErrorBridge.cannotCreate(folder, error)
            }
            created = true
        }
        let dir = URL(fileURLWithPath: folder)
        var temporary: [(temp: URL, final: URL)] = []
        do {
            for (name, data) in files {
                let final = dir.appendingPathComponent(name)
                let temp = dir.appendingPathComponent(".\(name).part-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
                temporary.append((temp, final))
                do {
                    try data.write(to: temp)
                } catch {
                    throw MediaError.writeFailed(file: final.path, message: (error as NSError).localizedDescription)
                }
            }
            for (temp, final) in temporary where rename(temp.path, final.path) != 0 {
                throw MediaError.writeFailed(file: final.path, message: String(cString: strerror(errno)))
            }
        } catch {
            for (temp, _) in temporary { unlink(temp.path) }
            if created { try? manager.removeItem(atPath: folder) }
            throw error
        }
    }
}

/// 64-bit .npy arrays (the model's NPY type holds float32, int32 and uint8 only).
enum NPY64 {
    /// A 1-D float64 array.
    static func encode(_ values: [Double]) -> Data { encode(values.map(\.bitPattern), descr: "<f8") }

    /// A 1-D int64 array.
    static func encode(_ values: [Int64]) -> Data { encode(values.map { UInt64(bitPattern: $0) }, descr: "<i8") }

    private static func encode(_ bits: [UInt64], descr: String) -> Data {
        var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': (\(bits.count),), }"
        let total = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - total % 64) % 64) + "\n"
        var data = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
        let length = UInt16(header.utf8.count)
        data.append(contentsOf: [UInt8(length & 0xFF), UInt8(length >> 8)])
        data.append(contentsOf: Array(header.utf8))
        for v in bits { withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) } }
        return data
    }
}
