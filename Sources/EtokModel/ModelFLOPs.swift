// ModelFLOPs: the arithmetic the engine performs per block, for benchmarks (MFU).

/// Floating-point operations of the model, counting a multiply-add as 2 and only the matrix
/// products (the elementwise kernels are a rounding error at these sizes).
public enum ModelFLOPs {
    /// One stack's blocks on `tokens` new tokens attending to `context` + `tokens` keys.
    static func stack(_ c: ModelConfig, layers: Int, tokens t: Int, context: Int) -> Double {
        let d = Double(c.hiddenSize), f = Double(c.intermediateSize), n = Double(t), keys = Double(context + t)
        let projections = 2 * n * d * (3 * d + d + 3 * f)
        let attention = 2 * 2 * n * keys * d  // Q·Kᵀ and P·V over all heads
        return Double(layers) * (projections + attention)
    }

    /// Encoder for one block (one candidate) with `context` committed tokens.
    public static func encoder(_ c: ModelConfig, context: Int) -> Double {
        let t = c.tokensPerBlock, d = Double(c.hiddenSize)
        return 2 * Double(t) * Double(c.patchDim) * d + stack(c, layers: c.numEncoderLayers, tokens: t, context: context)
            + 2 * Double(t) * d * Double(c.preQuantDim)
    }

    /// Decoder for one block with `context` committed tokens.
    public static func decoder(_ c: ModelConfig, context: Int) -> Double {
        let t = c.tokensPerBlock, d = Double(c.hiddenSize)
        return 2 * Double(t) * Double(c.codeDim) * d + stack(c, layers: c.numDecoderLayers, tokens: t, context: context)
            + 2 * Double(t) * d * Double(c.patchDim)
    }

    /// Encode + decode of one block with `contextBlocks` committed blocks.
    public static func block(_ c: ModelConfig, contextBlocks: Int) -> Double {
        let context = contextBlocks * c.tokensPerBlock
        return encoder(c, context: context) + decoder(c, context: context)
    }
}
