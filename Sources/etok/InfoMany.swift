import ArgumentParser
import EtokFormat
import EtokTokenizer
import Foundation

extension Info {
    func validateMany() throws {
        if inputs.contains("-") { throw ValidationError("several inputs are files; stdin (-) is for a single input.") }
        if blocks || plot != nil { throw ValidationError("--blocks and --plot are for a single file.") }
    }

    /// One row (or JSON line) per file, then the totals; exit 2 when a file was unreadable or not
    /// whole (each such file named on stderr too).
    func runMany() throws {
        let interrupt = common.startCommand(ignoringSIGPIPE: false)
        defer { interrupt.stop() }
        try ExitCodes.reporting {
            var totals = InfoTotals()
            var failed = 0
            if !json { print(InfoTotals.heading) }
            for path in inputs {
                do {
                    let report = try StreamReport.read(path: path)
                    totals.add(report)
                    if json {
                        let data = try JSONSerialization.data(withJSONObject: report.jsonObject(includeBlocks: false),
                                                              options: [.sortedKeys, .withoutEscapingSlashes])
                        print(String(decoding: data, as: UTF8.self))
                    } else {
                        print(InfoTotals.row(report))
                    }
                    if !report.health.isComplete {
                        failed += 1
                        printError("etok: \(report.file): not whole; etok decode and etok export keep the readable blocks with --skip-damaged")
                    }
                } catch {
                    failed += 1
                    let message = ExitCodes.report(error).message
                    if json {
                        let data = try JSONSerialization.data(withJSONObject: ["file": path, "error": message],
                                                              options: [.sortedKeys, .withoutEscapingSlashes])
                        print(String(decoding: data, as: UTF8.self))
                    } else {
                        print(InfoTotals.cell(path, 40, left: true) + "  unreadable: " + message)
                    }
                    printError("etok: " + (message.contains(path) ? message : "\(path): \(message)"))
                }
            }
            if !json { print(totals.row(files: inputs.count, failed: failed)) }
            if failed > 0 { throw ExitCode(ExitCodes.someInputsFailed) }
        }
    }
}

/// The sums of `etok info`'s table over many files. `repeats`: repeat blocks (0 tokens, the previous
/// frame shown again; docs/etok-format.md §5), as the single-file `repeats:` line counts them.
struct InfoTotals {
    var readable = 0
    var frames = 0
    var blocks = 0
    var tokens = 0
    var repeats = 0
    var bytes = 0
    var seconds = 0.0
    var psnrSum = 0.0
    var measured = 0

    static let heading = cell("file", 40, left: true) + "  " + cell("frames", 8) + cell("seconds", 9) + cell("tokens", 11)
        + cell("tok/frame", 10) + cell("repeats", 8) + cell("psnr dB", 9) + cell("bits/tok", 9) + cell("bytes", 12) + "  health"

    mutating func add(_ r: StreamReport) {
        readable += 1
        frames += r.frames
        blocks += r.blocks.count
        tokens += r.tokens
        repeats += r.repeatBlocks
        bytes += r.fileBytes
        seconds += r.header.source.duration ?? 0
        let values = r.blocks.compactMap(\.measuredPSNR)
        psnrSum += values.reduce(0, +)
        measured += values.count
    }

    static func row(_ r: StreamReport) -> String {
        cell(r.file, 40, left: true) + "  " + cell(String(r.frames), 8)
            + cell(r.header.source.duration.map { String(format: "%.2f", $0) } ?? "?", 9) + cell(String(r.tokens), 11)
            + cell(String(format: "%.1f", r.frames == 0 ? 0 : Double(r.tokens) / Double(r.frames)), 10)
            + cell(String(r.repeatBlocks), 8)
            + cell(r.meanPSNR.map { String(format: "%.2f", $0) } ?? "n/a", 9)
            + cell(String(format: "%.2f", r.bitsPerToken), 9) + cell(String(r.fileBytes), 12)
            + "  " + (r.health.isComplete ? "complete" : "NOT WHOLE: \(r.health)")
    }

    /// The totals row: PSNR is the mean over every measured block of every file.
    func row(files: Int, failed: Int) -> String {
        let name = "total: \(files) files" + (failed > 0 ? ", \(failed) failed" : "")
        return Self.cell(name, 40, left: true) + "  " + Self.cell(String(frames), 8) + Self.cell(String(format: "%.2f", seconds), 9)
            + Self.cell(String(tokens), 11)
            + Self.cell(String(format: "%.1f", frames == 0 ? 0 : Double(tokens) / Double(frames)), 10)
            + Self.cell(String(repeats), 8)
            + Self.cell(measured == 0 ? "n/a" : String(format: "%.2f", psnrSum / Double(measured)), 9)
            + Self.cell(tokens == 0 ? "0" : String(format: "%.2f", Double(bytes * 8) / Double(tokens)), 9)
            + Self.cell(String(bytes), 12)
    }

    /// `text` padded to `width` (right-aligned unless `left`); longer text is kept whole.
    static func cell(_ text: String, _ width: Int, left: Bool = false) -> String {
        let pad = String(repeating: " ", count: max(0, width - text.count))
        return left ? text + pad : pad + text
    }
}
