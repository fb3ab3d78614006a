// etok-fuzz-model: the libFuzzer target for model files (issue 14). Every input is a would-be
// .safetensors model and goes through what a command does with an untrusted model file: the
// header and config checks, the strict tensor table, the conversion and finite-value check of
// every weight, and, for a model that loads and is small, one encode and decode pass. Any trap
// (overflow, out-of-bounds index, force-unwrap), hang or huge allocation is a bug.
//
// One SwiftPM product, two builds (Tools/fuzz/model/README.md):
//   swift build -c release -Xswiftc -sanitize=fuzzer --product etok-fuzz-model
//       a libFuzzer binary: `etok-fuzz-model [libFuzzer options] CORPUS...`
//   swift build (the plain build)
//       a replayer: `etok-fuzz-model FILE|FOLDER...` runs each file once and says how many.
// Both start here: when the fuzzer runtime is linked in, main hands over to its driver
// (`LLVMFuzzerRunDriver`, exported for this lookup by the target's linker setting); SwiftPM
// always makes this file's code the program's entry point, so libFuzzer's own main never runs.
import EtokModel
import Foundation

/// The libFuzzer entry point: one input, as a model file.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzModelFile(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    _ = loadAndRun(size > 0 && data != nil ? Data(bytes: data!, count: size) : Data())
    return 0
}

/// Loads `bytes` as a model and runs it; true when it loaded.
func loadAndRun(_ bytes: Data) -> Bool {
    guard let file = try? SafeTensorsFile(path: "fuzz.safetensors", bytes: bytes),
          let model = try? ElasticTokModel.load(file)
    else { return false }
    _ = model.config.jsonString()
    _ = model.parameterCount
    runOneBlock(model)
    return true
}

/// One block through the streaming engine (encode at two kept counts, decode, commit, decode
/// from codes), for models whose per-stream state is small (the engine's cost is the config's,
/// which the checks bound at gigabytes: too much for a fuzzing loop).
func runOneBlock(_ model: ElasticTokModel) {
    let c = model.config
    guard c.streamStateBytes <= Double(64 << 20), c.tokensPerBlock * c.patchDim <= 1 << 16 else { return }
    let patches = (0..<(c.tokensPerBlock * c.patchDim)).map { Float($0 % 7) / 3 - 1 }
    let coder = BlockCoder(model: model)
    guard let candidates = try? coder.reconstruct(patches: patches, keptCounts: [c.minToks, c.maxToks]),
          (try? coder.commit(candidate: 1)) != nil
    else { return }
    if let codes = candidates[1].codes {
        _ = try? BlockDecoder(model: model).decode(codes: codes)
    }
}

/// The fuzzer runtime's driver, when this binary was built with -sanitize=fuzzer.
typealias FuzzerDriver = @convention(c) (
    UnsafeMutablePointer<Int32>, UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32

if let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "LLVMFuzzerRunDriver") {   // RTLD_DEFAULT
    var argc = CommandLine.argc
    var argv = CommandLine.unsafeArgv
    exit(unsafeBitCast(symbol, to: FuzzerDriver.self)(&argc, &argv) { fuzzModelFile($0, $1) })
}

// The plain build: replay files (folders: every file in them, sorted).
var replayed = 0, loaded = 0
for argument in CommandLine.arguments.dropFirst() {
    var isFolder: ObjCBool = false
    guard FileManager.default.fileExists(atPath: argument, isDirectory: &isFolder) else {
        FileHandle.standardError.write(Data("etok-fuzz-model: \(argument): no such file\n".utf8))
        exit(66)
    }
    let files = isFolder.boolValue
        ? ((try? FileManager.default.contentsOfDirectory(atPath: argument)) ?? []).sorted().map { "\(argument)/\($0)" }
        : [argument]
    for path in files {
        if loadAndRun(FileManager.default.contents(atPath: path) ?? Data()) { loaded += 1 }
        replayed += 1
    }
}
print("etok-fuzz-model: replayed \(replayed) inputs, \(loaded) loaded as models (a plain build: build with -sanitize=fuzzer to fuzz)")
