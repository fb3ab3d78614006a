// FloatBuffer: the one owning float32 allocation type of the engine (weights, activations,
// caches). 64-byte aligned so that rows start on cache lines when their length allows.
//
// Memory: buffers of at least `lazyBytes` are anonymous mappings, zero by the kernel's promise
// and resident only once written, so a KV cache sized for the whole context or a workspace
// sized for the largest pass costs memory only for the rows a run actually uses (a 200M model's
// context caches are 2.7 GB at capacity; a 4-block chunk writes 3/4 of them at most).
import Foundation

/// An owned, 64-byte aligned, zero-initialised array of `count` float32 values.
///
/// Ownership: the buffer frees its memory in `deinit`; pointers obtained from `base` are valid
/// while the buffer is alive. Threading: no internal synchronisation; one writer at a time.
/// It is a class so that large buffers are never copied by accident.
public final class FloatBuffer {
    /// Number of float32 values.
    public let count: Int
    /// Start of the storage (never null, even for count 0).
    public let base: UnsafeMutablePointer<Float>

    private let storage: ZeroedStorage

    /// Buffers this large or larger are mapped lazily (1 MiB: far above every per-row buffer).
    public static let lazyBytes = 1 << 20

    /// Allocates `count` zeroed floats.
    public init(count: Int) {
        precondition(count >= 0, "FloatBuffer: negative count")
        self.count = count
        storage = ZeroedStorage(bytes: max(count, 1) * 4)
        base = storage.raw.bindMemory(to: Float.self, capacity: max(count, 1))
    }

    /// Copies `values` into a new buffer.
    public convenience init(_ values: [Float]) {
        self.init(count: values.count)
        values.withUnsafeBufferPointer { src in
            if let p = src.baseAddress { base.update(from: p, count: values.count) }
        }
    }

    deinit { storage.release() }

    /// A copy of the contents as an array (for tests and output).
    public func toArray() -> [Float] { Array(UnsafeBufferPointer(start: base, count: count)) }

    /// Sets every value to zero.
    public func zero() { base.update(repeating: 0, count: count) }
}

/// Zeroed, 64-byte aligned raw memory of `bytes` (at least 1): an anonymous mapping from
/// `FloatBuffer.lazyBytes` up (see the file comment), else a heap block. The one allocation path
/// of `FloatBuffer` and `BF16Buffer`; the owner calls `release()` once, in its `deinit`.
struct ZeroedStorage {
    let raw: UnsafeMutableRawPointer
    let bytes: Int
    let mapped: Bool

    init(bytes: Int) {
        self.bytes = bytes
        if bytes >= FloatBuffer.lazyBytes,
           let p = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), p != MAP_FAILED {
            raw = p
            mapped = true
        } else {
            raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
            memset(raw, 0, bytes)
            mapped = false
        }
    }

    func release() {
        if mapped { munmap(raw, bytes) } else { raw.deallocate() }
    }
}

/// A row-major float32 matrix view over a `FloatBuffer`: `rows` × `cols`, rows contiguous.
///
/// Weights are stored as the official dense kernels are, (in, out), so that a linear layer is
/// y = x · W. Value type holding a reference: copying a Matrix shares the storage.
public struct Matrix {
    /// Row count (the input width for a dense kernel).
    public let rows: Int
    /// Column count (the output width for a dense kernel).
    public let cols: Int
    /// The storage (rows * cols values).
    public let storage: FloatBuffer

    /// A zero matrix.
    public init(rows: Int, cols: Int) {
        self.rows = rows
        self.cols = cols
        storage = FloatBuffer(count: rows * cols)
    }

    /// Wraps existing storage, which must hold rows * cols values.
    public init(rows: Int, cols: Int, storage: FloatBuffer) {
        precondition(storage.count == rows * cols, "Matrix: storage size does not match shape")
        self.rows = rows
        self.cols = cols
        self.storage = storage
    }

    /// Start of row 0.
    public var base: UnsafeMutablePointer<Float> { storage.base }
}
