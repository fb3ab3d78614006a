// BLASKernels: which OpenBLAS kernels etok runs on, chosen from the CPU's features and checked
// at start-up against a reference product.
//
// Why: Debian 12's OpenBLAS 0.3.21 (DYNAMIC_ARCH) picks its kernels when the library loads, from
// a table of CPUs it knows; on newer ones (recent Xeons with AVX-512, BF16, FP16) it falls back
// to SSE3 "Prescott" kernels, 2.5–5x slower. It reads OPENBLAS_CORETYPE at that moment (a library
// constructor, before main), so a choice made in the process comes too late for this process:
// `prepareAtStart()` sets the variable and re-executes /proc/self/exe, same arguments, same
// descriptors, same environment plus two variables (the core, and a marker naming the cores
// already found wrong, which also guards against loops). Where OpenBLAS already loaded the
// chosen kernels, nothing is re-executed.
//
// Every start then multiplies a few small matrices (shapes that reach OpenBLAS's edge and small-
// matrix kernels, both transpositions, with and without accumulation) and compares them with a
// float64 reference within the rounding-error bound γ_{k+2}·Σ|a||b| (any summation order, FMA
// or not): a kernel that computes wrong results (older OpenBLAS builds are known to on some
// processors) is never kept; etok falls back to the next safer core type and warns once.
// A user's own OPENBLAS_CORETYPE wins: it is checked, and only warned about.
import CBLAS
import CKernels
import Foundation

/// What a CPU supports, for the choice of OpenBLAS kernels (usable features: the OS saves the
/// registers they need).
public struct CPUFeatures: Sendable, Equatable {
    public enum Vendor: Sendable, Equatable { case intel, amd, other }

    public var vendor: Vendor
    /// Display family and model, as /proc/cpuinfo shows them.
    public var family: Int
    public var model: Int
    public var avx: Bool
    public var avx2: Bool
    public var fma: Bool
    public var avx512f: Bool
    public var avx512bw: Bool
    public var avx512dq: Bool
    public var avx512vl: Bool
    public var avx512bf16: Bool

    public init(vendor: Vendor = .other, family: Int = 0, model: Int = 0, avx: Bool = false, avx2: Bool = false,
                fma: Bool = false, avx512f: Bool = false, avx512bw: Bool = false, avx512dq: Bool = false,
                avx512vl: Bool = false, avx512bf16: Bool = false) {
        self.vendor = vendor
        self.family = family
        self.model = model
        self.avx = avx
        self.avx2 = avx2
        self.fma = fma
        self.avx512f = avx512f
        self.avx512bw = avx512bw
        self.avx512dq = avx512dq
        self.avx512vl = avx512vl
        self.avx512bf16 = avx512bf16
    }

    /// This machine's CPU (cpuid).
    public static let current: CPUFeatures = {
        let f = ck_cpu_detect()
        return CPUFeatures(vendor: f.vendor == CK_CPU_INTEL ? .intel : f.vendor == CK_CPU_AMD ? .amd : .other,
                           family: Int(f.family), model: Int(f.model), avx: f.avx != 0, avx2: f.avx2 != 0,
                           fma: f.fma != 0, avx512f: f.avx512f != 0, avx512bw: f.avx512bw != 0,
                           avx512dq: f.avx512dq != 0, avx512vl: f.avx512vl != 0, avx512bf16: f.avx512_bf16 != 0)
    }()

    /// AVX-512 F, BW, DQ and VL: what OpenBLAS's SkylakeX kernels use.
    public var avx512: Bool { avx512f && avx512bw && avx512dq && avx512vl }

    /// The widest vector level, in words: "AVX-512 BF16", "AVX-512", "AVX2+FMA", "AVX" or "SSE".
    public var summary: String {
        if avx512 { return avx512bf16 ? "AVX-512 BF16" : "AVX-512" }
        if avx2 && fma { return "AVX2+FMA" }
        return avx ? "AVX" : "SSE"
    }

    /// The same CPU with nothing above `level` ("avx2", "avx" or "sse"; anything else changes
    /// nothing), for checks and for users who want safer kernels (ETOK_BLAS_ISA).
    public func lowered(to level: String) -> CPUFeatures {
        var f = self
        switch level.lowercased() {
        case "avx2":
            f.avx512f = false; f.avx512bw = false; f.avx512dq = false; f.avx512vl = false; f.avx512bf16 = false
        case "avx":
            f = f.lowered(to: "avx2"); f.avx2 = false; f.fma = false
        case "sse":
            f = f.lowered(to: "avx"); f.avx = false
        default: break
        }
        return f
    }
}

/// OpenBLAS 0.3.21's core types etok chooses between (their OPENBLAS_CORETYPE names), fastest
/// first. Cooperlake is SkylakeX's kernels plus bfloat16 ones; Zen is Haswell's kernels with
/// AMD's blocking.
public enum BLASCore: String, CaseIterable, Sendable {
    case cooperlake = "Cooperlake"
    case skylakeX = "SkylakeX"
    case zen = "Zen"
    case haswell = "Haswell"
    case sandybridge = "Sandybridge"
    case prescott = "Prescott"

    /// True when `name` (as OpenBLAS reports or reads it, any case) names this core.
    func matches(_ name: String) -> Bool { rawValue.lowercased() == name.lowercased() }
}

/// The OpenBLAS kernel choice: a pure rule from CPU features, the start-up check, and the one
/// call the command makes first (`prepareAtStart`).
public enum BLASKernels {
    /// Where the kernels in use came from.
    public enum Source: Sendable, Equatable {
        /// etok chose them (set OPENBLAS_CORETYPE and re-executed, or OpenBLAS had already
        /// loaded etok's choice).
        case etok
        /// The user's OPENBLAS_CORETYPE.
        case user
        /// OpenBLAS's own detection (etok has no choice for this CPU).
        case openblas
    }

    /// What `prepareAtStart` decided.
    enum StartAction: Equatable {
        /// Run on the kernels loaded now; print `warning` once if there is one.
        case keep(warning: String?)
        /// Set OPENBLAS_CORETYPE to `core` and re-execute, with `failed` as the cores found wrong.
        case reexec(core: BLASCore, failed: [String])
    }

    /// Every core type this CPU runs, best first: the choice, then each safer fallback.
    public static func ladder(for f: CPUFeatures) -> [BLASCore] {
        var cores: [BLASCore] = []
        if f.avx512 {
            if f.avx512bf16 { cores.append(.cooperlake) }
            cores.append(.skylakeX)
        }
        if f.avx2 && f.fma {
            if f.vendor == .amd && f.family >= 0x17 { cores.append(.zen) }
            cores.append(.haswell)
        }
        if f.avx { cores.append(.sandybridge) }
        cores.append(.prescott)
        return cores
    }

    /// The core type etok asks for on a CPU with `f`: Cooperlake or SkylakeX with AVX-512 F/BW/DQ/VL
    /// (Cooperlake when it has BF16 too), Zen on AMD Zen with AVX2, Haswell with AVX2 and FMA;
    /// nil (OpenBLAS's own choice) below that, where OpenBLAS 0.3.21 knows every CPU.
    public static func choice(for f: CPUFeatures) -> BLASCore? {
        f.avx2 && f.fma ? ladder(for: f).first : nil
    }

    /// The start-up decision, as a pure function: `source` of the loaded kernels `loaded`
    /// (`requested` is what OPENBLAS_CORETYPE asked for), `failed` the cores earlier starts found
    /// wrong, `check` runs the product check (called only when the answer depends on it).
    /// `switchable`: OpenBLAS was built with DYNAMIC_ARCH, the only kind that reads
    /// OPENBLAS_CORETYPE (any other build runs the kernels it was compiled for).
    static func decide(source: Source, loaded: String, requested: String?, failed: [String],
                       features f: CPUFeatures, switchable: Bool = true, check: () -> Bool) -> StartAction {
        let ladder = ladder(for: f)
        if !switchable {
            return .keep(warning: check() ? nil
                : "OpenBLAS's \(loaded) kernels compute wrong products on this CPU, and this OpenBLAS build (not DYNAMIC_ARCH) has no others")
        }
        if source == .user {
            return .keep(warning: check() ? nil
                : "OpenBLAS's \(loaded) kernels (OPENBLAS_CORETYPE=\(requested ?? loaded)) compute wrong products on this CPU; unset OPENBLAS_CORETYPE to let etok choose")
        }
        if source == .openblas, let choice = choice(for: f), !choice.matches(loaded) {
            return .reexec(core: choice, failed: failed)
        }
        if check() {
            return .keep(warning: failed.isEmpty ? nil
                : "OpenBLAS's \(failed.joined(separator: ", ")) kernels compute wrong products on this CPU; using \(loaded)")
        }
        var wrong = failed
        for name in [requested, loaded].compactMap({ $0 }) where !wrong.contains(where: { $0.lowercased() == name.lowercased() }) {
            wrong.append(name)
        }
        if let next = ladder.first(where: { core in !wrong.contains(where: core.matches) }) {
            return .reexec(core: next, failed: wrong)
        }
        return .keep(warning: "every OpenBLAS kernel tried (\(wrong.joined(separator: ", "))) computes wrong products on this CPU; results may be wrong")
    }

    /// The environment variable that marks a start etok re-executed (its value: the cores found
    /// wrong, comma-separated). Removed from the environment once read.
    static let markerKey = "ETOK_BLAS_FAILED"
    /// Lowers the features the choice uses ("avx2", "avx", "sse"), as ETOK_CKERNELS_ISA does for
    /// etok's own kernels.
    static let levelKey = "ETOK_BLAS_ISA"

    /// The features the choice uses: this CPU's, lowered by ETOK_BLAS_ISA.
    static var features: CPUFeatures {
        ProcessInfo.processInfo.environment[levelKey].map { CPUFeatures.current.lowered(to: $0) } ?? CPUFeatures.current
    }

    /// Chooses and checks OpenBLAS's kernels; call first thing in `main`, before any thread or
    /// output exists. May replace the process (execv of /proc/self/exe with the same arguments)
    /// so that OpenBLAS loads the chosen kernels; returns a warning to print once, or nil.
    public static func prepareAtStart() -> String? {
        let environment = ProcessInfo.processInfo.environment
        var source = Source.openblas, failed: [String] = []
        if let marker = environment[markerKey] {
            source = .etok
            failed = marker.split(separator: ",").map(String.init)
            unsetenv(markerKey)
        } else if let requested = environment["OPENBLAS_CORETYPE"], !requested.isEmpty {
            source = .user
        }
        let loaded = coreName, f = features
        var checked: Bool?
        let switchable = (openblas_get_config().map { String(cString: $0) } ?? "").contains("DYNAMIC_ARCH")
        let action = decide(source: source, loaded: loaded, requested: environment["OPENBLAS_CORETYPE"],
                            failed: failed, features: f, switchable: switchable) {
            let ok = checkProducts()
            checked = ok
            return ok
        }
        if source == .openblas, switchable, choice(for: f)?.matches(loaded) == true { source = .etok }
        switch action {
        case let .keep(warning):
            record(State(source: source, checked: checked, failed: failed))
            return warning
        case let .reexec(core, wrong):
            let previous = environment["OPENBLAS_CORETYPE"]
            setenv("OPENBLAS_CORETYPE", core.rawValue, 1)
            setenv(markerKey, wrong.joined(separator: ","), 1)
            execv("/proc/self/exe", CommandLine.unsafeArgv)
            // Still here: exec failed (no /proc?). Go on with the kernels loaded now.
            let reason = String(cString: strerror(errno))
            unsetenv(markerKey)
            if let previous { setenv("OPENBLAS_CORETYPE", previous, 1) } else { unsetenv("OPENBLAS_CORETYPE") }
            record(State(source: source, checked: checked, failed: failed))
            return "could not restart with OpenBLAS's \(core.rawValue) kernels (\(reason)); using \(loaded)"
        }
    }

    /// The core type OpenBLAS loaded ("SkylakeX", "Haswell", "Prescott", ...).
    public static var coreName: String { openblas_get_corename().map { String(cString: $0) } ?? "unknown" }

    /// "OpenBLAS 0.3.21" (the first two words of openblas_get_config()).
    public static var version: String {
        let config = openblas_get_config().map { String(cString: $0) } ?? "OpenBLAS"
        return config.split(separator: " ").prefix(2).joined(separator: " ")
    }

    /// One line naming the kernels in use, for `model info`, `model bench` and `-v`, e.g.
    /// "OpenBLAS 0.3.21, SkylakeX kernels (chosen by etok; AVX-512; checked)".
    public static var description: String {
        let s = state
        let source: String
        switch s.source {
        case .etok: source = "chosen by etok"
        case .user: source = "set by OPENBLAS_CORETYPE"
        case .openblas: source = "OpenBLAS's own choice"
        }
        var parts = [source, features.summary]
        if !s.failed.isEmpty { parts.append("\(s.failed.joined(separator: ", ")) computed wrong products") }
        parts.append(s.checked == false ? "WRONG PRODUCTS on this CPU" : "checked")
        return "\(version), \(coreName) kernels (\(parts.joined(separator: "; ")))"
    }

    /// Where the kernels came from and whether they passed the check.
    struct State: Sendable {
        var source: Source
        var checked: Bool?
        var failed: [String]
    }

    private static let lock = NSLock()
    nonisolated(unsafe) private static var recorded: State?

    private static func record(_ s: State) {
        lock.lock()
        recorded = s
        lock.unlock()
    }

    /// What `prepareAtStart` recorded; for a library caller that never called it, the source as
    /// the environment shows it and a check run now (once).
    static var state: State {
        lock.lock()
        defer { lock.unlock() }
        if var s = recorded {
            if s.checked == nil { s.checked = checkProducts(); recorded = s }
            return s
        }
        let user = !(ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] ?? "").isEmpty
        let source: Source = user ? .user : choice(for: features)?.matches(coreName) == true ? .etok : .openblas
        let s = State(source: source, checked: checkProducts(), failed: [])
        recorded = s
        return s
    }

    /// Multiplies a few small matrices with OpenBLAS and compares each element with a float64
    /// reference: |c − ref| ≤ γ_{k+2} · (Σ_p |a_ip·b_pj| + |β·c0|), γ_n = n·u / (1 − n·u),
    /// u = 2⁻²⁴: the bound for any order of summation, with or without FMA. Shapes reach
    /// OpenBLAS's edge handling and its small-matrix paths; both layouts of B; β = 0 and 1.
    /// Cost: under a millisecond (optimised build).
    public static func checkProducts() -> Bool {
        let shapes = [(1, 1, 1), (2, 3, 5), (7, 5, 3), (16, 16, 16), (33, 17, 65), (3, 20, 300), (65, 9, 24)]
        var seed: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> Float {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return Float(seed >> 40) / Float(1 << 24) * 2 - 1
        }
        let u = 0x1p-24
        for (m, n, k) in shapes {
            for transposeB in [false, true] {
                for beta: Float in [0, 1] {
                    let a = (0..<(m * k)).map { _ in next() }, b = (0..<(k * n)).map { _ in next() }
                    let c0 = (0..<(m * n)).map { _ in next() }
                    var c = c0
                    a.withUnsafeBufferPointer { pa in
                        b.withUnsafeBufferPointer { pb in
                            c.withUnsafeMutableBufferPointer { pc in
                                GEMM.multiply(m: m, n: n, k: k, a: pa.baseAddress!, lda: k, b: pb.baseAddress!,
                                              ldb: transposeB ? k : n, transposeB: transposeB, c: pc.baseAddress!,
                                              ldc: n, beta: beta)
                            }
                        }
                    }
                    let gamma = Double(k + 2) * u / (1 - Double(k + 2) * u)
                    for i in 0..<m {
                        for j in 0..<n {
                            var exact = Double(beta) * Double(c0[i * n + j]), magnitude = abs(exact)
                            for p in 0..<k {
                                let bv = Double(transposeB ? b[j * k + p] : b[p * n + j])
                                exact += Double(a[i * k + p]) * bv
                                magnitude += abs(Double(a[i * k + p]) * bv)
                            }
                            let value = Double(c[i * n + j])
                            if !value.isFinite || abs(value - exact) > gamma * magnitude + 1e-30 { return false }
                        }
                    }
                }
            }
        }
        return true
    }
}
