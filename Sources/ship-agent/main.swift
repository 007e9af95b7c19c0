#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import FoundationEssentials
import Hooks

// ship-agent: the small program ship uploads to `<deploy_to>/.ship/bin/` on each host. It does
// host-local work only (receive, verify, unpack, link, run hooks, switch, prune, journal, lock);
// policy (batches, rollback decisions, retention) stays in the controller. It depends on Hooks,
// FoundationEssentials (JSON, files) and the C library, so it links statically and small:
//   swift build -c release --product ship-agent --static-swift-stdlib
//
// Protocol: `ship-agent OP`, one JSON AgentRequest line on stdin, JSON AgentEvent lines on
// stdout, the last of kind `result`. See Sources/Hooks/AgentProtocol.swift.

// A lost connection must not kill the agent halfway through a step: writes to a closed stdout
// fail with EPIPE instead, and the step finishes, leaving the host consistent.
signal(SIGPIPE, SIG_IGN)
umask(0o022)

let arguments = Array(CommandLine.arguments.dropFirst())
guard let verb = arguments.first else {
    Output.fail("usage: ship-agent --version | ship-agent OP (started by `ship` over ssh)", exitCode: 2)
}
if verb == "--version" || verb == "version" {
    print("ship-agent protocol \(AgentProtocol.version)")
    exit(0)
}
guard let operation = AgentOperation(rawValue: verb) else {
    Output.fail("unknown operation '\(verb)'", exitCode: 2)
}
guard let line = Input.readLine(), let request = try? JSONDecoder().decode(AgentRequest.self, from: Data(line)) else {
    Output.fail("expected a JSON request line on stdin", exitCode: 2)
}
guard request.protocolVersion == AgentProtocol.version else {
    Output.fail("protocol version \(request.protocolVersion) requested; this agent speaks \(AgentProtocol.version)", exitCode: 3)
}
guard request.operation == operation, request.deployTo.hasPrefix("/") else {
    Output.fail("malformed request", exitCode: 2)
}

Output.framed = operation.streamsFrames
let host = HostLayout(deployTo: request.deployTo)
let result: AgentResult
do {
    result = try Operations(layout: host, request: request).perform()
} catch let error as AgentError {
    result = AgentResult(ok: false, message: error.message)
} catch {
    result = AgentResult(ok: false, message: "\(error)")
}
Output.emit(AgentEvent(kind: .result, result: result))
exit(result.ok ? 0 : 1)
