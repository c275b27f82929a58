// swift-tools-version:6.0
import PackageDescription

// Dependency direction (DESIGN.md): Kernels ← Model ← RL ← Cluster; Rewards and Wire ← Cluster;
// the CLI sits on top. Wire knows tensors only as named byte ranges.
// Release kernels target AVX2 + FMA (DESIGN.md's machine): without it, SIMD8's fused
// `addingProduct` lowers to eight scalar `fmaf` library calls per vector.
#if arch(x86_64)
let optimize: [SwiftSetting] = [.unsafeFlags(["-Ounchecked", "-target-cpu", "haswell"], .when(configuration: .release))]
#else
let optimize: [SwiftSetting] = [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))]
#endif

let package = Package(
    name: "Tether",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "tether", targets: ["tether"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
    ],
    targets: [
        // System libraries, found through pkg-config (Debian: libopenblas-dev, libzmq3-dev).
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CZMQ", pkgConfig: "libzmq", providers: [.apt(["libzmq3-dev"])]),
        // protoc-c output for proto/tether.proto (regenerate with scripts/gen-proto), on libprotobuf-c.
        .target(
            name: "CTetherWire",
            linkerSettings: [.linkedLibrary("protobuf-c")]
        ),

        .target(name: "TetherKernels", dependencies: ["CBLAS"], swiftSettings: optimize),
        .target(
            name: "TetherModel",
            dependencies: ["TetherKernels"],
            swiftSettings: optimize
        ),
        .target(
            name: "TetherRL",
            dependencies: ["TetherModel", "TetherKernels"],
            swiftSettings: optimize
        ),
        .target(
            name: "TetherRewards",
            dependencies: ["TetherModel", "TetherKernels"],
            swiftSettings: optimize
        ),
        .target(
            name: "TetherWire",
            dependencies: ["CTetherWire", "CZMQ", .product(name: "Logging", package: "swift-log")]
        ),
        .target(
            name: "TetherCluster",
            dependencies: [
                "TetherRL", "TetherRewards", "TetherWire", "TetherModel", "TetherKernels",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        .executableTarget(
            name: "tether",
            dependencies: [
                "TetherCluster", "TetherRL", "TetherRewards", "TetherWire", "TetherModel", "TetherKernels",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // Test-only helpers every test target shares: finite-difference checks, seeded inputs, the
        // peer Python and the `tether` binary run as a process.
        .target(name: "TetherTestSupport", dependencies: ["TetherKernels"], path: "Tests/TetherTestSupport"),
        .testTarget(name: "TetherKernelsTests", dependencies: ["TetherKernels", "TetherTestSupport"]),
        .testTarget(name: "TetherModelTests", dependencies: ["TetherModel", "TetherKernels", "TetherTestSupport"]),
        .testTarget(name: "TetherRLTests", dependencies: ["TetherRL", "TetherModel", "TetherKernels", "TetherRewards", "TetherTestSupport"]),
        .testTarget(name: "TetherRewardsTests", dependencies: ["TetherRewards", "TetherModel", "TetherTestSupport"]),
        .testTarget(name: "TetherWireTests", dependencies: ["TetherWire", "CTetherWire", "TetherTestSupport"]),
        .testTarget(
            name: "TetherClusterTests",
            dependencies: ["TetherCluster", "TetherWire", "TetherRL", "TetherRewards", "TetherModel", "TetherKernels", "TetherTestSupport",
                           .product(name: "Yams", package: "Yams")]
        ),
        // The `tether` executable run as a process (`swift test` builds it with the other products).
        .testTarget(name: "TetherCLITests", dependencies: ["TetherModel", "TetherCluster", "TetherTestSupport"]),
    ]
)
