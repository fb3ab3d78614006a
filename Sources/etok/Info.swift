import ArgumentParser
import EtokFormat
import EtokIO
import EtokMedia
import EtokTokenizer
import Foundation

/// `etok info`: what an `.etok` file holds, and whether it is whole.
struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show an .etok stream's model, settings, token statistics and health.",
        discussion: """
        Reads every chunk and checks its CRC and token data; needs no model. A damaged or truncated \
        file (an encoder that was killed, a cut download) is listed range by range under "damaged" \
        and exits with 65; etok decode and etok export refuse it too unless given --skip-damaged, \
        which keeps the readable blocks.

        Examples:
          etok info bikes.etok
          etok info bikes.etok --json | jq .tokens.mean
          etok info bikes.etok --blocks              # one line per frame
          etok info bikes.etok --plot tokens.svg     # kept tokens per frame over time
          etok info tokens/*.etok                    # one row per file, and totals
          etok info tokens/*.etok --json > all.jsonl # one JSON object per file

        With several files: a row per file and a totals row; a file that is unreadable or not whole \
        is marked in its row (--json: "error", or health.complete false) and the exit status is 2.
        """)

    @Argument(help: "The .etok file, or - for stdin; several files print a table with totals (--json: JSON lines).")
    var inputs: [String] = []

    /// The single input (the first).
    var input: String { inputs.first ?? "-" }

    @Flag(help: "Print everything as JSON.")
    var json = false

    @Flag(help: "List every block: time, kept tokens, MSE, PSNR (n/a: not measured, as for imported tokens).")
    var blocks = false

    @Option(help: ArgumentHelp("Draw kept tokens per frame over time: FILE.svg has axes, labels and a legend; FILE.png is the bars alone.", valueName: "FILE.svg|FILE.png"))
    var plot: String?

    @OptionGroup(title: "Common")
    var common: CommonOptions

    func validate() throws {
        if inputs.isEmpty { throw ValidationError("give an .etok file (or - for stdin).") }
        if inputs.count > 1 { try validateMany() }
        if let plot, !(plot.lowercased().hasSuffix(".svg") || plot.lowercased().hasSuffix(".png")) {
            throw ValidationError("--plot draws FILE.svg (axes, labels, legend) or FILE.png (bars only), not \(plot).")
        }
    }

    func run() throws {
        if inputs.count > 1 { return try runMany() }
        let interrupt = common.startCommand(ignoringSIGPIPE: false)
        defer { interrupt.stop() }
        try ExitCodes.reporting {
            // The plot's output is made first: a problem with it costs nothing to find.
            let isSVG = plot?.lowercased().hasSuffix(".svg") ?? false
            let svg = try plot.flatMap { isSVG ? try OutputPlacement(path: $0, overwrite: common.overwrite,
                                                                     reads: [(input, "input")]) : nil }
            let png = try plot.flatMap { isSVG ? nil : try openVideoWriter(
                path: $0, options: OutputOptions(format: .png, overwrite: common.overwrite)) }
            let report = try StreamReport.read(path: input)
            if let svg { try svg.writeWhole(Array(TokenPlot.svg(report).utf8)) }
            if let png {
                let (w, h) = (1200, 300)
                do {
                    try png.write(VideoFrame(index: 0, pts: 0, timeBase: Rational(1, 1), width: w, height: h,
                                             rgb: TokenPlot.render(report, width: w, height: h)))
                    try png.finish()
                } catch {
                    png.cancel()
                    throw error
                }
            }
            if json {
                let object = report.jsonObject(includeBlocks: blocks)
                let data = try JSONSerialization.data(withJSONObject: object,
                                                      options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
                print(String(decoding: data, as: UTF8.self))
            } else {
                print(text(report))
            }
            if !report.health.isComplete {
                let what = report.damage.isEmpty ? "not whole" : BlockRangeText.count(report.damage.count, "damaged range")
                printError("etok: \(report.file): \(what); etok decode and etok export keep the readable blocks with --skip-damaged")
                throw ExitCode(ExitCodes.dataError)
            }
        }
    }

    func text(_ r: StreamReport) -> String {
        let h = r.header, m = h.model, e = h.encoding
        var lines: [String] = []
        lines.append("file:      \(r.file) (\(r.fileBytes) bytes)")
        lines.append("model:     \(m.name) sha256 \(m.sha256.prefix(16))…  \(m.imageSize[1])x\(m.imageSize[0]), patch \(m.patchSize.map(String.init).joined(separator: "x")), \(m.framesPerBlock) frame/block, \(m.minToks)…\(m.maxToks) tokens, \(m.bottleneck.rawValue)")
        let search = e.fixedTokens.map { "fixed \($0)" } ?? e.search.rawValue
        lines.append(String(format: "encoding:  threshold %.5g (%.2f dB), search %@, chunk %d blocks%@%@%@", e.threshold,
                            psnr(mse: e.threshold), search, e.chunkBlocks, e.fit.map { ", fit \($0.rawValue)" } ?? "",
                            e.fps.map { String(format: ", %.3g fps", $0) } ?? "",
                            e.precision.map { ", precision \($0)" } ?? ""))
        var source = "source:    \(h.source.name ?? "?")"
        if let w = h.source.width, let hh = h.source.height { source += " \(w)x\(hh)" }
        if let d = h.source.duration { source += String(format: ", %.2f s", d) }
        lines.append(source)
        lines.append("frames:    \(r.frames) in \(BlockRangeText.count(r.blocks.count, "block"))")
        lines.append(String(format: "tokens:    %d total, %.1f mean, %d min, %d max per block (of %d): %.1f%% saved",
                            r.tokens, r.meanTokens, r.minKept, r.maxKept, r.maxTokens, 100 * r.savings))
        if h.encoding.declaresRepeats {
            lines.append(String(format: "repeats:   %d of %d blocks (%.1f%%) repeat the previous frame with 0 tokens",
                                r.repeatBlocks, r.blocks.count, 100 * r.repeatShare))
        }
        if let rate = rateLine(r) { lines.append(rate) }
        lines.append(quality(r))
        lines.append(String(format: "size:      %.2f bits per token (whole file)", r.bitsPerToken))
        lines.append("health:    \(r.health.isComplete ? "complete" : "\(r.health)")")
        for range in r.damage { lines.append("damaged:   \(range.problem)") }
        if blocks {
            lines.append("")
            lines.append("block      time   kept      mse     psnr")
            for b in r.blocks {
                let mse = b.measuredMSE.map { String(format: "%8.5f", $0) } ?? "     n/a"
                let psnr = b.measuredPSNR.map { String(format: "%8.2f", $0) } ?? "     n/a"
                lines.append(String(format: "%5d %9.3f %6d ", b.index, r.seconds(b.record.pts), b.record.kept) + mse + " " + psnr
                             + (r.isRepeat(b) ? "  repeat" : ""))
            }
        }
        return lines.joined(separator: "\n")
    }

    /// The rate-control line: the target and what the readable blocks achieved (nil without).
    func rateLine(_ r: StreamReport) -> String? {
        guard let rate = r.rateControl else { return nil }
        let cap = (rate.maxTokensPerChunk.map { ", cap \($0) per chunk" } ?? "") + ", objective \(rate.objective)"
        switch rate.mode {
        case "tokens_per_second":
            return String(format: "rate:      target %.6g tokens/s, achieved %.1f over %.2f s; largest chunk %d tokens%@",
                          rate.target, rate.achieved, rate.mediaSeconds, rate.largestChunk, cap)
        case "budget":
            return String(format: "rate:      budget %.0f tokens, kept %.0f; largest chunk %d tokens%@",
                          rate.target, rate.achieved, rate.largestChunk, cap)
        default:
            return String(format: "rate:      at most %.0f tokens per chunk, largest chunk %d tokens; over the cap, objective %@",
                          rate.target, rate.largestChunk, rate.objective)
        }
    }

    /// The quality line: mean PSNR and the share within the threshold, over the blocks whose
    /// reconstruction error the encoder measured (imported tokens have none: n/a).
    func quality(_ r: StreamReport) -> String {
        guard let mean = r.meanPSNR, let share = r.shareMeetingThreshold else {
            return r.blocks.isEmpty ? "quality:   n/a (no readable blocks)"
                : "quality:   n/a (no block has a measured reconstruction error: imported tokens)"
        }
        let line = String(format: "quality:   %.2f dB mean PSNR, %.1f%% of blocks within the threshold", mean, 100 * share)
        let unmeasured = r.blocks.count - r.measuredBlocks
        return unmeasured == 0 ? line : line + " (of the \(r.measuredBlocks) measured; \(unmeasured) n/a)"
    }
}
