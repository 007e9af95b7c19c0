import Foundation
import Synchronization
import Testing

extension Tag {
    /// Tests against real sshd hosts (scripts/sandbox.sh): slower, need root.
    @Tag static var endToEnd: Self
}

/// The repository root (for scripts/).
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

private let nextNetwork = Mutex(1)

/// The JSON events of one kind, in order.
func named(_ events: [[String: Any]], _ name: String) -> [[String: Any]] {
    events.filter { $0["event"] as? String == name }
}

/// A pool of real OpenSSH hosts web1..webN (scripts/sandbox.sh), on loopback addresses of a
/// network of its own. Each is a machine of its own: its own Debian root filesystem (no Swift;
/// users root, deploy and www-data), /proc, /tmp and hostname, in mount, PID and UTS namespaces.
/// `os` gives the hosts' systems in turn: Debian suites, or `shared` for a host on this machine's
/// own filesystem (only where a test needs this machine's tools, such as database clients).
/// Stopped on deinit.
final class SandboxPool {
    let directory: TemporaryDirectory
    let count: Int
    let network: String
    let os: [String]
    var sshConfig: String { directory.file("ssh_config") }

    init(hosts count: Int, os: [String] = ["bookworm"]) throws {
        self.count = count
        self.os = os
        directory = try TemporaryDirectory("ship-sandbox")
        // A network of its own; another test process on this machine may hold one (its pid
        // decides where its numbers start): then the next one.
        var attempt = 0
        while true {
            let octet = nextNetwork.withLock { value -> Int in
                defer { value += 1 }
                return Int(ProcessInfo.processInfo.processIdentifier % 50) * 5 + value
            }
            let network = "127.\(100 + octet / 250).\(octet % 250)"
            let result = try run(repositoryRoot + "/scripts/sandbox.sh", ["start", directory.file("pool"), String(count), "11", network],
                                 environment: ["SANDBOX_OS": os.joined(separator: ",")])
            if result.status == 0 {
                self.network = network
                break
            }
            attempt += 1
            guard result.stderr.contains("Address already in use"), attempt < 5 else { throw TestFailure("sandbox did not start: \(result.stderr)") }
            _ = try? run(repositoryRoot + "/scripts/sandbox.sh", ["stop", directory.file("pool")])
        }
        // ssh_config lives in the pool directory; keep a stable path.
        try FileManager.default.createSymbolicLink(atPath: sshConfig, withDestinationPath: directory.file("pool/ssh_config"))
    }

    deinit {
        _ = try? run(repositoryRoot + "/scripts/sandbox.sh", ["stop", directory.file("pool")]) // tearing down; a failure leaves tmp files only
    }

    /// Runs a shell line on a host over ssh.
    @discardableResult
    func ssh(_ host: String, _ line: String) throws -> ProcessResult {
        try run("ssh", ["-F", sshConfig, host, line])
    }

    /// Runs a shell line on a host and returns its trimmed stdout; fails the test on an error.
    func output(_ host: String, _ line: String) throws -> String {
        let result = try ssh(host, line)
        guard result.status == 0 else { throw TestFailure("\(host): `\(line)` failed (\(result.status)): \(result.stderr)") }
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    var hosts: [String] { (1...count).map { "web\($0)" } }

    /// Writes a file on a host (as root), its text on ssh's stdin.
    func write(_ host: String, _ path: String, _ text: String) throws {
        let result = try run("ssh", ["-F", sshConfig, host, "cat > " + path], input: text + "\n")
        guard result.status == 0 else { throw TestFailure("cannot write \(path) on \(host): \(result.stderr)") }
    }
}

/// An application repository whose ship.yml targets a sandbox pool.
final class SandboxApp {
    let repo: TestRepository
    let pool: SandboxPool
    let deployTo: String

    init(pool: SandboxPool, app: String = "shop", keepReleases: Int = 5, extraEnvironment: String = "",
         hosts: [String]? = nil, sharedFiles: [String] = []) throws {
        self.pool = pool
        repo = try TestRepository()
        deployTo = "/srv/\(app)"
        let hostLines = (hosts ?? pool.hosts.enumerated().map { $0.offset == 1 ? "{ host: \($0.element), roles: [web, migrate] }" : $0.element })
            .map { "      - \($0)" }.joined(separator: "\n")
        try repo.write("ship.yml", """
            app: \(app)
            deploy_to: \(deployTo)
            keep_releases: \(keepReleases)
            ssh:
              config_file: \(pool.sshConfig)
            shared:
              dirs: [public/files, log]
              files: [\(sharedFiles.joined(separator: ", "))]
            environments:
              test:
                hosts:
            \(hostLines)
                env: { APP_ENV: test, GREETING: "hello world" }
            \(extraEnvironment)
            """)
    }

    func writeAppspec(_ text: String) throws {
        try repo.write("appspec.yml", text)
    }

    @discardableResult
    func commit(_ message: String = "change") throws -> String {
        try repo.commitAll(message)
    }

    /// Runs `ship ARGS` in the repository with JSON output; returns the result and parsed events.
    func ship(_ arguments: [String], environment: [String: String] = [:]) throws -> (result: ProcessResult, events: [[String: Any]]) {
        // Before a `--` (ship exec's command), not after it.
        var arguments = arguments
        arguments.insert("--json", at: arguments.firstIndex(of: "--") ?? arguments.endIndex)
        let result = try ShipperTests.ship(arguments, in: repo.path,
                                           environment: environment.merging(["XDG_CACHE_HOME": repo.directory.file(".cache")]) { $1 })
        let events = result.stdout.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        return (result, events)
    }
}
