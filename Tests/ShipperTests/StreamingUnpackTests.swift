import Foundation
import Hooks
import Testing
@testable import Shipper

/// The agent's `prepare` with the bundle in the request's stream, on this machine: unpacked as it
/// arrives, hashed on the way, its tar headers read by the agent (which refuses what a ship bundle
/// never holds before tar sees it), and delta releases refused whenever their base is not what
/// it was.
@Suite("streaming unpack and delta releases in the agent")
struct StreamingUnpackTests {
    let directory: TemporaryDirectory
    let client: AgentClient
    var app: String { directory.file("app") }

    init() throws {
        directory = try TemporaryDirectory("ship-unpack")
        client = AgentClient(transport: LocalTransport(), deployTo: directory.file("app"), agentPath: try testAgents().primary.path,
                             session: AgentSession())
    }

    /// One ustar header block; `type` as tar spells it ("0" file, "1" hard link, "5" directory...).
    static func header(_ name: String, type: Character, size: Int = 0, link: String = "", mode: Int = 0o644) -> [UInt8] {
        var block = [UInt8](repeating: 0, count: 512)
        func put(_ text: String, at offset: Int) { for (i, byte) in text.utf8.enumerated() { block[offset + i] = byte } }
        put(name, at: 0)
        put(String(format: "%07o", mode), at: 100)
        put("0000000", at: 108)
        put("0000000", at: 116)
        put(String(format: "%011o", size), at: 124)
        put(String(format: "%011o", 1_700_000_000), at: 136)
        put("        ", at: 148)
        put(String(type), at: 156)
        put(link, at: 157)
        put("ustar", at: 257)
        put("00", at: 263)
        let sum = block.reduce(0) { $0 + Int($1) }
        put(String(format: "%06o", sum) + "\0 ", at: 148)
        return block
    }

    /// A tar.gz of `entries` (header, data) and the end blocks, written with gzip -n.
    func bundle(_ name: String, _ entries: [(header: [UInt8], data: [UInt8])]) throws -> (path: String, sha: String) {
        var tar: [UInt8] = []
        for entry in entries {
            tar += entry.header + entry.data + [UInt8](repeating: 0, count: (512 - entry.data.count % 512) % 512)
        }
        tar += [UInt8](repeating: 0, count: 1024)
        let plain = directory.file(name + ".tar")
        try Data(tar).write(to: URL(fileURLWithPath: plain))
        _ = try run("gzip", ["-n", "-f", plain])
        let path = plain + ".gz"
        return (path, try Data(contentsOf: URL(fileURLWithPath: path)).sha256Hex)
    }

    /// `send`: false when the host's cache has the bundle.
    func prepare(_ release: String, bundle: (path: String, sha: String), base: String? = nil,
                 unchanged: [String]? = nil, send: Bool = true) async throws -> AgentResult {
        var request = client.request(.prepare)
        request.release = release
        request.revision = String(repeating: "a", count: 40)
        request.appspec = .empty
        request.bundleSHA256 = bundle.sha
        request.baseRelease = base
        request.unchangedPaths = unchanged
        request.shared = SharedSpec(dirs: ["files"], files: [])
        return try await client.call(request, bundle: send ? bundle.path : nil)
    }

    var releases: [String] { ((try? FileManager.default.contentsOfDirectory(atPath: app + "/releases")) ?? []).sorted() }

    static func file(_ name: String, _ text: String, mode: Int = 0o644) -> (header: [UInt8], data: [UInt8]) {
        (header(name, type: "0", size: text.utf8.count, mode: mode), Array(text.utf8))
    }

    @Test("a bundle streamed into prepare: unpacked, cached under its SHA-256; a wrong SHA-256 leaves nothing and the session in step")
    func streamed() async throws {
        let good = try bundle("good", [Self.file("REVISION", "a\n"), (Self.header("web/", type: "5", mode: 0o755), []),
                                       Self.file("web/index.php", "<?php echo 1;\n", mode: 0o755),
                                       (Self.header("web/home", type: "2", link: "index.php", mode: 0o777), [])])
        var wrong = good
        wrong.sha = String(repeating: "0", count: 64)
        let refused = try await prepare("r0", bundle: wrong)
        #expect(refused.ok == false)
        #expect(refused.message?.contains("bundle SHA-256 mismatch") == true, "\(refused.message ?? "")")
        #expect(releases.isEmpty, "no release and no partial one")
        #expect(!FileManager.default.fileExists(atPath: app + "/.ship/bundles/\(good.sha).tar.gz"))

        let made = try await prepare("r1", bundle: good)
        #expect(made.ok, "\(made.message ?? "")")
        #expect(made.unpacked?.entries == 4)
        #expect(made.unpacked?.received == Int64(try Data(contentsOf: URL(fileURLWithPath: good.path)).count))
        #expect(try String(contentsOfFile: app + "/releases/r1/web/home", encoding: .utf8) == "<?php echo 1;\n")
        #expect(FileManager.default.isExecutableFile(atPath: app + "/releases/r1/web/index.php"))
        #expect(FileManager.default.fileExists(atPath: app + "/.ship/bundles/\(good.sha).tar.gz"), "kept for the next release of this revision")
        #expect(client.session?.isOpen == true, "one session all along")

        // From the cache, checked again on the way: a damaged copy is refused and removed.
        #expect(try await prepare("r2", bundle: good, send: false).ok)
        let cached = app + "/.ship/bundles/\(good.sha).tar.gz"
        var bytes = try Data(contentsOf: URL(fileURLWithPath: cached))
        bytes[bytes.count - 9] ^= 0xFF // the gzip trailer's CRC: tar still extracts, the hash differs
        try bytes.write(to: URL(fileURLWithPath: cached))
        let damaged = try await prepare("r3", bundle: good, send: false)
        #expect(damaged.ok == false)
        #expect(damaged.message?.contains("is damaged") == true, "\(damaged.message ?? "")")
        #expect(!FileManager.default.fileExists(atPath: cached), "removed, so the next deployment sends it")
        #expect(releases == ["r1", "r2"])
    }

    static let hostile: [(name: String, entry: [UInt8], expected: String)] = [
        ("a hard link", header("passwd", type: "1", link: "/etc/passwd"), "passwd is a hard link, which a ship bundle never holds"),
        ("a device", header("disk", type: "3"), "disk is an entry of tar type '3'"),
        ("an absolute name", header("/tmp/ship-escape", type: "0"), "the entry /tmp/ship-escape has an absolute name"),
        ("a name climbing out", header("web/../../escape", type: "0"), "the entry web/../../escape climbs out with '..'"),
        ("a GNU long name", header("././@LongLink", type: "L", size: 0), "is an entry of tar type 'L'"),
    ]

    @Test("entries a ship bundle never holds are refused by the agent before tar extracts them", arguments: 0..<hostile.count)
    func hostileEntries(_ index: Int) async throws {
        let (name, entry, expected) = Self.hostile[index]
        let crafted = try bundle("hostile", [Self.file("REVISION", "a\n"), (entry, [])])
        let result = try await prepare("r1", bundle: crafted)
        #expect(result.ok == false, "\(name)")
        #expect(result.message?.contains("refusing the bundle: ") == true && result.message?.contains(expected) == true,
                "\(name): \(result.message ?? "")")
        #expect(releases.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: "/tmp/ship-escape"))
        #expect(try await client.require(client.request(.state)).releases?.isEmpty == true, "the session answers the next request")
    }

    @Test("a delta copies its unchanged files from the base as new files; a base changed since it was sealed refuses it")
    func delta() async throws {
        let base = try bundle("base", [Self.file("REVISION", "a\n"), (Self.header("lib/", type: "5", mode: 0o755), []),
                                       Self.file("lib/a.php", "a1\n"), Self.file("lib/b.php", "b1\n", mode: 0o755)])
        #expect(try await prepare("r1", bundle: base).ok)
        let delta = try bundle("delta", [Self.file("REVISION", "b\n"), (Self.header("lib/", type: "5", mode: 0o755), []),
                                         Self.file("lib/a.php", "a2\n")])
        let made = try await prepare("r2", bundle: delta, base: "r1", unchanged: ["lib/b.php"])
        #expect(made.ok, "\(made.message ?? "")")
        #expect(made.unpacked?.copied == 1)
        #expect(try String(contentsOfFile: app + "/releases/r2/lib/b.php", encoding: .utf8) == "b1\n")
        #expect(FileManager.default.isExecutableFile(atPath: app + "/releases/r2/lib/b.php"), "the mode comes along")
        let inode = { (path: String) in (try FileManager.default.attributesOfItem(atPath: path)[.systemFileNumber] as? Int) ?? 0 }
        #expect(try inode(app + "/releases/r2/lib/b.php") != inode(app + "/releases/r1/lib/b.php"), "a copy, not a hard link")
        // A hook of the new release writing in place leaves the base as it was.
        let handle = try #require(FileHandle(forWritingAtPath: app + "/releases/r2/lib/b.php"))
        handle.seekToEndOfFile()
        handle.write(Data("changed\n".utf8))
        try handle.close()
        #expect(try String(contentsOfFile: app + "/releases/r1/lib/b.php", encoding: .utf8) == "b1\n")
        // r2's b.php changed in place after r2 was sealed: r2 is no base for it any more.
        let refused = try await prepare("r3", bundle: delta, base: "r2", unchanged: ["lib/b.php"])
        #expect(refused.ok == false && refused.deltaRefused == true)
        #expect(refused.message == "delta refused: lib/b.php was changed in the base release after it was unpacked", "\(refused.message ?? "")")
        // A chmod changes the inode too.
        chmod(app + "/releases/r1/lib/a.php", 0o600)
        let chmodded = try await prepare("r3", bundle: delta, base: "r1", unchanged: ["lib/a.php"])
        #expect(chmodded.deltaRefused == true)
        // A base that is gone, and paths that are not plain relative paths.
        #expect(try await prepare("r3", bundle: delta, base: "r9", unchanged: []).deltaRefused == true)
        let climbing = try await prepare("r3", bundle: delta, base: "r1", unchanged: ["../r1/lib/b.php"])
        #expect(climbing.ok == false && climbing.message?.contains("is not a plain relative path") == true, "\(climbing.message ?? "")")
        #expect(releases == ["r1", "r2"], "no r3, no partial release")
    }

    @Test("a delta never reads through a symlink of the base release")
    func deltaThroughSymlink() async throws {
        let base = try bundle("base", [Self.file("REVISION", "a\n"), (Self.header("real/", type: "5", mode: 0o755), []),
                                       Self.file("real/x.php", "x\n"), (Self.header("lib", type: "2", link: "real", mode: 0o777), [])])
        #expect(try await prepare("r1", bundle: base).ok)
        let delta = try bundle("delta", [Self.file("REVISION", "b\n"), (Self.header("lib/", type: "5", mode: 0o755), [])])
        let result = try await prepare("r2", bundle: delta, base: "r1", unchanged: ["lib/x.php"])
        #expect(result.deltaRefused == true)
        #expect(result.message == "delta refused: lib is no longer a directory of the base release", "\(result.message ?? "")")
    }
}
