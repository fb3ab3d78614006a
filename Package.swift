// swift-tools-version:6.0
// etok — ElasticTok adaptive video tokenizer. Module graph (dependencies point down):
//
//   etok (CLI: parsing and printing only)
//     └─ EtokTokenizer (search, streaming encode/decode)
//          ├─ EtokModel ── EtokTensor ── CBLAS, CKernels
//          ├─ EtokFormat (.etok container)
//          ├─ EtokMedia ── CFFmpeg
//          └─ EtokPipeline (bounded Dispatch pipeline)
//
// The leaves (EtokTensor, EtokMedia, EtokPipeline, EtokFormat) never import each other.
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

        // Independent leaves.
        .target(name: "EtokTensor", dependencies: ["CBLAS", "CKernels"]),
        .target(name: "EtokMedia", dependencies: ["CFFmpeg"]),
        .target(name: "EtokPipeline"),
        .target(name: "EtokFormat"),

        // The model over the kernels; the tokenizer over everything below it.
        .target(name: "EtokModel", dependencies: ["EtokTensor"]),
        // Ships the default model (fp16 safetensors, docs/model.md) so etok works with no download.
        .target(name: "EtokTokenizer", dependencies: ["EtokModel", "EtokFormat", "EtokMedia", "EtokPipeline"],
                resources: [.copy("Resources/default.safetensors")]),

        // The command: thin.
        .executableTarget(name: "etok", dependencies: [
            "EtokTokenizer", "EtokModel", "EtokMedia", "EtokPipeline", "EtokFormat",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        // libFuzzer target for model files (Tools/fuzz/model/README.md); a plain build replays files.
        .executableTarget(name: "etok-fuzz-model", dependencies: ["EtokModel"], path: "Tools/fuzz/model",
                          exclude: ["README.md", "run.sh", "make_seeds.py", "model.dict", "corpus"],
                          linkerSettings: [.unsafeFlags(["-Xlinker", "--export-dynamic-symbol=LLVMFuzzerRunDriver"])]),

        .testTarget(name: "EtokTensorTests", dependencies: ["EtokTensor"]),
        .testTarget(name: "EtokMediaTests", dependencies: ["EtokMedia"]),
        .testTarget(name: "EtokPipelineTests", dependencies: ["EtokPipeline"]),
        .testTarget(name: "EtokFormatTests", dependencies: ["EtokFormat"]),
        .testTarget(name: "EtokModelTests", dependencies: ["EtokModel", "EtokTensor"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "EtokTokenizerTests", dependencies: ["EtokTokenizer", "EtokModel", "EtokFormat", "EtokMedia"]),
        .testTarget(name: "EtokCLITests", dependencies: ["etok"]),
    ],
    swiftLanguageModes: [.v6]
)
