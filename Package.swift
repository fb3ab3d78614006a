// swift-tools-version:6.0
// etok — ElasticTok adaptive video tokenizer. Module graph (dependencies point down):
//
//   etok (CLI: parsing and printing only)
//     └─ EtokTokenizer (search, streaming encode/decode)
//          ├─ EtokModel ── EtokTensor ── CBLAS, CKernels
//          ├─ EtokFormat (.etok container) ──┐
//          ├─ EtokMedia ── CFFmpeg ──────────┴─ EtokIO (output placement and commit, byte
//          │                                    sinks, OutputError, .npy, stderr)
//          └─ EtokPipeline (bounded Dispatch pipeline)
//   EtokC (the C ABI, include/etok.h; the etok_c shared library) over EtokTokenizer, beside the CLI
//
// The leaves (EtokTensor, EtokMedia, EtokPipeline, EtokFormat) never import each other; EtokIO,
// below EtokFormat and EtokMedia, imports nothing of etok.
import PackageDescription

/// C kernels are hot loops: always optimise them, even in debug builds.
let optimisedC: [CSetting] = [.unsafeFlags(["-O3", "-ffp-contract=off"])]

let package = Package(
    name: "etok",
    products: [
        .executable(name: "etok", targets: ["etok"]),
        // Libraries, for embedding etok and for the separate Benchmarks/ package.
        .library(name: "EtokTokenizer", targets: ["EtokTokenizer"]),
        .library(name: "EtokModel", targets: ["EtokModel"]),
        .library(name: "EtokTensor", targets: ["EtokTensor"]),
        .library(name: "EtokMedia", targets: ["EtokMedia"]),
        .library(name: "EtokPipeline", targets: ["EtokPipeline"]),
        .library(name: "EtokFormat", targets: ["EtokFormat"]),
        .library(name: "EtokIO", targets: ["EtokIO"]),
        // The C ABI (include/etok.h) as a shared library, for other languages: python/ loads it.
        .library(name: "etok_c", type: .dynamic, targets: ["EtokC"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // C shims: each imported by exactly one Swift module.
        .systemLibrary(name: "CFFmpeg", path: "Sources/CFFmpeg", pkgConfig: "libavformat",
                       providers: [.apt(["libavformat-dev", "libavcodec-dev", "libswscale-dev", "libavutil-dev"])]),
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .target(name: "CKernels", path: "Sources/CKernels", cSettings: optimisedC),

        // Where every output goes, under the leaves that write.
        .target(name: "EtokIO"),

        // Independent leaves.
        .target(name: "EtokTensor", dependencies: ["CBLAS", "CKernels"]),
        .target(name: "EtokMedia", dependencies: ["CFFmpeg", "EtokIO"]),
        .target(name: "EtokPipeline"),
        .target(name: "EtokFormat", dependencies: ["EtokIO"]),

        // The model over the kernels; the tokenizer over everything below it.
        .target(name: "EtokModel", dependencies: ["EtokTensor"]),
        // Ships the default model (fp16 safetensors, docs/model.md) so etok works with no download.
        .target(name: "EtokTokenizer", dependencies: ["EtokModel", "EtokTensor", "EtokFormat", "EtokMedia", "EtokPipeline", "EtokIO"],
                resources: [.copy("Resources/default.safetensors")]),

        // The command: thin.
        .executableTarget(name: "etok", dependencies: [
            "EtokTokenizer", "EtokModel", "EtokMedia", "EtokPipeline", "EtokFormat", "EtokIO",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        // The C ABI over the tokenizer (include/etok.h): @_cdecl functions on opaque handles.
        .target(name: "EtokC", dependencies: ["EtokTokenizer", "EtokModel", "EtokTensor", "EtokFormat", "EtokMedia", "EtokPipeline", "EtokIO"]),

        // libFuzzer target for the .etok readers (Tools/fuzz/README.md): replays the files it is
        // given; built with `-sanitize=fuzzer -DETOK_LIBFUZZER` (Tools/fuzz/run.sh), libFuzzer drives it.
        .executableTarget(name: "etok-fuzz-reader", dependencies: ["EtokFormat", "EtokIO"], path: "Tools/fuzz/EtokFuzzReader"),
        // libFuzzer target for model files (Tools/fuzz/model/README.md); a plain build replays files.
        .executableTarget(name: "etok-fuzz-model", dependencies: ["EtokModel"], path: "Tools/fuzz/model",
                          exclude: ["README.md", "run.sh", "make_seeds.py", "model.dict", "corpus"],
                          linkerSettings: [.unsafeFlags(["-Xlinker", "--export-dynamic-symbol=LLVMFuzzerRunDriver"])]),

        .testTarget(name: "EtokTensorTests", dependencies: ["EtokTensor"]),
        .testTarget(name: "EtokIOTests", dependencies: ["EtokIO"]),
        .testTarget(name: "EtokMediaTests", dependencies: ["EtokMedia", "EtokIO"]),
        .testTarget(name: "EtokPipelineTests", dependencies: ["EtokPipeline"]),
        .testTarget(name: "EtokFormatTests", dependencies: ["EtokFormat", "EtokIO"]),
        .testTarget(name: "EtokModelTests", dependencies: ["EtokModel", "EtokTensor", "EtokIO"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "EtokTokenizerTests", dependencies: ["EtokTokenizer", "EtokModel", "EtokFormat", "EtokMedia", "EtokIO", "EtokPipeline"]),
        .testTarget(name: "EtokCLITests", dependencies: ["etok", "EtokIO", "etok-fuzz-reader"]),
    ],
    swiftLanguageModes: [.v6]
)
