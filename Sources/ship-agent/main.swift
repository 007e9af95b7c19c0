#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CSpawn
import FoundationEssentials
import Hooks

// ship-agent: the small program ship uploads to `<deploy_to>/.ship/bin/` on each host. It does
// host-local work only (receive, verify, unpack, link, run hooks, switch, prune, journal, lock);
// policy (batches, rollback decisions, retention) stays in the controller. It depends on Hooks,
// FoundationEssentials (JSON, files) and the C library, and is linked as a fully static
// executable (scripts/build-agent.sh), so it needs neither Swift nor a particular C library on
// the host; it makes no NSS lookups (users are read from /etc/passwd or asked of `getent`).
//
// Protocol: `ship-agent OP`, one JSON AgentRequest line on stdin, JSON AgentEvent lines on
// stdout, the last of kind `result`; or `ship-agent serve`, a session of such requests (Session.swift).
// See Sources/Hooks/AgentProtocol.swift.

// A lost connection must not kill the agent halfway through a step: writes to a closed stdout
// fail with EPIPE instead, and the step finishes, leaving the host consistent.
signal(SIGPIPE, SIG_IGN)
umask(0o022)

let arguments = Array(CommandLine.arguments.dropFirst())
guard let verb = arguments.first else {
    Output.fail("usage: ship-agent --version | ship-agent pull … (docs/autoscaling.md) | ship-agent OP (started by `ship` over ssh)", exitCode: 2)
}
if verb == "--version" || verb == "version" {
    // No program interpreter was loaded (AT_BASE 0): nothing here comes from a shared library.
    let linking = ship_is_static_executable() == 1 ? "static" : "dynamic"
    var system = utsname()
    uname(&system)
    let machine = withUnsafeBytes(of: &system.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    print("ship-agent \(AgentProtocol.shipVersion) (protocol \(AgentProtocol.version), \(linking), \(machine))")
    exit(0)
}
if verb == "exec-hook" { ExecHook.run() }
if verb == "give-owner" { GiveOwner.run(Array(arguments.dropFirst())) }
if verb == "serve" { Session.serve() }
if verb == "pull" { Pull.run(Array(arguments.dropFirst())) }
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
let result = Operations(layout: HostLayout(deployTo: request.deployTo), request: request).result()
Output.emit(AgentEvent(kind: .result, result: result))
exit(result.ok ? 0 : 1)
