/// Draws kept tokens per block over time as an RGB24 picture (no text): one bar per block, the
/// height its kept count against `max_toks`, coloured by whether it met the threshold (blue) or
/// hit the budget ceiling (orange), with grid lines at 25 % steps of `max_toks`. Cuts and motion
/// show as spikes at a glance.
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
        let threshold = report.header.encoding.threshold
        for (i, block) in blocks.enumerated() {
            let x0 = margin + plotW * i / blocks.count
            let x1 = max(x0 + 1, margin + plotW * (i + 1) / blocks.count)
            let barH = plotH * min(block.record.kept, maxTokens) / maxTokens
            let ok = Double(block.record.mse) <= threshold
            let colour: (UInt8, UInt8, UInt8) = ok ? (52, 101, 164) : (230, 120, 20)
            for x in x0..<x1 {
                for y in (margin + plotH - barH)...(margin + plotH) { set(x, y, colour) }
            }
        }
        return rgb
    }
}
