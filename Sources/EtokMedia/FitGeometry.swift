/// How a picture of another shape becomes the model's input shape.
public enum FitMode: String, Sendable, CaseIterable, Codable {
    /// Scale the shortest side to the target, then cut the centre (ElasticTok's data pipeline).
    case crop
    /// Scale the longest side to the target and letterbox with black (nothing is cut).
    case pad
    /// Scale each axis to the target independently (shapes distort).
    case stretch
}

/// An integer rectangle in pixels.
public struct PixelRect: Sendable, Hashable {
    public var x: Int
    public var y: Int
    public var width: Int
    public var height: Int

    /// A rectangle at (x, y) of the given size.
    public init(x: Int, y: Int, width: Int, height: Int) {
        self.x = x
        self.y = y
        self.width = width
        self.height = height
    }
}

/// Where the pixels of a source frame go in a fitted canvas: the part of the source that is kept
/// (`source`), and where its scaled picture lands inside a `canvas`-sized output (`target`).
/// Pure geometry, in the source's own orientation (rotation is applied after scaling), with the
/// source's pixel aspect ratio taken into account.
public struct FitPlan: Sendable, Hashable {
    /// The kept region of the source frame, in source pixels.
    public var source: PixelRect
    /// Where the scaled region lands in the canvas.
    public var target: PixelRect
    /// The canvas size (the output before rotation).
    public var canvasWidth: Int
    public var canvasHeight: Int

    /// Plans a fit of a `width`×`height` source whose pixels are `aspect` wide (num/den) into a
    /// `canvasWidth`×`canvasHeight` canvas.
    public init(width: Int, height: Int, aspect: Double = 1, canvasWidth: Int, canvasHeight: Int, mode: FitMode) {
        self.canvasWidth = canvasWidth
        self.canvasHeight = canvasHeight
        let full = PixelRect(x: 0, y: 0, width: width, height: height)
        let canvas = PixelRect(x: 0, y: 0, width: canvasWidth, height: canvasHeight)
        let shownWidth = Double(width) * (aspect > 0 && aspect.isFinite ? aspect : 1)
        let scaleX = Double(canvasWidth) / shownWidth
        let scaleY = Double(canvasHeight) / Double(height)
        switch mode {
        case .stretch:
            source = full
            target = canvas
        case .crop:
            // One scale for both axes (the larger), then keep the centre that fills the canvas.
            let scale = max(scaleX, scaleY)
            let keptWidth = min(width, max(1, Int((Double(canvasWidth) / scale / (shownWidth / Double(width))).rounded())))
            let keptHeight = min(height, max(1, Int((Double(canvasHeight) / scale).rounded())))
            source = PixelRect(x: (width - keptWidth) / 2, y: (height - keptHeight) / 2,
                               width: keptWidth, height: keptHeight)
            target = canvas
        case .pad:
            let scale = min(scaleX, scaleY)
            let w = min(canvasWidth, max(1, Int((shownWidth * scale).rounded())))
            let h = min(canvasHeight, max(1, Int((Double(height) * scale).rounded())))
            source = full
            target = PixelRect(x: (canvasWidth - w) / 2, y: (canvasHeight - h) / 2, width: w, height: h)
        }
    }
}
