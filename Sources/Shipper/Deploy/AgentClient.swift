import Crypto
import Foundation
import Hooks

/// The `ship-agent` executable the controller uploads to hosts.
public struct AgentBinary: Sendable {
    public var path: String
    public var sha256: String

    /// The agent beside the running `ship` (or `$SHIP_AGENT`).
    public static func locate() throws(ShipError) -> AgentBinary {
        var candidates: [String] = []
        if let override = ProcessInfo.processInfo.environment["SHIP_AGENT"] { candidates.append(override) }
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        candidates += [executable.appendingPathComponent("ship-agent").path,
                       executable.deletingLastPathComponent().appendingPathComponent("libexec/ship/ship-agent").path]
        guard let path = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw ShipError("ship-agent not found (looked at \(candidates.joined(separator: ", ")))",
                            hint: "build it (`swift build --product ship-agent`) or set SHIP_AGENT to its path",
                            exitCode: .preflight)
        }
        return try AgentBinary(path: path)
    }

    public init(path: String) throws(ShipError) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ShipError("cannot read the agent at \(path)", exitCode: .preflight)
        }
        self.path = path
        sha256 = SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }
}

/// A failed step on one host: what, where, and what the host said.
public struct HostError: Error, Sendable, CustomStringConvertible {
    public var host: String
    public var step: String
    public var message: String
    /// ssh could not reach the host (exit 255) rather than the command failing.
    public var unreachable: Bool

    public var description: String { "\(host): \(step): \(message)" }
}

/// Speaks the agent protocol with one host over a transport.
public struct AgentClient: Sendable {
    public let transport: any Transport
    public let deployTo: String
    /// Where the agent is: `<deploy_to>/.ship/bin/ship-agent` on a host, ship's own beside it locally.
    let agentPath: String

    public init(transport: any Transport, deployTo: String, agentPath: String? = nil) {
        self.transport = transport
        self.deployTo = deployTo
        self.agentPath = agentPath ?? deployTo + "/.ship/bin/ship-agent"
    }

    var hostName: String { transport.host.description }

    /// Connects and tells whether the host has this very agent (compared by SHA-256).
    public func hasAgent(_ agent: AgentBinary) async throws(HostError) -> Bool {
        let output = SendableBox<String>("")
        let probe = await transport.run(ShellLine(RemoteCommand(["sha256sum", agentPath])), input: .none) { line in
            output.value += line
        }
        try failIfUnreachable(probe, step: "connect")
        return probe.status == 0 && output.value.hasPrefix(agent.sha256)
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
        ])
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
                            unreachable: false)
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
            throw HostError(host: hostName, step: request.operation.rawValue, message: result.message ?? "failed", unreachable: false)
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
