import Foundation
import Testing
@testable import Shipper

/// The output of a finished process.
struct ProcessResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs a program to completion, feeding `input` on stdin.
@discardableResult
func run(_ executable: String, _ arguments: [String], in directory: String? = nil,
         environment: [String: String] = [:], input: String? = nil) throws -> ProcessResult {
    var env = ProcessInfo.processInfo.environment
    for (key, value) in environment { env[key] = value }
    let path: String
    if executable.hasPrefix("/") {
        path = executable
    } else {
        let directories = (env["PATH"] ?? "/usr/bin:/bin").split(separator: ":").map(String.init)
        guard let found = directories.map({ $0 + "/" + executable }).first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw TestFailure("\(executable) not found on PATH")
        }
        path = found
    }
    let lines = LineCollector()
    let result = ChildProcess.runBlocking(path, arguments, input: input.map { .data(Data($0.utf8)) } ?? .none,
                                          environment: env, directory: directory, stderrLines: .max) { lines.append($0) }
    return ProcessResult(status: result.status, stdout: lines.text, stderr: result.stderr)
}

final class LineCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    func append(_ line: String) { lock.withLock { lines.append(line) } }
    var text: String { lock.withLock { lines.isEmpty ? "" : lines.joined(separator: "\n") + "\n" } }
}

/// A fresh temporary directory, removed when the value is deinitialised.
final class TemporaryDirectory {
    let path: String

    init(_ label: String = "ship-test") throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("\(label)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
        path = base.path
    }

    deinit {
        try? FileManager.default.removeItem(atPath: path) // best effort: a leftover temp dir harms nothing
    }

    func file(_ relative: String) -> String {
        (path as NSString).appendingPathComponent(relative)
    }

    func write(_ relative: String, _ text: String, executable: Bool = false) throws {
        let full = file(relative)
        try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try text.write(toFile: full, atomically: false, encoding: .utf8)
        if executable { try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: full) }
    }
}

/// A real Git repository in a temporary directory, driven with the git CLI.
final class TestRepository {
    let directory: TemporaryDirectory
    var path: String { directory.path }
    private var tick = 0

    init(bare: Bool = false) throws {
        directory = try TemporaryDirectory("ship-repo")
        try git(bare ? ["init", "-q", "--bare", "-b", "main"] : ["init", "-q", "-b", "main"])
        // Sandbox apps keep ship's bundle cache (XDG_CACHE_HOME) in the work tree: never committed.
        if !bare { try ".cache/\n".write(toFile: path + "/.git/info/exclude", atomically: true, encoding: .utf8) }
    }

    @discardableResult
    func git(_ arguments: [String]) throws -> String {
        tick += 1
        let date = "\(1_700_000_000 + tick * 60) +0000"
        let result = try run("git", ["-c", "user.name=Test", "-c", "user.email=test@example.com",
                                     "-c", "commit.gpgsign=false", "-c", "core.autocrlf=false"] + arguments,
                             in: path, environment: ["GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date])
        guard result.status == 0 else {
            throw TestFailure("git \(arguments.joined(separator: " ")) failed: \(result.stderr)")
        }
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func write(_ relative: String, _ text: String, executable: Bool = false) throws {
        try directory.write(relative, text, executable: executable)
    }

    /// Stages everything and commits; returns the commit id.
    @discardableResult
    func commitAll(_ message: String = "change") throws -> String {
        try git(["add", "-A"])
        try git(["commit", "-q", "-m", message])
        return try git(["rev-parse", "HEAD"])
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The directory holding the built products (`ship`, `ship-agent`) next to the test bundle.
var productsDirectory: String {
    var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    while url.path != "/" {
        if FileManager.default.isExecutableFile(atPath: url.appendingPathComponent("ship").path),
           url.lastPathComponent != "ship" {
            return url.path
        }
        url.deleteLastPathComponent()
    }
    return URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(".build/debug").path
}

/// The static agent scripts/build-agent.sh builds (scripts/test.sh runs it before the tests);
/// the `ship` under test finds it there too.
var staticAgentPath: String { repositoryRoot + "/.build-agent/release/ship-agent" }

func testAgents() throws -> AgentCatalog {
    guard FileManager.default.isExecutableFile(atPath: staticAgentPath) else {
        throw TestFailure("no static agent at \(staticAgentPath): run scripts/build-agent.sh (scripts/test.sh does)")
    }
    return AgentCatalog(primary: try AgentBinary(path: staticAgentPath))
}

/// Runs the built `ship` CLI.
func ship(_ arguments: [String], in directory: String, environment: [String: String] = [:]) throws -> ProcessResult {
    try run((productsDirectory as NSString).appendingPathComponent("ship"), arguments, in: directory, environment: environment)
}

/// Lists a tar.gz with the system tar: `mode type path -> target` lines.
func listTar(_ path: String) throws -> [String] {
    let result = try run("tar", ["-tvzf", path, "--numeric-owner"])
    guard result.status == 0 else { throw TestFailure("tar failed: \(result.stderr)") }
    return result.stdout.split(separator: "\n").map(String.init)
}

/// ship's host, not Foundation's.
typealias Host = Shipper.Host

/// One bundle cache for every in-process deployment of the test run (XDG_CACHE_HOME is
/// process-wide, so tests running in parallel must agree on it).
private let testBundleCache: String = {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("ship-test-cache-\(getpid())").path
    setenv("XDG_CACHE_HOME", path, 1)
    return path
}()

func useTestBundleCache() {
    _ = testBundleCache
}

/// A YAML input and the configuration error it must give.
struct ErrorCase: CustomTestStringConvertible, Sendable {
    var name: String
    var yaml: String
    /// The start of `FILE:LINE: KEY: MESSAGE`.
    var expected: String
    var hint: String?
    var testDescription: String { name }

    /// The error starts with `expected`, exits 2 and carries `hint` when one is given.
    func check(_ error: ShipError?) throws {
        let error = try #require(error)
        #expect(error.description.hasPrefix(expected), "got: \(error.description)")
        #expect(error.exitCode == .usage)
        if let hint { #expect(error.hint == hint) }
    }
}

/// A Python HTTP server on a free loopback port: `handler` defines a request handler class `H`
/// (http.server and sys are imported; sys.argv[1:] are `arguments`). Killed on deinit.
final class PythonHTTPServer {
    let process = Process()
    let port: Int
    let address: String
    var base: String { "http://\(address):\(port)" }

    init(handler: String, arguments: [String] = [], address: String = "127.0.0.1") throws {
        self.address = address
        let script = "import http.server, sys\n" + handler + """

            server = http.server.ThreadingHTTPServer(("\(address)", 0), H)
            print(server.server_port, flush=True)
            server.serve_forever()
            """
        let output = Pipe()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = ["-c", script] + arguments
        process.standardOutput = output
        try process.run()
        var line = Data()
        while !line.contains(0x0A) {
            let more = output.fileHandleForReading.availableData
            guard !more.isEmpty else { throw TestFailure("the Python HTTP server did not start") }
            line += more
        }
        guard let port = Int(String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw TestFailure("the Python HTTP server printed no port")
        }
        self.port = port
    }

    deinit {
        // Not waitUntilExit: it spins a run loop that a test's thread never serves.
        let pid = process.processIdentifier
        kill(pid, SIGKILL)
        waitpid(pid, nil, 0)
    }
}
