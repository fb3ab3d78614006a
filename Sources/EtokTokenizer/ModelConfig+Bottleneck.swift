import EtokFormat
import EtokModel

extension ModelConfig {
    /// The model's bottleneck as the container names it (§4 `model.bottleneck`).
    var bottleneck: EtokHeader.Bottleneck { isFSQ ? .fsq : .vae }
}
