import Foundation

/// Runs commands on a host with the user's OpenSSH client, so their ssh config, agent, keys and
/// ProxyJump bastions apply. One multiplexed connection per host (ControlMaster) serves a whole
/// deployment; host keys are checked by ssh itself (never `StrictHostKeyChecking=no`).
public final class OpenSSHTransport: Transport {
    public let host: Host
    let settings: SSHSettings
    let controlDirectory: String
    let sshPath: String

    public init(host: Host, settings: SSHSettings, controlDirectory: String, sshPath: String = "/usr/bin/ssh") {
        self.host = host
        self.settings = settings
        self.controlDirectory = controlDirectory
        self.sshPath = sshPath
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
        await ChildProcess.run(sshPath, baseArguments + [line.text], input: input, onLine: onLine)
    }

    public func stream(_ line: ShellLine, input: TransportInput,
                       onBytes: @escaping @Sendable (UnsafeRawBufferPointer?) -> Void) async -> CommandResult {
        await ChildProcess.run(sshPath, baseArguments + [line.text], input: input, onBytes: onBytes)
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
