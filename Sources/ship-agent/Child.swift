#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import FoundationEssentials
import Hooks

/// A program the agent runs with its own stdin, stdout and stderr (dumps, restores, tar).
struct Child {
    let pid: pid_t
    let name: String

    /// `newProcessGroup`: the child and what it starts (a `sh -c` dump command's pipeline) can be
    /// stopped together with `killGroup()`.
    static func start(_ argv: [String], environment: [String: String], directory: String,
                      stdin: Int32, stdout: Int32, stderr: Int32, newProcessGroup: Bool = false) throws -> Child {
        switch Spawn.start(argv, environment: environment, directory: directory, stdin: stdin, stdout: stdout, stderr: stderr,
                           newProcessGroup: newProcessGroup) {
        case .success(let pid): return Child(pid: pid, name: argv[0])
        case .failure(let error): throw AgentError("cannot run \(error)")
        }
    }

    /// The exit status, or 128 + the signal that ended it.
    func wait() -> Int32 {
        Spawn.exitCode(Spawn.wait(pid))
    }

    func terminate() {
        kill(pid, SIGTERM)
    }

    /// SIGKILL to the child's whole process group (started with `newProcessGroup`).
    func killGroup() {
        kill(-pid, SIGKILL)
    }

    /// The first program of `names` found on PATH.
    static func findOnPath(_ names: [String]) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for name in names {
            for directory in path.split(separator: ":") where access("\(directory)/\(name)", X_OK) == 0 {
                return "\(directory)/\(name)"
            }
        }
        return nil
    }
}

/// A private directory for option files and captured stderr: 0700, removed with what it holds.
struct PrivateDirectory {
    let path: String

    init() throws {
        let base = ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        var template = Array("\(base)/ship-agent-XXXXXX".utf8CString)
        guard let created = mkdtemp(&template) else {
            throw AgentError("cannot create a private directory in \(base): \(String(cString: strerror(errno)))")
        }
        path = String(cString: created)
    }

    /// Writes a file only its owner can read; returns its path.
    func write(_ name: String, _ text: String) throws -> String {
        let file = path + "/" + name
        let fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw AgentError("cannot write \(file): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard POSIXIO.writeAll(fd, Array(text.utf8)) else { throw AgentError("cannot write \(file): \(String(cString: strerror(errno)))") }
        return file
    }

    /// A new 0600 file for a child's stderr, open for writing.
    func openCapture(_ name: String) throws -> Int32 {
        let fd = open(path + "/" + name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw AgentError("cannot create \(path)/\(name): \(String(cString: strerror(errno)))") }
        return fd
    }

    /// The end of a captured file, with `secret` masked.
    func tail(_ name: String, hiding secret: String?, lines: Int = 15) -> String {
        guard let data = FileManager.default.contents(atPath: path + "/" + name) else { return "" }
        var text = String(decoding: data.suffix(8192), as: UTF8.self)
        if let secret, !secret.isEmpty { text = text.replacing(secret, with: "********") }
        return text.split(separator: "\n").suffix(lines).joined(separator: "\n").trimmed
    }

    func remove() {
        for name in (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [] { unlink(path + "/" + name) }
        rmdir(path)
    }
}
