import Foundation
import Testing
import Crypto
import Hooks
@testable import Shipper

/// `ship-agent serve` driven through `AgentClient`'s session, on this machine: one agent process
/// for many requests, bundles inside the stream, failures that leave the session in step.
@Suite("agent sessions")
struct AgentSessionTests {
    let directory: TemporaryDirectory
    let client: AgentClient

    init() throws {
        directory = try TemporaryDirectory("ship-session")
        client = AgentClient(transport: LocalTransport(), deployTo: directory.file("app"), agentPath: try testAgents().primary.path,
                             session: AgentSession())
    }

    @Test("many requests, a bundle among them, one agent process; a refused bundle's bytes never reach the next request")
    func oneProcess() async throws {
        let bundle = directory.file("bundle.bin")
        let bytes = Data((0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        try bytes.write(to: URL(fileURLWithPath: bundle))
        let sha = bytes.sha256Hex
        var lock = client.request(.lock)
        lock.lock = LockInfo(deploymentId: "d1", holder: "test", started: "now", pid: getpid())
        #expect(try await client.require(lock).lock?.deploymentId == "d1")
        // A wrong checksum: refused after reading the whole bundle.
        var wrong = client.request(.receiveBundle)
        wrong.bundleSHA256 = String(repeating: "0", count: 64)
        #expect(try await client.call(wrong, bundle: bundle).ok == false)
        // No checksum at all: refused before reading it, and its bytes are dropped all the same.
        var malformed = client.request(.receiveBundle)
        malformed.bundleSHA256 = "not-a-checksum"
        #expect(try await client.call(malformed, bundle: bundle).message?.contains("no valid bundle SHA-256") == true)
        var receive = client.request(.receiveBundle)
        receive.bundleSHA256 = sha
        #expect(try await client.require(receive, bundle: bundle).present == true)
        #expect(FileManager.default.contents(atPath: directory.file("app/.ship/bundles/\(sha).tar.gz")) == bytes)
        var preflight = client.request(.preflight)
        preflight.bundleSHA256 = sha
        #expect(try await client.require(preflight).present == true)
        #expect(client.session?.isOpen == true, "one session served every request")
        await client.endSession(deploymentId: "d1")
        #expect(client.session?.isOpen == false)
    }
}

extension AgentSessionTests {
    @Test("a session lost while the host is stopped: the agent starts current again; if that fails, the host says so")
    func lostWhileStopped() async throws {
        // A current release whose start hook fails.
        let app = directory.file("app")
        let appspec = try AppspecDecoder.decode(yaml: "version: 1\nhooks:\n  start: [{ run: 'echo starting; exit 3' }]\n", file: "appspec.yml")
        try FileManager.default.createDirectory(atPath: app + "/releases/r1", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: app + "/.ship/releases", withIntermediateDirectories: true)
        try JSONEncoder().encode(ReleaseRecord(release: "r1", revision: "abc", deploymentId: "d0", appspec: appspec, bundleSHA256: nil))
            .write(to: URL(fileURLWithPath: app + "/.ship/releases/r1.json"))
        try FileManager.default.createSymbolicLink(atPath: app + "/current", withDestinationPath: "releases/r1")
        var stop = client.request(.runHooks)
        stop.release = "r1"
        stop.event = .stop
        stop.journal = JournalEntry(time: "now", deploymentId: "d2", kind: "deploy", step: "hooks")
        _ = try await client.require(stop)
        let plain = AgentClient(transport: LocalTransport(), deployTo: app, agentPath: client.agentPath)
        #expect(try await plain.require(plain.request(.state)).stopped?.deploymentId == "d2", "stopped, and said so")
        // The controller vanishes: no settle, the session's input just ends.
        await client.session?.close()
        let state = try await plain.require(plain.request(.state))
        #expect(state.stopped?.restartFailed == true, "still down, and said so: \(String(describing: state.stopped))")
        let journal = try String(contentsOfFile: app + "/.ship/journal.jsonl", encoding: .utf8)
        #expect(journal.contains("\"step\":\"guard_restart_failed\""), "\(journal)")
    }
}

extension Data {
    var sha256Hex: String {
        var hasher = SHA256()
        hasher.update(data: self)
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }
}
