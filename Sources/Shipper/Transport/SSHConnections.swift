import Foundation

/// The multiplexed ssh connections of one ship run: a private control-socket directory, one
/// transport per host, all closed and the directory removed at the end.
public final class SSHConnections: @unchecked Sendable {
    public let settings: SSHSettings
    public let directory: String
    private let lock = NSLock()
    private var transports: [String: OpenSSHTransport] = [:]
    /// New connections through each jump host, `ssh.max_startups` at a time.
    private let gates: ConnectionGates

    public init(settings: SSHSettings) throws(ShipError) {
        self.settings = settings
        // Control directories of killed runs (their ssh masters exit on their own after
        // ControlPersist) are removed; this run's carries its process in its name.
        Leftovers.removeAbandoned(in: NSTemporaryDirectory(), prefix: "ship-ssh", untaggedAge: 3600)
        var template = Array((NSTemporaryDirectory() + "/ship-ssh\(Leftovers.tag)~XXXXXX").utf8CString)
        guard let created = mkdtemp(&template) else {
            throw ShipError("cannot create a directory for ssh control sockets: \(String(cString: strerror(errno)))")
        }
        directory = String(cString: created)
        gates = ConnectionGates(limit: settings.maxStartups ?? SSHSettings.defaultMaxStartups)
    }

    public func transport(for host: Host) -> any Transport {
        lock.withLock {
            if let existing = transports[host.description] { return existing }
            let transport = OpenSSHTransport(host: host, settings: settings, controlDirectory: directory, gates: gates)
            transports[host.description] = transport
            return transport
        }
    }

    public func closeAll() async {
        let all = lock.withLock { Array(transports.values) }
        for transport in all { await transport.close() }
        try? FileManager.default.removeItem(atPath: directory) // only sockets live here; a leftover is harmless in tmp
    }
}
