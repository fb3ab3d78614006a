extension StreamReport {
    /// The stream's rate-control target (§4 `encoding.rate_control`) and what its readable blocks
    /// achieved; nil for a stream encoded without rate control.
    public var rateControl: RateControlSummary? {
        guard let control = header.encoding.rateControl else { return nil }
        let fps = header.source.fps.map { Double($0.num) / Double(max(1, $0.den)) } ?? header.encoding.fps ?? 1
        return RateControlSummary(control: control, blocks: blocks.map { ($0.index, seconds($0.record.pts), $0.record.kept) },
                                  chunkBlocks: header.encoding.chunkBlocks,
                                  fallbackInterval: Double(header.model.framesPerBlock) / fps)
    }
}
