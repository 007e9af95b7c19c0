#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CSpawn

/// How one hook ended.
public struct HookOutcome: Sendable, Equatable, Codable {
    /// The exit status, when the hook exited.
    public var exitStatus: Int32?
    /// The signal that ended it, when a signal did.
    public var signal: Int32?
    public var timedOut: Bool
    /// Wall-clock seconds.
    public var duration: Double

    public init(exitStatus: Int32?, signal: Int32?, timedOut: Bool, duration: Double) {
        self.exitStatus = exitStatus
        self.signal = signal
        self.timedOut = timedOut
        self.duration = duration
    }

    public var succeeded: Bool { exitStatus == 0 && !timedOut }

    public var summary: String {
        if timedOut { return "timed out after \(Int(duration.rounded()))s" }
        if let exitStatus { return exitStatus == 0 ? "ok" : "exit status \(exitStatus)" }
        if let signal { return "killed by signal \(signal)" }
        return "failed to start"
    }
}

/// Runs one hook: `/bin/sh -c RUN` (or a script) in the release directory, in a process group
/// of its own, with a timeout that kills the whole group.
///
/// The hook's stdout and stderr go to a log file, which is read as it grows and handed over
/// line by line. A hook is finished when its own process exits: a daemon it leaves running in
/// the background keeps the log file open without holding the deployment (no pipe to fill,
/// no SIGPIPE to kill it later).
public enum HookRunner {
    public struct Invocation: Sendable {
        public var command: HookSpec.Command
        public var workingDirectory: String
        /// The hook's whole environment.
        public var environment: [String: String]
        public var timeout: Int
        /// The user to run as; nil runs as the agent's own user.
        public var runas: String?
        /// Where the hook's output is appended.
        public var logFile: String
        /// The agent as the sudoers line names it (`<deploy_to>/.ship/bin/ship-agent`): what an
        /// agent that is not root runs through `sudo -u RUNAS` to start the hook.
        public var agentPath: String
        /// Secret values to hide as `***`. With any, the output goes through the agent (a pipe)
        /// so that neither the log nor the lines reported ever hold them; without, the hook
        /// writes its log itself.
        public var mask: SecretMask

        public init(command: HookSpec.Command, workingDirectory: String, environment: [String: String],
                    timeout: Int, runas: String?, logFile: String, agentPath: String, mask: SecretMask = SecretMask(values: [])) {
            self.command = command
            self.workingDirectory = workingDirectory
            self.environment = environment
            self.timeout = timeout
            self.runas = runas
            self.logFile = logFile
            self.agentPath = agentPath
            self.mask = mask
        }
    }

    /// Seconds between SIGTERM and SIGKILL on timeout.
    static let killGrace = 5.0
    /// How often the log is read and the hook checked while it runs.
    static let tick: Int32 = 25

    /// The hook's own program and arguments.
    public static func hookArguments(for invocation: Invocation) -> [String] {
        switch invocation.command {
        case .shell(let line): ["/bin/sh", "-c", line]
        case .script(let path): [invocation.workingDirectory + "/" + path]
        }
    }

    /// What is started, and the spec written to its stdin when it is `ship-agent exec-hook`.
    /// Root switches user with runuser (the environment passes through as the child's own); any
    /// other user goes through `sudo -n -u USER -- AGENT exec-hook`, the one command the sudoers
    /// line allows, and the program, directory and environment follow on stdin.
    public static func launch(for invocation: Invocation, isRoot: Bool = geteuid() == 0) -> (argv: [String], spec: ExecSpec?) {
        let hook = hookArguments(for: invocation)
        guard let user = invocation.runas else { return (hook, nil) }
        if isRoot { return (["runuser", "-u", user, "--"] + hook, nil) }
        let spec = ExecSpec(arguments: hook, directory: invocation.workingDirectory, environment: invocation.environment)
        return (["sudo", "-n", "-u", user, "--", invocation.agentPath, "exec-hook"], spec)
    }

    public static func run(_ invocation: Invocation, onLine reported: (String) -> Void) -> HookOutcome {
        let start = monotonicSeconds()
        _ = ship_set_child_subreaper()
        let logFD = open(invocation.logFile, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
        // What the hook writes: the log itself, read back as it grows; or, with secrets to mask,
        // a pipe whose lines are masked, then logged and reported.
        let masked = !invocation.mask.isEmpty
        var outputPipe: [Int32] = [-1, -1]
        if masked, ship_pipe_cloexec(&outputPipe) == 0 { _ = fcntl(outputPipe[0], F_SETFL, O_NONBLOCK) }
        let readFD = masked ? outputPipe[0] : open(invocation.logFile, O_RDONLY | O_CLOEXEC)
        guard logFD >= 0, readFD >= 0 else {
            reported("ship-agent: cannot open \(invocation.logFile): \(errorText())")
            return HookOutcome(exitStatus: nil, signal: nil, timedOut: false, duration: 0)
        }
        defer { close(readFD) }
        if !masked { _ = lseek(readFD, 0, SEEK_END) }
        func onLine(_ line: String) {
            guard masked else { return reported(line) }
            let text = invocation.mask.apply(line)
            _ = POSIXIO.writeAll(logFD, Array((text + "\n").utf8))
            reported(text)
        }
        let outputFD = masked ? outputPipe[1] : logFD

        var invocation = invocation
        if invocation.environment["PATH"] == nil {
            invocation.environment["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        }
        let (argv, spec) = launch(for: invocation)
        // The spec goes through a pipe: never on a command line, never in a file.
        var specPipe: [Int32] = [-1, -1]
        if spec != nil, ship_pipe_cloexec(&specPipe) != 0 {
            close(logFD)
            if masked { close(outputPipe[1]) }
            onLine("ship-agent: cannot create a pipe for the hook: \(errorText())")
            return HookOutcome(exitStatus: nil, signal: nil, timedOut: false, duration: 0)
        }
        // sudo keeps only a few variables; runuser and a plain hook get the whole environment.
        let spawnEnvironment = spec == nil ? invocation.environment : ["PATH": invocation.environment["PATH"] ?? "/usr/bin:/bin"]
        // A process group of its own (a timeout kills the whole group); stdout and stderr to the log.
        let spawned = Spawn.start(argv, environment: spawnEnvironment, directory: invocation.workingDirectory,
                                  stdin: spec == nil ? nil : specPipe[0],
                                  stdout: outputFD, stderr: outputFD, newProcessGroup: true,
                                  defaultSignals: [SIGPIPE, SIGINT, SIGTERM, SIGHUP])
        if masked { close(outputPipe[1]) }
        defer { if masked { close(logFD) } }
        if !masked { close(logFD) }
        if let spec {
            close(specPipe[0])
            // A child that exits without reading gives EPIPE here (SIGPIPE is ignored): its exit
            // status says what went wrong.
            _ = POSIXIO.writeAll(specPipe[1], spec.encoded)
            close(specPipe[1])
        }
        let pid: pid_t
        switch spawned {
        case .success(let started): pid = started
        case .failure(let error):
            onLine("ship-agent: cannot start hook: \(error)")
            return HookOutcome(exitStatus: 127, signal: nil, timedOut: false, duration: monotonicSeconds() - start)
        }

        var reader = LineReader(fd: readFD)
        var status: Int32 = 0
        var timedOut = false
        var killDeadline: Double?
        while true {
            reader.readAvailable(onLine)
            let waited = waitpid(pid, &status, WNOHANG)
            if waited == pid { break }
            if waited < 0 && errno != EINTR { break }
            let now = monotonicSeconds()
            if !timedOut && now - start >= Double(invocation.timeout) {
                timedOut = true
                kill(-pid, SIGTERM)
                killDeadline = now + killGrace
            } else if let deadline = killDeadline, now >= deadline {
                kill(-pid, SIGKILL)
                killDeadline = nil
            }
            _ = poll(nil, 0, tick)
        }
        if timedOut {
            // The whole group goes, including children the hook started; the agent is their
            // subreaper, so it reaps them and reports only once none is left.
            kill(-pid, SIGKILL)
            let deadline = monotonicSeconds() + killGrace
            while monotonicSeconds() < deadline {
                var ignored: Int32 = 0
                while waitpid(-1, &ignored, WNOHANG) > 0 {}
                if kill(-pid, 0) != 0 && errno == ESRCH { break }
                _ = poll(nil, 0, 10)
            }
        }
        reader.readAvailable(onLine)
        reader.flush(onLine)
        let exited = (status & 0x7F) == 0
        return HookOutcome(exitStatus: exited ? (status >> 8) & 0xFF : nil,
                           signal: exited ? nil : status & 0x7F,
                           timedOut: timedOut, duration: monotonicSeconds() - start)
    }

    public static func monotonicSeconds() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }

    static func errorText() -> String { String(cString: strerror(errno)) }
}

/// Splits bytes read from a file descriptor into lines.
struct LineReader {
    let fd: Int32
    var pending: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)

    init(fd: Int32) {
        self.fd = fd
    }

    mutating func readAvailable(_ onLine: (String) -> Void) {
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return }
            pending += buffer[0..<count]
            while let newline = pending.firstIndex(of: 0x0A) {
                var line = Array(pending[..<newline])
                if line.last == 0x0D { line.removeLast() }
                onLine(String(decoding: line, as: UTF8.self))
                pending.removeSubrange(...newline)
            }
        }
    }

    mutating func flush(_ onLine: (String) -> Void) {
        if !pending.isEmpty {
            onLine(String(decoding: pending, as: UTF8.self))
            pending.removeAll()
        }
    }
}
