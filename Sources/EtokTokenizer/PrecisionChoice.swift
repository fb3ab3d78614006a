import EtokModel
import EtokTensor

/// `--precision`: what the model's transformer stacks compute in (`Precision`), or `auto`.
///
/// auto: bf16 where it pays and this CPU runs it: models of at least `autoBF16Parameters`
/// parameters (the official 200M ones) on a CPU with AVX512-BF16; fp32 otherwise, which keeps the
/// bundled default model (11M parameters, small GEMMs) on the reference path. A decoder's auto
/// follows the stream's header (`encoding.precision`), so it reproduces the encoder's reconstruction.
/// Measured in BENCHMARKS.md ("bf16").
public enum PrecisionChoice: String, Sendable, CaseIterable {
    case auto
    case fp32
    case bf16

    /// Parameters from which auto picks bf16.
    public static let autoBF16Parameters = 100_000_000

    /// The precision for a model of `parameters` parameters on this CPU (bf16 asked for on a CPU
    /// without it stays bf16: loading then fails with `ModelError.bf16Unavailable`).
    public func resolve(parameters: Int) -> Precision {
        switch self {
        case .fp32: return .fp32
        case .bf16: return .bf16
        case .auto: return parameters >= Self.autoBF16Parameters && Precision.bf16Available ? .bf16 : .fp32
        }
    }

    /// The stream's precision as its header records it (absent: fp32).
    static func recorded(_ value: String?) -> Precision? {
        guard let value else { return .fp32 }
        return Precision(rawValue: value)
    }
}
