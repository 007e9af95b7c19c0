// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "ship",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "ship", targets: ["ship"]),
        .executable(name: "ship-agent", targets: ["ship-agent"]),
        .library(name: "Shipper", targets: ["Shipper"]),
        .library(name: "Hooks", targets: ["Hooks"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.0.0"),
    ],
    targets: [
        // libgit2 from the system (Debian: libgit2-dev).
        .systemLibrary(
            name: "CGit2",
            pkgConfig: "libgit2",
            providers: [.apt(["libgit2-dev"])]
        ),
        // zlib from the system (Debian: zlib1g-dev): deflate with a fixed gzip header.
        .systemLibrary(
            name: "CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        // libcurl from the system (Debian: libcurl4-openssl-dev) behind typed setopt wrappers:
        // S3 with its built-in SigV4 signing, health checks, webhooks.
        .target(name: "CCurl", linkerSettings: [.linkedLibrary("curl")]),
        // posix_spawn helpers the Swift importer cannot see (addchdir_np needs _GNU_SOURCE).
        .target(name: "CSpawn"),
        // The lifecycle-hook engine and the protocol, shared by the controller and the agent: the
        // Swift standard library, libc and zlib only, so the agent stays small.
        .target(name: "Hooks", dependencies: ["CSpawn", "CZlib"]),
        // The controller's core: configuration, packaging, transport, orchestration, backups.
        .target(
            name: "Shipper",
            dependencies: [
                "Hooks", "CSpawn", "CGit2", "CZlib", "CCurl",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // The CLI: parse, call Shipper, render, exit code.
        .executableTarget(
            name: "ship",
            dependencies: [
                "Shipper",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // The host agent: Hooks (zlib included) and FoundationEssentials only. What ship uploads to hosts is this
        // target linked as a fully static executable (scripts/build-agent.sh: -static-executable),
        // so it runs on any x86-64 Linux with /proc whatever its C library, without Swift.
        .executableTarget(name: "ship-agent", dependencies: ["Hooks", "CSpawn"]),
        .testTarget(name: "ShipperTests", dependencies: ["Shipper", "Hooks", "ship", "ship-agent"]),
    ],
    swiftLanguageModes: [.v6]
)
