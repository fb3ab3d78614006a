// swift-tools-version:6.0
// Benchmarks for etok, kept apart from the main package so `swift test` never builds them.
// Run from this folder:  swift run -c release PipelineOverhead
import PackageDescription

let package = Package(
    name: "EtokBenchmarks",
    dependencies: [
        .package(name: "etok", path: ".."),
    ],
    targets: [
        .executableTarget(
            name: "PipelineOverhead",
            dependencies: [.product(name: "EtokPipeline", package: "etok")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
