// The typed errors of EtokModel: model files, configs, inputs and engine state.

/// Why a model file, an input array or an engine call was refused. Every case carries the file
/// (or the call) it concerns; `description` is one line: "<file>: <problem>".
public enum ModelError: Error, CustomStringConvertible, Equatable {
    /// The file could not be read at all: missing, a directory, empty, not a regular file, or
    /// not readable (`message` is the whole sentence after the file name).
    case unreadable(file: String, message: String)
    /// The safetensors header is malformed (length, JSON, entries, offsets, metadata).
    case badHeader(file: String, message: String)
    /// The config in the header is missing a field or inconsistent.
    case badConfig(file: String, field: String, message: String)
    /// The file holds a tensor this model does not have.
    case unknownTensor(file: String, name: String)
    /// The model needs a tensor the file does not hold.
    case missingTensor(file: String, name: String)
    /// A tensor's shape is not the one the config implies.
    case wrongShape(file: String, name: String, shape: [Int], expected: [Int])
    /// A tensor's storage dtype is not F32, F16 or BF16.
    case wrongDType(file: String, name: String, dtype: String)
    /// A tensor holds a NaN or an infinity (at flat index `index`, C order).
    case nonFinite(file: String, name: String, index: Int, value: Float)
    /// An input to the engine does not fit the model (shape, kept count, codes).
    case badInput(call: String, message: String)
    /// The committed context is full: reset at a chunk boundary before adding blocks.
    case contextFull(call: String, committedBlocks: Int, capacityBlocks: Int)
    /// bf16 precision was asked for on a CPU without AVX512-BF16 (or ETOK_CKERNELS_ISA forbids it).
    case bf16Unavailable(file: String)

    public var description: String {
        switch self {
        case let .unreadable(file, message):
            return "\(file): \(message)"
        case let .badHeader(file, message):
            return "\(file): bad safetensors header: \(message)"
        case let .badConfig(file, field, message):
            return "\(file): config field \(field): \(message)"
        case let .unknownTensor(file, name):
            return "\(file): unknown tensor \(name)"
        case let .missingTensor(file, name):
            return "\(file): missing tensor \(name)"
        case let .wrongShape(file, name, shape, expected):
            return "\(file): tensor \(name) has shape \(shape), expected \(expected)"
        case let .wrongDType(file, name, dtype):
            return "\(file): tensor \(name) has dtype \(dtype), expected F32, F16 or BF16"
        case let .nonFinite(file, name, index, value):
            return "\(file): tensor \(name) holds \(value.isNaN ? "NaN" : value > 0 ? "+Inf" : "-Inf") at element \(index)"
        case let .badInput(call, message):
            return "\(call): \(message)"
        case let .contextFull(call, committed, capacity):
            return "\(call): context full (\(committed) of \(capacity) blocks committed); reset at a chunk boundary"
        case let .bf16Unavailable(file):
            return "\(file): precision bf16 needs a CPU with AVX512-BF16, which this one lacks (or ETOK_CKERNELS_ISA forbids); use --precision fp32 or auto"
        }
    }
}
