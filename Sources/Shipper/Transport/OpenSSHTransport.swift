import Foundation

/// Runs commands on a host with the user's OpenSSH client, so their ssh config, agent, keys and
/// ProxyJump bastions apply. One multiplexed connection per host (ControlMaster) serves a whole
/// deployment; host keys are checked by ssh itself (never `StrictHostKeyChecking=no`).
public final class OpenSSHTransport: Transport {
    public let host: Host
    let settings: SSHSettings
    let controlDirectory: String
    let sshPath: String
    /// The run's limits on new connections through jump hosts (nil: none).
    let gates: ConnectionGates?
    private let opening = ConnectionOpening()

    public init(host: Host, settings: SSHSettings, controlDirectory: String, sshPath: String = "/usr/bin/ssh") {
        self.host = host
        self.settings = settings
        self.controlDirectory = controlDirectory
        self.sshPath = sshPath
        gates = nil
    }

    init(host: Host, settings: SSHSettings, controlDirectory: String, gates: ConnectionGates, sshPath: String = "/usr/bin/ssh") {
        self.host = host
        self.settings = settings
        self.controlDirectory = controlDirectory
        self.sshPath = sshPath
        self.gates = gates
    }

    /// Before the first command: a host behind a jump host gets its multiplexed connection
    /// opened under the jump host's limit (`ssh.max_startups`), and opened again, after a pause,
    /// when the jump host's sshd dropped it at the handshake (its MaxStartups); the commands
    /// then share that connection. A host reached directly is left to its first command.
    func connect() async {
        guard let gates else { return }
        await opening.once { [self] in
            // Where ssh itself says this host is reached through (its config, ProxyJump).
            let view = SendableBox<[String]>([]) // one reader appends
            let probe = await ChildProcess.run(sshPath, ["-G"] + baseArguments, input: .none, onLine: { view.value.append($0) })
            guard probe.status == 0,
                  let jump = view.value.first(where: { $0.hasPrefix("proxyjump ") }).map({ String($0.dropFirst("proxyjump ".count)) }),
                  jump != "none" else { return }
            let gate = gates.gate(for: jump)
            await gate.acquire()
            for attempt in 1...6 {
                let opened = await ChildProcess.run(sshPath, baseArguments + ["true"], input: .none, onLine: { _ in })
                guard opened.status == 255, Self.droppedAtHandshake(opened.stderr), attempt < 6 else { break }
                try? await Task.sleep(for: .milliseconds(200 * attempt + Int.random(in: 0..<200)))
            }
            await gate.release()
        }
    }

    /// What ssh says when an sshd (the target's or a jump host's) closed a connection before
    /// the key exchange: MaxStartups, or a server restarting.
    static func droppedAtHandshake(_ stderr: String) -> Bool {
        ["kex_exchange_identification", "ssh_exchange_identification", "banner exchange", "Connection reset by peer",
         "Connection closed by"].contains { stderr.contains($0) }
    }

    /// ssh's arguments up to (and including) the destination.
    public var baseArguments: [String] { Self.arguments(host: host, settings: settings, controlDirectory: controlDirectory) }

    /// With a control directory: batch mode and one multiplexed connection (ship's own work);
    /// without: a terminal and prompts allowed, for a person (`ship ssh`).
    static func arguments(host: Host, settings: SSHSettings, controlDirectory: String?) -> [String] {
        // ssh takes the first value it sees for an option: the user's options go first.
        var arguments: [String] = settings.options
        if let config = settings.configFile { arguments += ["-F", config] }
        // A host written `user@name` keeps its user: ssh would let `-l` win over it.
        if !host.name.contains("@"), let user = host.user ?? settings.user { arguments += ["-l", user] }
        if let port = host.port ?? settings.port { arguments += ["-p", String(port)] }
        if let identity = settings.identityFile { arguments += ["-i", identity] }
        if let controlDirectory {
            arguments += [
                "-o", "BatchMode=yes",
                "-o", "ControlMaster=auto",
                "-o", "ControlPath=\(controlDirectory)/%C",
                "-o", "ControlPersist=120",
                "-o", "ServerAliveInterval=15",
                "-o", "ServerAliveCountMax=4",
                "-o", "ConnectTimeout=15",
            ]
        } else {
            arguments += ["-t", "-o", "ConnectTimeout=15"]
        }
        arguments += ["--", host.name]
        return arguments
    }

    /// ssh's whole command line for a person at a terminal: the same settings, a terminal.
    public static func interactive(host: Host, settings: SSHSettings, line: ShellLine, sshPath: String = "/usr/bin/ssh") -> [String] {
        [sshPath] + arguments(host: host, settings: settings, controlDirectory: nil) + [line.text]
    }

    public func run(_ line: ShellLine, input: TransportInput, onLine: @escaping @Sendable (String) -> Void) async -> CommandResult {
        await connect()
        return await ChildProcess.run(sshPath, baseArguments + [line.text], input: input, onLine: onLine)
    }

    public func stream(_ line: ShellLine, input: TransportInput,
                       onBytes: @escaping @Sendable (UnsafeRawBufferPointer?) -> Void) async -> CommandResult {
        await connect()
        return await ChildProcess.run(sshPath, baseArguments + [line.text], input: input, onBytes: onBytes)
    }

    public func close() async {
        var arguments = baseArguments
        arguments.insert(contentsOf: ["-O", "exit"], at: arguments.count - 2)
        _ = await ChildProcess.run(sshPath, arguments, input: .none, onLine: { _ in })
    }
}

/// Runs commands on this machine with /bin/sh: for `host: local` and for tests without ssh.
public final class LocalTransport: Transport {
    public let host: Host

    public init(host: Host = Host(name: "local")) {
        self.host = host
    }

    public func run(_ line: ShellLine, input: TransportInput, onLine: @escaping @Sendable (String) -> Void) async -> CommandResult {
        await ChildProcess.run("/bin/sh", ["-c", line.text], input: input, onLine: onLine)
    }

    public func stream(_ line: ShellLine, input: TransportInput,
                       onBytes: @escaping @Sendable (UnsafeRawBufferPointer?) -> Void) async -> CommandResult {
        await ChildProcess.run("/bin/sh", ["-c", line.text], input: input, onBytes: onBytes)
    }

    public func close() async {}
}
