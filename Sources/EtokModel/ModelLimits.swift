// ModelLimits: the largest model etok agrees to load, and what a loaded model may make etok
// allocate. Every model file is checked against these before anything sized by it exists, so a
// crafted or corrupt file is refused with one line instead of trapping or exhausting memory.
//
// Where the numbers come from (each leaves room above the largest real model, the official
// ElasticTok 200M: 256×256 frames, 4 frames per block, patch 1×8×8, 4096 tokens per block, a
// context of 16384 tokens):
//   - sizes of one block (tokens, frames, image side, patch side) are 4× the official ones or more;
//   - the context may be 4× the official one (65536 tokens), and the per-stream state it sizes
//     (`ModelConfig.streamStateBytes`: both stacks' key/value caches, the RoPE table and one
//     block's attention scores) must fit `streamStateBudget` (8 GiB; the official model at its
//     full context needs a few GB);
//   - 128 layers per stack (the official models have far fewer), which also bounds the tensor
//     table: a model at every limit lists under 2,400 tensors (about 260 KB of header);
//   - the safetensors header (JSON) may be at most 1 MiB: Foundation's JSON parser takes about
//     0.2 s and 80 MB for 1 MiB of header on the development machine.

/// The limits every model config and model file is checked against (see the file comment).
public enum ModelLimits {
    /// Widths: hidden_size, intermediate_size (the SwiGLU MLP), num_attention_heads.
    public static let hiddenSize = 1...16384, intermediateSize = 1...65536, attentionHeads = 1...256
    /// num_encoder_layers and num_decoder_layers, each.
    public static let layers = 0...128
    /// One block: each side of patch_size (Tp, Hp, Wp), frames_per_block, max_toks (tokens per
    /// block), and each side of the frame (etok_image_size, or the square one max_toks implies).
    public static let patchSide = 1...64, framesPerBlock = 1...64, tokensPerBlock = 1...16384, imageSide = 1...4096
    /// max_sequence_length (the context in tokens), and the bytes of per-stream state it may
    /// size with the rest of the config (`ModelConfig.streamStateBytes`).
    public static let sequenceLength = 1...65536, streamStateBudget = 8 << 30
    /// Bottlenecks: the number of FSQ dimensions, each dimension's level count (16: the most an
    /// .etok file's token coding codes, docs/etok-format.md), vae_bottleneck_dim.
    public static let fsqDimensions = 1...16, fsqLevel = 2...16, vaeDimension = 1...4096
    /// The file: bytes of the safetensors header (the JSON after the 8-byte length), and the
    /// dimensions of a tensor's shape (the model's tensors have 1 or 2).
    public static let headerBytes = 1 << 20, tensorRank = 0...8
}

extension ModelConfig {
    /// Bytes of float32 state one encoding stream (a `BlockCoder`) allocates for this config:
    /// the key and value caches of both stacks over the whole context, the RoPE tables, and the
    /// attention scores of one block over the context. Weights and per-candidate activations
    /// are not counted (the weights are bounded by the file, activations by the block size).
    /// Computed in Double so that no config can overflow it.
    public var streamStateBytes: Double {
        let context = Double(maxSequenceLength), d = Double(hiddenSize)
        let layers = Double(numEncoderLayers + numDecoderLayers)
        let caches = 2 * layers * context * d
        let rope = 2 * context * d / Double(max(1, numAttentionHeads))
        let scores = Double(maxToks) * context
        return 4 * (caches + rope + scores)
    }
}
