import Crypto
import Foundation

/// A `ship-agent` executable the controller can upload: its path, SHA-256, and what it runs on.
public struct AgentBinary: Sendable, Equatable {
    public var path: String
    public var sha256: String
    /// The ELF machine it was built for, as `uname -m` says it (`x86_64`, `aarch64`, …).
    public var machine: String
    /// No program interpreter: it needs no shared library (and no Swift runtime) on the host.
    public var isStatic: Bool

    public init(path: String) throws(ShipError) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ShipError("cannot read the agent at \(path)", exitCode: .preflight)
        }
        guard let elf = ELFHeader(data) else {
            throw ShipError("\(path) is not a Linux executable (ELF)",
                            hint: "point SHIP_AGENT at a ship-agent built by scripts/build-agent.sh", exitCode: .preflight)
        }
        self.path = path
        sha256 = SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
        machine = elf.machine
        isStatic = !elf.hasInterpreter
    }
}

/// The agents this `ship` can install: the default one (beside it, in libexec, or `SHIP_AGENT`)
/// and builds for other architectures in `linux-ARCH/` directories beside it.
public struct AgentCatalog: Sendable {
    /// The default agent.
    public var primary: AgentBinary
    /// Where agents for other architectures are looked for, `ARCH` standing for `uname -m`.
    public var searchedForOtherMachines: [String]

    public init(primary: AgentBinary, searchedForOtherMachines: [String] = []) {
        self.primary = primary
        self.searchedForOtherMachines = searchedForOtherMachines
    }

    /// The agent for a host whose `uname -sm` is `system machine`, or an error saying where one
    /// would be looked for.
    public func agent(system: String, machine: String) throws(AgentPlatformError) -> AgentBinary {
        guard system == "Linux" else {
            throw AgentPlatformError(message: "\(system) \(machine) is not supported: ship-agent runs on Linux only",
                                     hint: "deploy to Linux hosts (x86-64 or, with an agent built for it, another architecture)")
        }
        if primary.machine == machine { return primary }
        let candidates = searchedForOtherMachines.map { $0.replacingOccurrences(of: "ARCH", with: machine) }
        for path in candidates where FileManager.default.isExecutableFile(atPath: path) {
            if let agent = try? AgentBinary(path: path), agent.machine == machine, agent.isStatic { return agent }
        }
        throw AgentPlatformError(
            message: "Linux \(machine): this ship has an agent for \(primary.machine) only",
            hint: "build ship-agent on a Linux \(machine) machine (scripts/build-agent.sh) and put it at "
                + (candidates.first ?? "libexec/ship/linux-\(machine)/ship-agent") + "; ship picks it for \(machine) hosts")
    }

    /// Finds the agents: `$SHIP_AGENT`, else `ship-agent` beside the running `ship`, else
    /// `../libexec/ship/ship-agent` from its directory, else, in a development tree,
    /// `.build-agent/release/ship-agent` (scripts/build-agent.sh). The running executable is
    /// found through /proc/self/exe, never argv[0]. A dynamically linked agent is skipped: it
    /// would need the Swift runtime on every host.
    public static func locate() throws(ShipError) -> AgentCatalog {
        let executable = ExecutablePath.current()
        let directory = (executable as NSString).deletingLastPathComponent
        let prefix = (directory as NSString).deletingLastPathComponent
        var candidates: [String] = []
        if let override = ProcessInfo.processInfo.environment["SHIP_AGENT"], !override.isEmpty {
            candidates.append(ConfigLoader.absolute(override, in: FileManager.default.currentDirectoryPath))
        } else {
            candidates += [directory + "/ship-agent", prefix + "/libexec/ship/ship-agent"]
            if let range = directory.range(of: "/.build/") {
                candidates.append(String(directory[..<range.lowerBound]) + "/.build-agent/release/ship-agent")
            }
        }
        var skipped: [String] = []
        for path in candidates where FileManager.default.isExecutableFile(atPath: path) {
            let agent = try AgentBinary(path: path)
            guard agent.isStatic else {
                skipped.append(path)
                continue
            }
            let others = [prefix + "/libexec/ship/linux-ARCH/ship-agent", directory + "/linux-ARCH/ship-agent"]
            return AgentCatalog(primary: agent, searchedForOtherMachines: others)
        }
        if !skipped.isEmpty {
            throw ShipError("the ship-agent at \(skipped.joined(separator: ", ")) is dynamically linked: it would need the Swift runtime on every host",
                            hint: "build the static agent with scripts/build-agent.sh (or install with scripts/install.sh)",
                            exitCode: .preflight)
        }
        throw ShipError("ship-agent not found (looked at \(candidates.joined(separator: ", ")))",
                        hint: "install ship with scripts/install.sh (it puts the agent in PREFIX/libexec/ship), build it with scripts/build-agent.sh, or set SHIP_AGENT to its path",
                        exitCode: .preflight)
    }
}

/// A host the agents cannot run on.
public struct AgentPlatformError: Error, Sendable {
    public var message: String
    public var hint: String
}

/// The running executable's absolute path, from /proc/self/exe.
public enum ExecutablePath {
    public static func current() -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        if count > 0 {
            return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        // /proc is not mounted: fall back to argv[0] as given, resolved once.
        return URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().path
    }
}

/// The few fields of an ELF header ship needs: the machine, and whether a program interpreter
/// (the dynamic loader) is requested.
struct ELFHeader {
    var machine: String
    var hasInterpreter: Bool

    init?(_ data: Data) {
        func integer(_ offset: Int, _ size: Int) -> Int? {
            guard offset >= 0, offset + size <= data.count else { return nil }
            return data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> Int in
                (0..<size).reduce(0) { $0 | Int(raw[offset + $1]) << (8 * $1) }
            }
        }
        // "\x7FELF", 64-bit, little-endian.
        guard data.count >= 64, integer(0, 4) == 0x464C_457F, integer(4, 1) == 2, integer(5, 1) == 1,
              let programHeaders = integer(32, 8), let entrySize = integer(54, 2), let count = integer(56, 2),
              let elfMachine = integer(18, 2) else { return nil }
        switch elfMachine {
        case 0x3E: machine = "x86_64"
        case 0xB7: machine = "aarch64"
        case 0xF3: machine = "riscv64"
        case 0x15: machine = "ppc64le"
        case 0x16: machine = "s390x"
        case let other: machine = "elf-machine-\(other)"
        }
        hasInterpreter = false
        for index in 0..<count {
            guard let type = integer(programHeaders + index * entrySize, 4) else { return nil }
            if type == 3 { hasInterpreter = true } // PT_INTERP
        }
    }
}
