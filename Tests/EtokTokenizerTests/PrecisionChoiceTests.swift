// --precision auto: bf16 only for large models on CPUs with the bf16 kernel, and a visible
// sentence when it falls back to fp32 for a large model because the CPU lacks it. The CPU's
// answer is injected, so both CPUs are tested on any machine.
import EtokModel
import EtokTensor
import XCTest
@testable import EtokTokenizer

final class PrecisionChoiceTests: XCTestCase {
    let large = PrecisionChoice.autoBF16Parameters, small = PrecisionChoice.autoBF16Parameters - 1

    func testAutoPicksBF16OnlyForLargeModelsOnCPUsThatRunIt() {
        XCTAssertEqual(PrecisionChoice.auto.resolve(parameters: large, bf16Available: true), .bf16)
        XCTAssertEqual(PrecisionChoice.auto.resolve(parameters: large, bf16Available: false), .fp32)
        XCTAssertEqual(PrecisionChoice.auto.resolve(parameters: small, bf16Available: true), .fp32)
        XCTAssertEqual(PrecisionChoice.fp32.resolve(parameters: large, bf16Available: true), .fp32)
        XCTAssertEqual(PrecisionChoice.bf16.resolve(parameters: small, bf16Available: false), .bf16, "an explicit bf16 stays (and fails to load)")
    }

    func testAutoNamesItsFallbackOnlyWhenTheCPUCausedIt() throws {
        let note = try XCTUnwrap(PrecisionChoice.auto.fallback(parameters: 199_800_000, bf16Available: false))
        XCTAssertTrue(note.contains("fp32") && note.contains("AVX512-BF16") && note.contains("200M"), note)
        XCTAssertNil(PrecisionChoice.auto.fallback(parameters: large, bf16Available: true), "bf16 ran: nothing to say")
        XCTAssertNil(PrecisionChoice.auto.fallback(parameters: small, bf16Available: false), "small models are fp32 by design")
        XCTAssertNil(PrecisionChoice.fp32.fallback(parameters: large, bf16Available: false), "fp32 was asked for")
        XCTAssertNil(PrecisionChoice.bf16.fallback(parameters: large, bf16Available: false))
    }

    /// The loader carries the note (none for the bundled 11M model, whatever the CPU).
    func testLoadedDefaultModelHasNoFallbackNote() throws {
        let loaded = try ModelCatalog.load(path: nil, precision: .auto)
        XCTAssertEqual(loaded.model.precision, .fp32)
        XCTAssertNil(loaded.precisionNote)
    }
}
