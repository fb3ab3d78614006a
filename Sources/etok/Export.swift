import ArgumentParser
import EtokModel
import EtokTokenizer
import Foundation

/// `etok export`: token sequences for ML pipelines.
struct Export: ParsableCommand {
    enum Format: String, ExpressibleByArgument, CaseIterable { case npy, jsonl }

    static let configuration = CommandConfiguration(
        abstract: "Export the token sequences of an .etok stream as .npy arrays or JSON lines.",
        discussion: """
        npy: -o DIR gets lengths.npy (int32, kept tokens per block), tokens.npy (the kept tokens of all \
        blocks concatenated: int32 FSQ indices, or float32 (N, dim) VAE latents) and pts.npy (float64 \
        seconds per block). jsonl: one block per line, {"block", "time", "kept", "tokens"}; -o - for stdout.

        Examples:
          etok export bikes.etok --format npy -o bikes_tokens/
          etok export bikes.etok --format jsonl -o - | head -1
          python3 -c "import numpy as n; l=n.load('bikes_tokens/lengths.npy'); t=n.load('bikes_tokens/tokens.npy'); print(n.split(t, l.cumsum()[:-1])[0])"
        """)

    @Argument(help: "The .etok file, or - for stdin.")
    var input: String

    @Option(help: "npy or jsonl.")
    var format: Format = .jsonl

    @Option(name: .shortAndLong, help: "Output: a folder for npy; a file or - for jsonl.")
    var output: String

    @OptionGroup(title: "Common")
    var common: CommonOptions

    func validate() throws {
        if format == .npy && output == "-" { throw ValidationError("npy export writes three files: give a folder with -o.") }
    }

    func run() throws {
        common.applyLogging()
        try ExitCodes.reporting {
            let report = try StreamReport.read(path: input)
            switch format {
            case .npy: try writeNPY(report)
            case .jsonl: try writeJSONL(report)
            }
            if !common.quiet {
                printError("etok: exported \(report.blocks.count) blocks, \(report.tokens) tokens to \(output == "-" ? "stdout" : output)"
                           + (report.health.isComplete ? "" : "; the stream is not whole: \(report.health)"))
            }
        }
    }

    private func writeNPY(_ r: StreamReport) throws {
        let dir = URL(fileURLWithPath: output)
        let names = ["lengths.npy", "tokens.npy", "pts.npy"].map { dir.appendingPathComponent($0).path }
        for name in names { try checkOutputPath(name, overwrite: common.overwrite) }
        do {
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        } catch {
            throw MediaErrorBridge.cannotCreate(output, error)
        }
        let lengths = r.blocks.map { Int32($0.record.kept) }
        try NPYArray(shape: [lengths.count], int32: lengths).write(path: names[0])
        if r.header.model.bottleneck == .fsq {
            let tokens = r.blocks.flatMap { b -> [Int32] in if case .fsq(let t) = b.tokens { t } else { [] } }
            try NPYArray(shape: [tokens.count], int32: tokens).write(path: names[1])
        } else {
            let dim = r.header.model.vaeBottleneckDim ?? 1
            let values = r.blocks.flatMap { b -> [Float] in if case .vae(let v) = b.tokens { v } else { [] } }
            try NPYArray(shape: [values.count / max(1, dim), dim], floats: values).write(path: names[1])
        }
        try NPYFloat64.write(r.blocks.map { r.seconds($0.record.pts) }, path: names[2])
    }

    private func writeJSONL(_ r: StreamReport) throws {
        if output != "-" { try checkOutputPath(output, overwrite: common.overwrite) }
        var text = ""
        for b in r.blocks {
            let tokens: String
            switch b.tokens {
            case .fsq(let t): tokens = "[" + t.map(String.init).joined(separator: ",") + "]"
            case .vae(let v): tokens = "[" + v.map { "\($0)" }.joined(separator: ",") + "]"
            }
            text += "{\"block\":\(b.index),\"time\":\(r.seconds(b.record.pts)),\"kept\":\(b.record.kept),\"tokens\":\(tokens)}\n"
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

/// Float64 .npy writing (the model's NPY type holds float32, int32 and uint8 only).
enum NPYFloat64 {
    static func write(_ values: [Double], path: String) throws {
        var header = "{'descr': '<f8', 'fortran_order': False, 'shape': (\(values.count),), }"
        let total = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - total % 64) % 64) + "\n"
        var data = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
        let length = UInt16(header.utf8.count)
        data.append(contentsOf: [UInt8(length & 0xFF), UInt8(length >> 8)])
        data.append(contentsOf: Array(header.utf8))
        for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { data.append(contentsOf: $0) } }
        do {
            try data.write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw MediaErrorBridge.cannotCreate(path, error)
        }
    }
}
