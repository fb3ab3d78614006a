// The OpenBLAS kernel choice: the chooser and the start-up decision as pure functions of a CPU's
// features (CPUs other than this one included), cpuid against /proc/cpuinfo, and the product
// check on the kernels loaded now.
@testable import EtokTensor
import Foundation
import XCTest

final class BLASKernelsTests: XCTestCase {
    // Feature sets of real CPUs (from their /proc/cpuinfo flags).
    let sapphireRapids = CPUFeatures(vendor: .intel, family: 6, model: 143, avx: true, avx2: true, fma: true,
                                     avx512f: true, avx512bw: true, avx512dq: true, avx512vl: true, avx512bf16: true)
    let skylakeServer = CPUFeatures(vendor: .intel, family: 6, model: 85, avx: true, avx2: true, fma: true,
                                    avx512f: true, avx512bw: true, avx512dq: true, avx512vl: true)
    let haswell = CPUFeatures(vendor: .intel, family: 6, model: 60, avx: true, avx2: true, fma: true)
    let zen2 = CPUFeatures(vendor: .amd, family: 23, model: 49, avx: true, avx2: true, fma: true)
    let zen4 = CPUFeatures(vendor: .amd, family: 25, model: 17, avx: true, avx2: true, fma: true,
                           avx512f: true, avx512bw: true, avx512dq: true, avx512vl: true, avx512bf16: true)
    let sandyBridge = CPUFeatures(vendor: .intel, family: 6, model: 42, avx: true)
    let core2 = CPUFeatures(vendor: .intel, family: 6, model: 23)

    func testChoiceFollowsTheWidestVectorsOpenBLASHasKernelsFor() {
        XCTAssertEqual(BLASKernels.choice(for: sapphireRapids), .cooperlake)
        XCTAssertEqual(BLASKernels.choice(for: skylakeServer), .skylakeX)
        XCTAssertEqual(BLASKernels.choice(for: zen4), .cooperlake)
        XCTAssertEqual(BLASKernels.choice(for: zen2), .zen)
        XCTAssertEqual(BLASKernels.choice(for: haswell), .haswell)
        XCTAssertNil(BLASKernels.choice(for: sandyBridge))
        XCTAssertNil(BLASKernels.choice(for: core2))
        // AVX-512 without one of F/BW/DQ/VL (Knights Landing has no BW/DQ/VL) is not enough.
        var knights = skylakeServer
        knights.avx512bw = false
        XCTAssertEqual(BLASKernels.choice(for: knights), .haswell)
    }

    func testLaddersGoFromTheChoiceDownToPrescottAndOnlyOfferWhatTheCPURuns() {
        XCTAssertEqual(BLASKernels.ladder(for: sapphireRapids), [.cooperlake, .skylakeX, .haswell, .sandybridge, .prescott])
        XCTAssertEqual(BLASKernels.ladder(for: zen4), [.cooperlake, .skylakeX, .zen, .haswell, .sandybridge, .prescott])
        XCTAssertEqual(BLASKernels.ladder(for: zen2), [.zen, .haswell, .sandybridge, .prescott])
        XCTAssertEqual(BLASKernels.ladder(for: core2), [.prescott])
        for f in [sapphireRapids, skylakeServer, haswell, zen2, zen4, sandyBridge, core2] {
            let ladder = BLASKernels.ladder(for: f)
            XCTAssertEqual(ladder.last, .prescott)
            // Fastest first: the order of BLASCore.allCases.
            XCTAssertEqual(ladder, BLASCore.allCases.filter(ladder.contains))
        }
    }

    func testLoweringTheFeaturesLowersTheChoice() {
        XCTAssertEqual(BLASKernels.choice(for: sapphireRapids.lowered(to: "avx2")), .haswell)
        XCTAssertEqual(BLASKernels.choice(for: zen4.lowered(to: "AVX2")), .zen)
        XCTAssertNil(BLASKernels.choice(for: zen4.lowered(to: "avx")))
        XCTAssertEqual(sapphireRapids.lowered(to: "sse").summary, "SSE")
        XCTAssertEqual(sapphireRapids.lowered(to: "avx512"), sapphireRapids)
        XCTAssertEqual(sapphireRapids.summary, "AVX-512 BF16")
        XCTAssertEqual(haswell.summary, "AVX2+FMA")
    }

    func testStartDecisions() {
        var checks = 0
        func pass() -> Bool { checks += 1; return true }
        func fail() -> Bool { checks += 1; return false }
        // The Xeon case: OpenBLAS fell back to Prescott; etok re-executes with its choice, no check.
        XCTAssertEqual(BLASKernels.decide(source: .openblas, loaded: "Prescott", requested: nil, failed: [],
                                          features: sapphireRapids, check: fail), .reexec(core: .cooperlake, failed: []))
        XCTAssertEqual(checks, 0)
        // OpenBLAS already loaded the choice: checked, kept.
        XCTAssertEqual(BLASKernels.decide(source: .openblas, loaded: "COOPERLAKE", requested: nil, failed: [],
                                          features: zen4, check: pass), .keep(warning: nil))
        XCTAssertEqual(checks, 1)
        // The user's choice wins, right or wrong; a wrong one is named.
        XCTAssertEqual(BLASKernels.decide(source: .user, loaded: "Haswell", requested: "Haswell", failed: [],
                                          features: sapphireRapids, check: pass), .keep(warning: nil))
        guard case let .keep(warning?) = BLASKernels.decide(source: .user, loaded: "SkylakeX", requested: "skylakex",
                                                            failed: [], features: sapphireRapids, check: fail)
        else { return XCTFail("a wrong user choice must warn") }
        XCTAssertTrue(warning.contains("SkylakeX") && warning.contains("OPENBLAS_CORETYPE"), warning)
        // etok's choice computes wrong products: the next safer core, remembering the wrong one.
        XCTAssertEqual(BLASKernels.decide(source: .etok, loaded: "Cooperlake", requested: "Cooperlake", failed: [],
                                          features: sapphireRapids, check: fail), .reexec(core: .skylakeX, failed: ["Cooperlake"]))
        // OpenBLAS's own choice computes wrong products where etok has no choice: Prescott next.
        XCTAssertEqual(BLASKernels.decide(source: .openblas, loaded: "Sandybridge", requested: nil, failed: [],
                                          features: sandyBridge, check: fail), .reexec(core: .prescott, failed: ["Sandybridge"]))
        // A fallback that works is kept, and the wrong ones are named once.
        guard case let .keep(fallback?) = BLASKernels.decide(source: .etok, loaded: "SkylakeX", requested: "SkylakeX",
                                                             failed: ["Cooperlake"], features: sapphireRapids, check: pass)
        else { return XCTFail("a fallback must be reported") }
        XCTAssertTrue(fallback.contains("Cooperlake") && fallback.contains("using SkylakeX"), fallback)
        // An OpenBLAS built for one CPU (not DYNAMIC_ARCH) ignores OPENBLAS_CORETYPE: never restart.
        XCTAssertEqual(BLASKernels.decide(source: .openblas, loaded: "Prescott", requested: nil, failed: [],
                                          features: sapphireRapids, switchable: false, check: pass), .keep(warning: nil))
        guard case .keep(_?) = BLASKernels.decide(source: .openblas, loaded: "Haswell", requested: nil, failed: [],
                                                  features: haswell, switchable: false, check: fail)
        else { return XCTFail("wrong products must warn") }
    }

    func testReexecutionEndsWhenEveryCoreIsWrong() {
        // Follow the re-executions a CPU whose every kernel fails would go through.
        for f in [sapphireRapids, zen4, zen2, haswell, sandyBridge, core2] {
            var source = BLASKernels.Source.openblas, loaded = "Prescott", requested: String?, failed: [String] = []
            var steps = 0
            while case let .reexec(core, wrong) = BLASKernels.decide(source: source, loaded: loaded, requested: requested,
                                                                     failed: failed, features: f, check: { false }) {
                XCTAssertFalse(wrong.contains(core.rawValue), "\(core) retried")
                source = .etok; loaded = core.rawValue; requested = core.rawValue; failed = wrong
                steps += 1
                if steps > BLASCore.allCases.count { return XCTFail("no end for \(f)") }
            }
            XCTAssertLessThanOrEqual(steps, BLASKernels.ladder(for: f).count)
            guard case let .keep(warning?) = BLASKernels.decide(source: source, loaded: loaded, requested: requested,
                                                                failed: failed, features: f, check: { false })
            else { return XCTFail("no warning for \(f)") }
            XCTAssertTrue(warning.contains("results may be wrong"), warning)
        }
    }

    func testCPUIDAgreesWithProcCPUInfo() throws {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") })
        else { throw XCTSkip("no /proc/cpuinfo flags here") }
        let flags = Set(line.split(separator: ":")[1].split(separator: " ").map(String.init))
        let f = CPUFeatures.current
        XCTAssertEqual(f.avx, flags.contains("avx"))
        XCTAssertEqual(f.avx2, flags.contains("avx2"))
        XCTAssertEqual(f.fma, flags.contains("fma"))
        XCTAssertEqual(f.avx512f, flags.contains("avx512f"))
        XCTAssertEqual(f.avx512bw, flags.contains("avx512bw"))
        XCTAssertEqual(f.avx512dq, flags.contains("avx512dq"))
        XCTAssertEqual(f.avx512vl, flags.contains("avx512vl"))
        XCTAssertEqual(f.avx512bf16, flags.contains("avx512_bf16"))
        let vendor = text.split(separator: "\n").first { $0.hasPrefix("vendor_id") }.map { String($0) } ?? ""
        XCTAssertEqual(f.vendor, vendor.hasSuffix("GenuineIntel") ? .intel : vendor.hasSuffix("AuthenticAMD") ? .amd : .other)
        let family = text.split(separator: "\n").first { $0.hasPrefix("cpu family") }
            .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) }
        XCTAssertEqual(f.family, family)
    }

    func testLoadedKernelsPassTheProductCheckAndAreNamed() {
        XCTAssertTrue(BLASKernels.checkProducts(), "OpenBLAS's \(BLASKernels.coreName) kernels compute wrong products")
        let line = BLASKernels.description
        XCTAssertTrue(line.hasPrefix("OpenBLAS "), line)
        XCTAssertTrue(line.contains("\(BLASKernels.coreName) kernels ("), line)
        XCTAssertTrue(line.hasSuffix("checked)"), line)
    }
}
