// Patchify: uint8 RGB frames ↔ the model's token rows, in the official order.
//
// Layout: frames are (T, H, W, 3) uint8, C order. Tokens of a sequence run over
// (frame ÷ Tp, patch row, patch column), row-major; inside a patch the values go
// (tp, py, px, channel), channel fastest. Pixels x = uint8 / 127.5 − 1 (float32).
// Whole blocks are consecutive frames, so a sequence's tokens are its blocks' tokens in order.

/// Conversion between frames and patches for one model config.
public enum Patchify {
    /// (T, H, W, 3) uint8 frames → (L × patch_dim) patches in [-1, 1], L = T/Tp · H/Hp · W/Wp.
    /// T must be a multiple of Tp and H, W of the patch size; the frame size need not be the
    /// model's (the caller checks what it needs).
    public static func patches(frames: [UInt8], count t: Int, height h: Int, width w: Int,
                               config: ModelConfig) throws -> [Float] {
        guard frames.count == t * h * w * 3 else {
            throw ModelError.badInput(call: "patchify", message: "\(frames.count) bytes are not \(t) frames of \(h)×\(w)×3")
        }
        return try gather(count: t, height: h, width: w, config: config) { Float(frames[$0]) / 127.5 - 1 }
    }

    /// (T, H, W, 3) pixel values (any scale, kept as given) → (L × patch_dim) patches: the layout
    /// of `patches(frames:…)` for values already in float, the inverse of `frames(patches:…)`.
    public static func patches(pixels: [Float], count t: Int, height h: Int, width w: Int,
                               config: ModelConfig) throws -> [Float] {
        guard pixels.count == t * h * w * 3 else {
            throw ModelError.badInput(call: "patchify", message: "\(pixels.count) values are not \(t) frames of \(h)×\(w)×3")
        }
        return try gather(count: t, height: h, width: w, config: config) { pixels[$0] }
    }

    /// The patch order: value i of the output is `value(source offset)` of the (T, H, W, 3) frames.
    private static func gather(count t: Int, height h: Int, width w: Int, config: ModelConfig,
                               value: (Int) -> Float) throws -> [Float] {
        let tp = config.patchSize[0], hp = config.patchSize[1], wp = config.patchSize[2]
        guard t % tp == 0, h % hp == 0, w % wp == 0 else {
            throw ModelError.badInput(call: "patchify", message: "frames (\(t), \(h), \(w)) are not divisible by the patch (\(tp), \(hp), \(wp))")
        }
        let nt = t / tp, nh = h / hp, nw = w / wp, pd = config.patchDim
        var out = [Float](repeating: 0, count: nt * nh * nw * pd)
        var index = 0
        for a in 0..<nt { for y in 0..<nh { for x in 0..<nw {
            for dt in 0..<tp { for py in 0..<hp { for px in 0..<wp {
                let src = (((a * tp + dt) * h + y * hp + py) * w + x * wp + px) * 3
                for ch in 0..<3 { out[index] = value(src + ch); index += 1 }
            } } }
        } } }
        return out
    }

    /// (L × patch_dim) patches → (T, H, W, 3) pixel values (same scale as given), the inverse of
    /// `patches` for frames of height h and width w.
    public static func frames(patches: [Float], height h: Int, width w: Int, config: ModelConfig) throws -> [Float] {
        let tp = config.patchSize[0], hp = config.patchSize[1], wp = config.patchSize[2], pd = config.patchDim
        let nh = h / hp, nw = w / wp
        guard h % hp == 0, w % wp == 0, patches.count % (nh * nw * pd) == 0 else {
            throw ModelError.badInput(call: "unpatchify", message: "\(patches.count) values do not fit \(h)×\(w) frames")
        }
        let nt = patches.count / (nh * nw * pd), t = nt * tp
        var out = [Float](repeating: 0, count: t * h * w * 3)
        var index = 0
        for a in 0..<nt { for y in 0..<nh { for x in 0..<nw {
            for dt in 0..<tp { for py in 0..<hp { for px in 0..<wp {
                let dst = (((a * tp + dt) * h + y * hp + py) * w + x * wp + px) * 3
                for ch in 0..<3 { out[dst + ch] = patches[index]; index += 1 }
            } } }
        } } }
        return out
    }

    /// [-1, 1] pixels → uint8: round half to even of (x + 1) · 127.5, clamped to 0...255.
    public static func toUInt8(_ pixels: [Float]) -> [UInt8] {
        pixels.map { v in
            let s = ((v + 1) * 127.5).rounded(.toNearestOrEven)
            return UInt8(s.isNaN ? 0 : min(255, max(0, s)))
        }
    }
}
