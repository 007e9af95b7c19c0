import Foundation

/// `health_check.from`: an ssh SOCKS tunnel (`ssh -N -D`) through a host, opened on the first
/// check that needs it and closed at the end of the run, so health checks see what that host
/// sees (its names, its network: a private address behind a bastion, a balancer's backends).
actor HealthTunnel {
    let host: Host
    let makeTransport: @Sendable (Host) -> any Transport
    private var process: Process?
    private var port: Int?
    /// The tunnel's stdin, never written: when ship ends, however it ends, the remote `cat` sees
    /// the end of it and the tunnel closes by itself.
    private var lifeline: Pipe?

    init(host: Host, makeTransport: @escaping @Sendable (Host) -> any Transport) {
        self.host = host
        self.makeTransport = makeTransport
    }

    /// The proxy for libcurl (`socks5h`: names are resolved on the host).
    func proxy() async throws(ShipError) -> String {
        if let port, process?.isRunning == true { return "socks5h://127.0.0.1:\(port)" }
        guard let ssh = makeTransport(host) as? OpenSSHTransport else {
            throw ShipError("health_check.from: \(host) is not reached over ssh")
        }
        let port = try Self.freePort()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ssh.sshPath)
        // A connection of its own (ssh takes an option's first value: these go first).
        process.arguments = ["-o", "ControlMaster=no", "-o", "ControlPath=none", "-o", "ExitOnForwardFailure=yes",
                             "-D", "127.0.0.1:\(port)"] + ssh.baseArguments + ["cat > /dev/null"]
        let errors = Pipe()
        let lifeline = Pipe()
        process.standardInput = lifeline
        process.standardOutput = FileHandle.nullDevice
        process.standardError = errors
        do {
            try process.run()
        } catch {
            throw ShipError("health_check.from: cannot start ssh: \(error.localizedDescription)")
        }
        // Ready once the forward accepts connections; ssh exiting first is the failure.
        let deadline = Date().addingTimeInterval(20)
        while !Self.accepts(port) {
            guard process.isRunning, Date() < deadline else {
                if process.isRunning { process.terminate() }
                let said = String(decoding: errors.fileHandleForReading.availableData, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                throw ShipError("health_check.from: no tunnel through \(host)" + (said.isEmpty ? "" : ": \(said)"))
            }
            try? await Task.sleep(nanoseconds: 50_000_000)
        }
        self.process = process
        self.port = port
        self.lifeline = lifeline
        return "socks5h://127.0.0.1:\(port)"
    }

    func close() {
        try? lifeline?.fileHandleForWriting.close()
        guard let process, process.isRunning else { return }
        process.terminate()
        // Not waitUntilExit: it spins a run loop; reap the ssh directly.
        waitpid(process.processIdentifier, nil, 0)
    }

    static func accepts(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { Glibc.close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }

    /// A loopback port nothing listens on now.
    static func freePort() throws(ShipError) -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ShipError("cannot make a socket: \(String(cString: strerror(errno)))") }
        defer { Glibc.close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
            }
        }
        guard bound else { throw ShipError("cannot find a free port: \(String(cString: strerror(errno)))") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
