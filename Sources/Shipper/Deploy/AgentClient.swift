import Crypto
import Foundation
import Hooks

/// A failed step on one host: what, where, and what the host said.
public struct HostError: Error, Sendable, CustomStringConvertible {
    public var host: String
    public var step: String
    public var message: String
    /// ssh could not reach the host (exit 255) rather than the command failing.
    public var unreachable: Bool
    /// What to do about it, when ship knows.
    public var hint: String? = nil

    public var description: String { "\(host): \(step): \(message)" }
}

/// Speaks the agent protocol with one host over a transport.
public struct AgentClient: Sendable {
    public let transport: any Transport
    public let deployTo: String
    /// Where the agent is: `<deploy_to>/.ship/bin/ship-agent` on a host, ship's own beside it locally.
    let agentPath: String

    /// With a session, operations go over one `ship-agent serve` channel (AgentSession).
    let session: AgentSession?

    public init(transport: any Transport, deployTo: String, agentPath: String? = nil) {
        self.init(transport: transport, deployTo: deployTo, agentPath: agentPath, session: nil)
    }

    init(transport: any Transport, deployTo: String, agentPath: String? = nil, session: AgentSession?) {
        self.transport = transport
        self.deployTo = deployTo
        self.agentPath = agentPath ?? deployTo + "/.ship/bin/ship-agent"
        self.session = session
    }

    /// A client whose operations share one agent session with the host (a deployment's).
    /// `SHIP_ONE_SHOT_AGENT=1` runs each operation in an ssh session of its own instead, as ship
    /// 0.2 did: for comparison (bench/sessions.sh), never needed otherwise.
    static func withSession(transport: any Transport, deployTo: String) -> AgentClient {
        let oneShot = ProcessInfo.processInfo.environment["SHIP_ONE_SHOT_AGENT"] == "1"
        return AgentClient(transport: transport, deployTo: deployTo, session: oneShot ? nil : AgentSession())
    }

    /// The same host without a session: each operation an ssh command of its own.
    func withoutSession() -> AgentClient {
        AgentClient(transport: transport, deployTo: deployTo, agentPath: agentPath, session: nil)
    }

    /// Ends the session, if one is open, after telling the agent the host is settled for
    /// `deploymentId` (so the session's end starts nothing). A session that dropped is not
    /// reopened for this: its agent watches the host on its own.
    func endSession(deploymentId: String) async {
        guard let session, session.isOpen else { return }
        var settle = request(.settle)
        settle.journal = JournalEntry(time: Event.timestamp(Date()), deploymentId: deploymentId, kind: "deploy", step: "settled")
        _ = try? await call(settle)
        await session.close()
    }

    var hostName: String { transport.host.description }

    /// One round trip before anything changes on the host: its platform, whether /proc is
    /// there (the static agent needs it), and the SHA-256 of the agent it has, if any.
    public func probe() async throws(HostError) -> HostProbe {
        let output = SendableBox<[String]>([])
        let line = ShellLine(each: [
            ShellLine(RemoteCommand(["echo", HostProbe.unameMarker])),
            ShellLine(RemoteCommand(["uname", "-sm"])),
            ShellLine(all: [RemoteCommand(["test", "-d", "/proc/self/fd"]), RemoteCommand(["echo", HostProbe.procMarker])]),
            ShellLine(RemoteCommand(["sha256sum", agentPath])),
        ])
        let result = await transport.run(line, input: .none) { output.value.append($0) }
        try failIfUnreachable(result, step: "connect")
        guard let probe = HostProbe(output: output.value) else {
            throw HostError(host: hostName, step: "connect",
                            message: "cannot tell the host's platform (`uname -sm` gave no answer; exit \(result.status)): \(result.stderr)",
                            unreachable: false)
        }
        return probe
    }

    /// The agent for the probed host, or why none can run there.
    public func agent(for probe: HostProbe, in agents: AgentCatalog) throws(HostError) -> AgentBinary {
        guard probe.hasProc else {
            throw HostError(host: hostName, step: "platform", message: "/proc is not mounted on \(probe.platform): ship-agent needs it",
                            unreachable: false, hint: "mount /proc on the host (every standard Linux system has it)")
        }
        do {
            return try agents.agent(system: probe.system, machine: probe.machine)
        } catch {
            throw HostError(host: hostName, step: "platform", message: error.message, unreachable: false, hint: error.hint)
        }
    }

    /// Probes the host and installs the agent for its platform unless it has that very one.
    @discardableResult
    public func ensureAgent(_ agents: AgentCatalog) async throws(HostError) -> HostProbe {
        let probe = try await probe()
        let agent = try agent(for: probe, in: agents)
        if probe.installedAgentSHA256 != agent.sha256 { try await upload(agent) }
        return probe
    }

    /// Runs the installed agent's `--version` on the host: proof that it starts there.
    public func agentVersion() async throws(HostError) -> String {
        let output = SendableBox<[String]>([])
        let result = await transport.run(ShellLine(RemoteCommand([agentPath, "--version"])), input: .none) { output.value.append($0) }
        try failIfUnreachable(result, step: "agent --version")
        guard result.status == 0, let version = output.value.last(where: { $0.hasPrefix("ship-agent ") }) else {
            throw HostError(host: hostName, step: "agent --version",
                            message: "the agent does not run on this host (exit \(result.status)): \(result.stderr)", unreachable: false,
                            hint: "ship-agent must be the static build (scripts/build-agent.sh); `file` on it should say \"statically linked\"")
        }
        return version
    }

    /// Uploads the agent to `<deploy_to>/.ship/bin/`, replacing another one atomically.
    public func upload(_ agent: AgentBinary) async throws(HostError) {
        let directory = deployTo + "/.ship/bin"
        let temporary = directory + "/.ship-agent.\(UUID().uuidString.prefix(8)).tmp"
        let upload = ShellLine(all: [
            RemoteCommand(["mkdir", "-p", directory]),
            RemoteCommand(["dd", "of=" + temporary, "bs=65536", "status=none"]),
            RemoteCommand(["chmod", "755", temporary]),
            RemoteCommand(["mv", "-f", temporary, agentPath]),
        ]).otherwise(RemoteCommand(["rm", "-f", temporary]))
        let result = await transport.run(upload, input: .dataThenFile(Data(), path: agent.path)) { _ in }
        try failIfUnreachable(result, step: "install agent")
        guard result.status == 0 else {
            throw HostError(host: hostName, step: "install agent",
                            message: "cannot install the agent in \(directory) (exit \(result.status)): \(result.stderr)",
                            unreachable: false)
        }
    }

    /// Runs one agent operation; agent events other than the result go to `onEvent`.
    /// `bundle` is a file sent after the request line, `source` a stream sent after it.
    public func call(_ request: AgentRequest, bundle: String? = nil, source: (any StreamSource)? = nil,
                     onEvent: @escaping @Sendable (AgentEvent) -> Void = { _ in }) async throws(HostError) -> AgentResult {
        let step = request.operation.rawValue
        var request = request
        if let bundle {
            let size = (try? FileManager.default.attributesOfItem(atPath: bundle)[.size] as? Int64) ?? nil
            guard let size else {
                throw HostError(host: hostName, step: step, message: "cannot read the bundle \(bundle)", unreachable: false)
            }
            request.payloadBytes = size
        }
        if let session, source == nil, request.operation.servedInSession {
            let (answer, ended, stray) = await session.send(try encode(request), bundle: bundle, client: self, onEvent: onEvent)
            if let answer { return answer }
            let command = ended ?? CommandResult(status: 255, stderr: "the agent session ended")
            try failIfUnreachable(command, step: step)
            let said = (stray + [command.stderr]).filter { !$0.isEmpty }.joined(separator: "\n")
            throw HostError(host: hostName, step: step,
                            message: "the agent session ended without an answer (exit \(command.status))" + (said.isEmpty ? "" : ": \(said)"),
                            unreachable: false,
                            hint: command.status == 126 || command.status == 127
                                ? "the agent cannot start on this host: ship-agent must be the static build (scripts/build-agent.sh)" : nil)
        }
        let line = try encode(request)
        let resultBox = SendableBox<AgentResult?>(nil)
        let strayOutput = SendableBox<[String]>([])
        var input: TransportInput = bundle.map { .dataThenFile(line, path: $0) } ?? .data(line)
        if let source { input = .dataThenStream(line, source) }
        let command = await transport.run(ShellLine(RemoteCommand([agentPath, request.operation.rawValue])), input: input) { text in
            guard let event = try? JSONDecoder().decode(AgentEvent.self, from: Data(text.utf8)) else {
                strayOutput.value.append(text)
                return
            }
            if event.kind == .result {
                resultBox.value = event.result
            } else {
                onEvent(event)
            }
        }
        try failIfUnreachable(command, step: step)
        guard let result = resultBox.value else {
            let said = (strayOutput.value + [command.stderr]).filter { !$0.isEmpty }.joined(separator: "\n")
            throw HostError(host: hostName, step: step,
                            message: "the agent gave no answer (exit \(command.status))" + (said.isEmpty ? "" : ": \(said)"),
                            unreachable: false,
                            hint: command.status == 126 || command.status == 127
                                ? "the agent cannot start on this host: ship-agent must be the static build (scripts/build-agent.sh)" : nil)
        }
        return result
    }

    /// Runs an operation that answers with frames (`AgentOperation.streamsFrames`): each data
    /// frame's payload goes to `onData` as it arrives, on one thread, in order.
    public func callStreaming(_ request: AgentRequest,
                              onData: @escaping @Sendable (UnsafeRawBufferPointer) -> Void) async throws(HostError) -> AgentResult {
        let step = request.operation.rawValue
        let line = try encode(request)
        let state = FrameReader(onData: onData)
        let command = await transport.stream(ShellLine(RemoteCommand([agentPath, step])), input: .data(line), onBytes: state.feed)
        try failIfUnreachable(command, step: step)
        guard let result = state.result else {
            let said = [state.problem ?? "", command.stderr].filter { !$0.isEmpty }.joined(separator: "\n")
            throw HostError(host: hostName, step: step,
                            message: "the agent gave no answer (exit \(command.status))" + (said.isEmpty ? "" : ": \(said)"),
                            unreachable: false)
        }
        return result
    }

    func encode(_ request: AgentRequest) throws(HostError) -> Data {
        do {
            var line = try JSONEncoder().encode(request)
            line.append(0x0A)
            return line
        } catch {
            throw HostError(host: hostName, step: request.operation.rawValue, message: "cannot encode the request: \(error)",
                            unreachable: false)
        }
    }

    /// Like `call`, but a result that is not ok is an error.
    public func require(_ request: AgentRequest, bundle: String? = nil,
                        onEvent: @escaping @Sendable (AgentEvent) -> Void = { _ in }) async throws(HostError) -> AgentResult {
        let result = try await call(request, bundle: bundle, onEvent: onEvent)
        guard result.ok else {
            throw HostError(host: hostName, step: request.operation.rawValue, message: result.message ?? "failed", unreachable: false,
                            hint: result.hint)
        }
        return result
    }

    func failIfUnreachable(_ result: CommandResult, step: String) throws(HostError) {
        if result.status == 255 {
            let reason = result.stderr.trimmingCharacters(in: .whitespacesAndNewlines)
            throw HostError(host: hostName, step: step, message: reason.isEmpty ? "ssh failed (exit 255)" : reason, unreachable: true)
        }
    }

    public func request(_ operation: AgentOperation) -> AgentRequest {
        AgentRequest(operation: operation, deployTo: deployTo)
    }

    /// `body` on every host of the environment at once (a client each, no session); results in
    /// the environment's host order.
    static func onEachHost<T: Sendable>(of environment: Environment, makeTransport: @escaping @Sendable (Host) -> any Transport,
                                        _ body: @escaping @Sendable (AgentClient) async throws(HostError) -> T) async
        -> [(host: String, result: Result<T, HostError>)] {
        await withTaskGroup(of: (Int, String, Result<T, HostError>).self) { group in
            for (index, host) in environment.hosts.enumerated() {
                group.addTask {
                    let client = AgentClient(transport: makeTransport(host), deployTo: environment.deployTo)
                    do throws(HostError) {
                        return (index, host.description, .success(try await body(client)))
                    } catch {
                        return (index, host.description, .failure(error))
                    }
                }
            }
            var collected: [(Int, String, Result<T, HostError>)] = []
            for await item in group { collected.append(item) }
            return collected.sorted { $0.0 < $1.0 }.map { (host: $0.1, result: $0.2) }
        }
    }
}

/// What `AgentClient.probe()` learns about a host.
public struct HostProbe: Sendable, Equatable {
    static let unameMarker = "ship-probe:uname"
    static let procMarker = "ship-probe:proc"

    /// `uname -s` and `uname -m`.
    public var system: String
    public var machine: String
    public var hasProc: Bool
    public var installedAgentSHA256: String?

    public var platform: String { "\(system) \(machine)" }

    /// Reads the probe's output; lines a login shell prints before it are skipped.
    init?(output lines: [String]) {
        guard let marker = lines.firstIndex(of: Self.unameMarker), marker + 1 < lines.count else { return nil }
        let words = lines[marker + 1].split(separator: " ")
        guard words.count == 2 else { return nil }
        system = String(words[0])
        machine = String(words[1])
        let rest = lines[(marker + 2)...]
        hasProc = rest.contains(Self.procMarker)
        installedAgentSHA256 = rest.lazy.compactMap { line -> String? in
            let hash = line.prefix(64)
            return hash.count == 64 && hash.allSatisfy(\.isHexDigit) ? String(hash) : nil
        }.first
    }
}

/// Reads a framed agent stream as it arrives: data frames go to `onData`, the result is kept.
/// Fed from the transport's one reader thread, then read once the command ended; the decoder's
/// buffer is mutated in place, never copied per chunk.
final class FrameReader: @unchecked Sendable {
    private var decoder = Frame.Decoder()
    private let onData: @Sendable (UnsafeRawBufferPointer) -> Void
    private(set) var result: AgentResult?
    private(set) var problem: String?

    init(onData: @escaping @Sendable (UnsafeRawBufferPointer) -> Void) {
        self.onData = onData
    }

    func feed(_ chunk: UnsafeRawBufferPointer?) {
        guard problem == nil else { return }
        guard let chunk else {
            if !decoder.isAtBoundary { problem = "the stream ended inside a frame" }
            return
        }
        do {
            try decoder.feed(chunk) { tag, payload in
                if tag == Frame.data {
                    onData(payload)
                } else if tag == Frame.event, let event = try? JSONDecoder().decode(AgentEvent.self, from: Data(payload)),
                          event.kind == .result {
                    result = event.result
                }
            }
        } catch {
            problem = "\(error)"
        }
    }
}

/// A mutable value shared with a callback that runs on another thread.
final class SendableBox<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var _value: Value

    init(_ value: Value) {
        _value = value
    }

    var value: Value {
        get { lock.withLock { _value } }
        set { lock.withLock { _value = newValue } }
    }
}
