// swift-tools-version:6.0
import Foundation  // /proc/cpuinfo, for the release kernels' target CPU
import PackageDescription

// Dependency direction (DESIGN.md): Kernels ← Model ← RL ← Cluster; Rewards and Wire ← Cluster;
// the CLI sits on top. Wire knows tensors only as named byte ranges.
// Release kernels are compiled for the vector width of the machine that builds them, as native
// builds of llama.cpp or BLIS are: AVX2 + FMA everywhere (without it, SIMD8's fused `addingProduct`
// lowers to eight scalar `fmaf` calls per vector), AVX-512 where the build machine is an AMD Zen 4
// or newer. There `TETHER_AVX512` selects the SIMD16 kernels, which run twice the FLOPs per cycle
// on Zen 5's full-width units. `-target-cpu znver4` rather than `x86-64-v4`: the latter tunes for
// 256-bit vectors and splits every SIMD16 in two. TETHER_TARGET_CPU=haswell builds a binary for
// any AVX2 machine (a changed value needs a clean `.build`).
#if arch(x86_64)
let targetCPU = Context.environment["TETHER_TARGET_CPU"] ?? buildMachineCPU()
let optimize: [SwiftSetting] = [.unsafeFlags(["-Ounchecked", "-target-cpu", targetCPU], .when(configuration: .release))]
    + (targetCPU.hasPrefix("znver4") || targetCPU.hasPrefix("znver5") ? [.define("TETHER_AVX512", .when(configuration: .release))] : [])
#else
let optimize: [SwiftSetting] = [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))]
#endif

/// `znver4` on an AMD processor with the AVX-512 subsets the SIMD16 kernels use, else `haswell`.
func buildMachineCPU() -> String {
    guard let cpuinfo = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return "haswell" }
    let flags = Set(cpuinfo.split(separator: "\n").first { $0.hasPrefix("flags") }?.split(separator: " ").map(String.init) ?? [])
    let amd = cpuinfo.contains("AuthenticAMD")
    return amd && ["avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512_bf16"].allSatisfy(flags.contains) ? "znver4" : "haswell"
}

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
        // CRC-32C on the SSE4.2 instruction (selected per function and at run time, so no flags).
        .target(name: "CTetherCRC32C"),

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
                "TetherRL", "TetherRewards", "TetherWire", "TetherModel", "TetherKernels", "CTetherCRC32C",
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
