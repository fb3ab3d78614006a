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

    /// The precision for a model of `parameters` parameters on a CPU that runs the bf16 kernel or
    /// not (`bf16Available`: this CPU's by default; tests pass their own). bf16 asked for on a CPU
    /// without it stays bf16: loading then fails with `ModelError.bf16Unavailable`.
    public func resolve(parameters: Int, bf16Available: Bool = Precision.bf16Available) -> Precision {
        switch self {
        case .fp32: return .fp32
        case .bf16: return .bf16
        case .auto: return parameters >= Self.autoBF16Parameters && bf16Available ? .bf16 : .fp32
        }
    }

    /// A sentence for the user when auto fell back: it picked fp32 for a model of
    /// `autoBF16Parameters` or more only because the CPU lacks the bf16 kernel (nil otherwise).
    /// `-v` on encode, `etok model info` and `model bench`'s JSON show it.
    public func fallback(parameters: Int, bf16Available: Bool = Precision.bf16Available) -> String? {
        guard self == .auto, parameters >= Self.autoBF16Parameters, !bf16Available else { return nil }
        let millions = (parameters + 500_000) / 1_000_000
        return "auto chose fp32 for this \(millions)M-parameter model because this CPU has no AVX512-BF16 "
            + "(or ETOK_CKERNELS_ISA forbids it): about twice the time and memory of bf16 (docs/official-models.md)"
    }

    /// The stream's precision as its header records it (absent: fp32).
    static func recorded(_ value: String?) -> Precision? {
        guard let value else { return .fp32 }
        return Precision(rawValue: value)
    }
}
