// RoPETable: cos/sin tables for rotary embeddings on interleaved pairs, in the layout the
// `ropeRows` kernel reads (one row of head_dim values per position).
import Foundation

/// Rotary-embedding tables for positions 0..<positions and one head size.
///
/// Numerics (pinned so that other implementations match up to libm, as the reference does):
/// freq_i = float32(theta^(−2i/headDim)) computed in double and rounded once;
/// angle = float32(pos · freq_i) (the product is exact in double); cos and sin are computed in
/// double of that float angle and rounded. Row p holds cos2[2i] = cos2[2i+1] = cos(angle_i),
/// sin2[2i] = −sin(angle_i), sin2[2i+1] = +sin(angle_i). Immutable after construction.
public final class RoPETable {
    /// Number of positions covered.
    public let positions: Int
    /// Values per row (the head size).
    public let headDim: Int
    /// cos(angle), duplicated per pair: positions × headDim.
    public let cos2: FloatBuffer
    /// ∓sin(angle) per pair (see above): positions × headDim.
    public let sin2: FloatBuffer

    /// Builds the tables. headDim must be even.
    public init(positions: Int, headDim: Int, theta: Double) {
        precondition(headDim % 2 == 0, "RoPETable: head size must be even")
        self.positions = positions
        self.headDim = headDim
        cos2 = FloatBuffer(count: positions * headDim)
        sin2 = FloatBuffer(count: positions * headDim)
        let pairs = headDim / 2
        let freqs = (0..<pairs).map { Float(pow(theta, -2.0 * Double($0) / Double(headDim))) }
        for p in 0..<positions {
            for i in 0..<pairs {
                let angle = Double(Float(Double(p) * Double(freqs[i])))
                let c = Float(Foundation.cos(angle)), s = Float(Foundation.sin(angle))
                cos2.base[p * headDim + 2 * i] = c
                cos2.base[p * headDim + 2 * i + 1] = c
                sin2.base[p * headDim + 2 * i] = -s
                sin2.base[p * headDim + 2 * i + 1] = s
            }
        }
    }

    /// cos(angle_i) at position p (for tests and debugging).
    public func cos(position p: Int, pair i: Int) -> Float { cos2.base[p * headDim + 2 * i] }
    /// sin(angle_i) at position p.
    public func sin(position p: Int, pair i: Int) -> Float { sin2.base[p * headDim + 2 * i + 1] }
}
