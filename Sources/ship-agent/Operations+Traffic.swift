#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import FoundationEssentials
import Hooks

/// `traffic`: a host out of a load balancer's rotation or back in it, done where the balancer is.
extension Operations {
    func traffic() throws -> AgentResult {
        guard let action = request.traffic else { throw AgentError("traffic: the request names no action") }
        if let server = action.haproxy {
            let runtime = try HAProxyRuntime(server)
            switch action.direction {
            case .out: return try runtime.takeOut(timeout: action.timeout)
            case .back: return try runtime.putBack(timeout: action.timeout)
            }
        }
        guard let command = action.command else { throw AgentError("traffic: the request names neither haproxy nor a command") }
        return trafficCommand(command, action: action)
    }

    /// The `command` provider: the user's drain or undrain line, with its variables, within its time limit.
    private func trafficCommand(_ command: String, action: TrafficAction) -> AgentResult {
        var environment = ProcessInfo.processInfo.environment.filter { ["PATH", "HOME", "USER", "LOGNAME", "LANG", "TZ"].contains($0.key) }
        if environment["PATH"] == nil { environment["PATH"] = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin" }
        for (name, value) in action.environment ?? [:] { environment[name] = value }
        try? files.createDirectory(atPath: layout.logs, withIntermediateDirectories: true)
        var lines: [String] = []
        let outcome = HookRunner.run(.init(command: .shell(command), workingDirectory: "/", environment: environment,
                                           timeout: action.timeout, runas: nil, logFile: layout.logs + "/traffic.log",
                                           agentPath: layout.agent)) { line in
            lines.append(line)
            if lines.count > 15 { lines.removeFirst() }
        }
        let output = lines.joined(separator: "\n")
        guard outcome.succeeded else {
            return AgentResult(ok: false, message: "`\(command)` failed: \(outcome.summary)" + (output.isEmpty ? "" : ": " + output))
        }
        return AgentResult(ok: true, message: "`\(command)` done in \(Self.seconds(outcome.duration))")
    }

    static func seconds(_ value: Double) -> String {
        let tenths = Int((value * 10).rounded())
        return "\(tenths / 10).\(tenths % 10) s"
    }
}

/// HAProxy's runtime API on its admin socket (`stats socket PATH level admin`): one command per
/// connection, as HAProxy's non-interactive mode answers it and closes.
struct HAProxyRuntime {
    let server: TrafficAction.HAProxyServer

    init(_ server: TrafficAction.HAProxyServer) throws {
        guard TrafficAction.HAProxyServer.isValidName(server.backend), TrafficAction.HAProxyServer.isValidName(server.server) else {
            throw AgentError("haproxy: \"\(server.backend)/\(server.server)\" is not a backend/server name")
        }
        self.server = server
    }

    var name: String { server.backend + "/" + server.server }

    /// What `show stat` says of the server.
    struct Status {
        /// `UP`, `DOWN`, `MAINT`, `DRAIN`, `no check`, or a transition: `UP 1/2` (up, its last
        /// check failed: going down), `DOWN 1/2` (down, going up).
        var status: String
        var sessions: Int
        var queued: Int

        /// Up and staying up: a server whose last check failed is not counted back yet.
        var serving: Bool { status == "UP" || status == "no check" }
    }

    /// `drain` (no new sessions), wait until the server's sessions and queue are empty or
    /// `timeout` seconds passed, then `maint`.
    func takeOut(timeout: Int) throws -> AgentResult {
        let before = try status()
        try set("drain")
        let started = HookRunner.monotonicSeconds()
        var now = before
        while true {
            now = try status()
            if now.sessions + now.queued == 0 || HookRunner.monotonicSeconds() - started >= Double(timeout) { break }
            usleep(100_000)
        }
        let waited = Operations.seconds(HookRunner.monotonicSeconds() - started)
        try set("maint")
        let drained = now.sessions + now.queued == 0
            ? "drained in \(waited)"
            : "drain_timeout \(timeout) s reached with \(now.sessions) session\(now.sessions == 1 ? "" : "s") open"
        return AgentResult(ok: true, message: "haproxy \(name): \(drained); in maintenance (was \(before.status))")
    }

    /// `ready`, then wait until HAProxy counts the server as up (its health check passed, or it
    /// has none); a server still down after `timeout` seconds is an error.
    func putBack(timeout: Int) throws -> AgentResult {
        try set("ready")
        let started = HookRunner.monotonicSeconds()
        var now = try status()
        while !now.serving && HookRunner.monotonicSeconds() - started < Double(timeout) {
            usleep(100_000)
            now = try status()
        }
        guard now.serving else {
            return AgentResult(ok: false, message: "haproxy \(name) is ready but HAProxy still reports it \(now.status) after \(timeout) s: "
                + "its health check does not pass (the server stays out of rotation)")
        }
        return AgentResult(ok: true, message: "haproxy \(name): back in rotation (\(now.status)) after \(Operations.seconds(HookRunner.monotonicSeconds() - started))")
    }

    func set(_ state: String) throws {
        let answer = try send("set server \(name) state \(state)").trimmed
        guard answer.isEmpty else { throw AgentError("haproxy: `set server \(name) state \(state)` answered: \(answer)" + Self.hint(answer)) }
    }

    /// The server's row of `show stat` (CSV with a `# pxname,svname,…` header).
    func status() throws -> Status {
        let text = try send("show stat")
        let lines = text.split(separator: "\n")
        guard let header = lines.first, header.hasPrefix("# ") else {
            throw AgentError("haproxy: `show stat` answered: \(text.trimmed.prefix(200))" + Self.hint(text))
        }
        let columns = header.dropFirst(2).split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard let proxy = columns.firstIndex(of: "pxname"), let serverColumn = columns.firstIndex(of: "svname"),
              let sessions = columns.firstIndex(of: "scur"), let queued = columns.firstIndex(of: "qcur"),
              let status = columns.firstIndex(of: "status") else {
            throw AgentError("haproxy: `show stat` has no pxname, svname, scur, qcur and status columns")
        }
        for line in lines.dropFirst() {
            let fields = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard fields.count > max(proxy, serverColumn, sessions, queued, status),
                  fields[proxy] == server.backend, fields[serverColumn] == server.server else { continue }
            return Status(status: fields[status], sessions: Int(fields[sessions]) ?? 0, queued: Int(fields[queued]) ?? 0)
        }
        throw AgentError("haproxy on \(server.socket) has no server \(name)",
                         hint: "the server's name in haproxy.cfg: traffic.haproxy.servers maps ship's hosts to them (default: the host as ship.yml writes it)")
    }

    static func hint(_ answer: String) -> String {
        answer.contains("Permission denied") ? " (the socket needs `level admin` in haproxy.cfg's `stats socket` line)" : ""
    }

    /// One command, its whole answer.
    func send(_ command: String) throws -> String {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw AgentError("haproxy: cannot make a socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let path = Array(server.socket.utf8)
        guard path.count < MemoryLayout.size(ofValue: address.sun_path) else { throw AgentError("haproxy: socket path too long: \(server.socket)") }
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            buffer.copyBytes(from: path)
            buffer[path.count] = 0
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else {
            let reason = errno
            let why = String(cString: strerror(reason))
            switch reason {
            case ENOENT, ECONNREFUSED:
                throw AgentError("haproxy: no admin socket at \(server.socket) (\(why))",
                                 hint: "haproxy.cfg needs `stats socket \(server.socket) mode 660 level admin` in its global section, and HAProxy running")
            case EACCES:
                throw AgentError("haproxy: \(Operations.userName()) may not open \(server.socket) (\(why))",
                                 hint: "give the socket a group the deploy user is in: `stats socket \(server.socket) mode 660 level admin group GROUP`")
            default:
                throw AgentError("haproxy: cannot connect to \(server.socket): \(why)")
            }
        }
        guard POSIXIO.writeAll(fd, Array((command + "\n").utf8)) else {
            throw AgentError("haproxy: cannot write to \(server.socket): \(String(cString: strerror(errno)))")
        }
        var answer: [UInt8] = []
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            guard poll(&poller, 1, 10_000) > 0 else { throw AgentError("haproxy: no answer to `\(command)` within 10 s on \(server.socket)") }
            let count = read(fd, &buffer, buffer.count)
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            answer += buffer[0..<count]
        }
        return String(decoding: answer, as: UTF8.self)
    }
}
