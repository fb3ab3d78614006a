import Foundation

/// Draws kept tokens per block over time as an RGB24 picture (no text): one bar per block, the
/// height its kept count against `max_toks`, coloured by whether it met the threshold (blue) or
/// hit the budget ceiling (orange), or grey where no error was measured (imported tokens), with
/// grid lines at 25 % steps of `max_toks`. Cuts and motion show as spikes at a glance.
public enum TokenPlot {
    /// Renders `report` into width × height RGB24 bytes.
    public static func render(_ report: StreamReport, width: Int = 1200, height: Int = 300) -> [UInt8] {
        var rgb = [UInt8](repeating: 255, count: width * height * 3)
        func set(_ x: Int, _ y: Int, _ c: (UInt8, UInt8, UInt8)) {
            guard x >= 0, x < width, y >= 0, y < height else { return }
            let i = (y * width + x) * 3
            rgb[i] = c.0; rgb[i + 1] = c.1; rgb[i + 2] = c.2
        }
        let margin = 10
        let plotW = width - 2 * margin, plotH = height - 2 * margin
        // Grid at 0, 25, 50, 75, 100 % of max tokens.
        for q in 0...4 {
            let y = margin + plotH - plotH * q / 4
            for x in margin..<(margin + plotW) { set(x, y, q == 4 ? (150, 150, 150) : (225, 225, 225)) }
        }
        let blocks = report.blocks
        guard !blocks.isEmpty else { return rgb }
        let maxTokens = max(1, report.maxTokens)
        for (i, block) in blocks.enumerated() {
            let x0 = margin + plotW * i / blocks.count
            let x1 = max(x0 + 1, margin + plotW * (i + 1) / blocks.count)
            let barH = plotH * min(block.record.kept, maxTokens) / maxTokens
            let ok = report.meetsThreshold(block)
            let colour: (UInt8, UInt8, UInt8) = ok == nil ? (170, 170, 170) : ok! ? (52, 101, 164) : (230, 120, 20)
            for x in x0..<x1 {
                for y in (margin + plotH - barH)...(margin + plotH) { set(x, y, colour) }
            }
        }
        return rgb
    }
}

extension TokenPlot {
    /// The same picture as SVG text, with what a PNG without a font cannot show: a time axis in
    /// seconds (each bar at its block's time, as wide as the time to the next block), a kept-tokens
    /// axis with its scale, a title naming the file, and a legend. Blocks are `<rect>`s whose
    /// `class` says whether they met the threshold (`met`) or not (`missed`), or that no error was
    /// measured (`unmeasured`, grey: imported tokens).
    public static func svg(_ report: StreamReport, width: Int = 1200, height: Int = 360) -> String {
        let left = 60.0, right = 20.0, top = 40.0, bottom = 45.0
        let plotW = Double(width) - left - right, plotH = Double(height) - top - bottom
        let maxTokens = Double(max(1, report.maxTokens))
        let threshold = report.header.encoding.threshold
        let times = report.blocks.map { report.seconds($0.record.pts) }
        let start = times.first ?? 0
        // A block lasts until the next one when that one follows it; else (the last block, or one
        // before a damaged gap, which stays empty) as long as the median step between neighbours.
        let steps = zip(report.blocks, report.blocks.dropFirst()).enumerated()
            .filter { $0.element.1.index == $0.element.0.index + 1 }.map { times[$0.offset + 1] - times[$0.offset] }.sorted()
        let typicalStep = steps.isEmpty ? 1 : max(steps[steps.count / 2], 1e-6)
        let end = (times.last ?? 0) + typicalStep
        func blockEnd(_ i: Int) -> Double {
            let follows = i + 1 < times.count && report.blocks[i + 1].index == report.blocks[i].index + 1
            return follows ? times[i + 1] : min(times[i] + typicalStep, i + 1 < times.count ? times[i + 1] : end)
        }
        let span = max(end - start, 1e-6)
        func x(_ t: Double) -> Double { left + plotW * (t - start) / span }
        func y(_ tokens: Double) -> Double { top + plotH * (1 - tokens / maxTokens) }
        func f(_ v: Double) -> String { String(format: "%.2f", v) }
        func escaped(_ s: String) -> String {
            s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
                .replacingOccurrences(of: ">", with: "&gt;")
        }
        var out = ["<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" "
                   + "font-family=\"sans-serif\" font-size=\"12\">",
                   "<style>.met{fill:#3465a4}.missed{fill:#e67814}.unmeasured{fill:#aaaaaa}.grid{stroke:#e1e1e1}.axis{stroke:#555}</style>",
                   "<rect width=\"\(width)\" height=\"\(height)\" fill=\"white\"/>"]
        let met = report.blocks.filter { report.meetsThreshold($0) == true }.count
        let unmeasured = report.blocks.count - report.measuredBlocks
        let title = "\(escaped(report.file)): \(report.blocks.count) blocks, \(String(format: "%.1f", report.meanTokens)) "
            + "kept tokens per block of \(report.maxTokens), \(met) within the threshold "
            + "(\(String(format: "%.2f", psnr(mse: threshold))) dB)"
            + (unmeasured == 0 ? "" : ", \(unmeasured) not measured (grey)")
            + (report.damage.isEmpty ? "" : "; damaged: " + report.damage.map(\.blocksText).joined(separator: ", "))
        out.append("<text x=\"\(f(left))\" y=\"22\" font-size=\"14\">\(title)</text>")
        // Token axis: grid and labels at quarters of max_toks.
        for q in 0...4 {
            let tokens = maxTokens * Double(q) / 4
            out.append("<line class=\"\(q == 0 ? "axis" : "grid")\" x1=\"\(f(left))\" x2=\"\(f(left + plotW))\" "
                       + "y1=\"\(f(y(tokens)))\" y2=\"\(f(y(tokens)))\"/>")
            out.append("<text x=\"\(f(left - 6))\" y=\"\(f(y(tokens) + 4))\" text-anchor=\"end\">\(Int(tokens))</text>")
        }
        out.append("<text transform=\"translate(14 \(f(top + plotH / 2))) rotate(-90)\" text-anchor=\"middle\">kept tokens</text>")
        // Time axis: about 10 ticks at a round step.
        let rough = span / 10, magnitude = pow(10, (log10(rough)).rounded(.down))
        let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= rough } ?? rough
        // Ticks counted as integers (a float sum may stop advancing on absurd time scales), 20 at most.
        let firstTick = (start / step).rounded(.up)
        let tickCount = step > 0 && (end / step).isFinite ? min(20, max(0, Int(((end / step) - firstTick + 1e-9).rounded(.down)) + 1)) : 0
        for k in 0..<tickCount {
            let tick = (firstTick + Double(k)) * step
            out.append("<line class=\"axis\" x1=\"\(f(x(tick)))\" x2=\"\(f(x(tick)))\" y1=\"\(f(top + plotH))\" y2=\"\(f(top + plotH + 5))\"/>")
            out.append("<text x=\"\(f(x(tick)))\" y=\"\(f(top + plotH + 18))\" text-anchor=\"middle\">\(String(format: "%g", tick))</text>")
        }
        out.append("<text x=\"\(f(left + plotW / 2))\" y=\"\(height - 8)\" text-anchor=\"middle\">time (s)</text>")
        for (i, block) in report.blocks.enumerated() {
            let t0 = times[i], t1 = blockEnd(i)
            let h = plotH * min(Double(block.record.kept), maxTokens) / maxTokens
            let ok = report.meetsThreshold(block)
            out.append("<rect class=\"\(ok == nil ? "unmeasured" : ok! ? "met" : "missed")\" x=\"\(f(x(t0)))\" y=\"\(f(top + plotH - h))\" "
                       + "width=\"\(f(max(x(t1) - x(t0), 0.5)))\" height=\"\(f(h))\"><title>block \(block.index): "
                       + "\(block.record.kept) tokens, \(block.measuredPSNR.map { String(format: "%.2f dB", $0) } ?? "PSNR not measured")"
                       + "</title></rect>")
        }
        // Legend, bottom right, below the plot (bars reach the top).
        let lx = left + plotW - 250, ly = Double(height) - 18
        out.append("<rect class=\"met\" x=\"\(f(lx))\" y=\"\(f(ly))\" width=\"10\" height=\"10\"/>"
                   + "<text x=\"\(f(lx + 14))\" y=\"\(f(ly + 9))\">within the threshold</text>")
        out.append("<rect class=\"missed\" x=\"\(f(lx + 150))\" y=\"\(f(ly))\" width=\"10\" height=\"10\"/>"
                   + "<text x=\"\(f(lx + 164))\" y=\"\(f(ly + 9))\">missed it</text>")
        if unmeasured > 0 {
            out.append("<rect class=\"unmeasured\" x=\"\(f(lx - 120))\" y=\"\(f(ly))\" width=\"10\" height=\"10\"/>"
                       + "<text x=\"\(f(lx - 106))\" y=\"\(f(ly + 9))\">not measured</text>")
        }
        out.append("</svg>")
        return out.joined(separator: "\n") + "\n"
    }
}
