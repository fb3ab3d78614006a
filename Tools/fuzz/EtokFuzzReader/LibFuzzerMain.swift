// The libFuzzer entry point of `etok-fuzz-reader`, compiled only by Tools/fuzz/run.sh
// (`-sanitize=fuzzer,address -DETOK_LIBFUZZER -enable-experimental-feature Extern`).
//
// SwiftPM links an executable's `main` to `<module>_main` (so that tests can link executables), which
// hides the `main` that libFuzzer brings; so this defines that symbol and hands control to libFuzzer's
// driver, which parses the libFuzzer options and calls `LLVMFuzzerTestOneInput` (FuzzReader.swift).
#if ETOK_LIBFUZZER
/// libFuzzer's driver (compiler-rt `FuzzerInterface.h`): runs the fuzzing loop with `callback`.
@_extern(c, "LLVMFuzzerRunDriver")
func llvmFuzzerRunDriver(_ argc: UnsafeMutablePointer<Int32>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32

@_cdecl("etok_fuzz_reader_main")
func libFuzzerMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var argc = argc
    var argv = argv
    return llvmFuzzerRunDriver(&argc, &argv) { data, size in fuzzOneInput(data, size) }
}
#endif
