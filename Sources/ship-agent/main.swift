#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Hooks

// ship-agent: the small program ship uploads to `<deploy_to>/.ship/bin/` on each host. It does
// host-local work only (receive, verify, unpack, link, run hooks, switch, prune, journal, lock);
// policy stays in the controller. It depends on Hooks and the C library only, so it links
// statically and small:
//   swift build -c release --product ship-agent --static-swift-stdlib

let arguments = Array(CommandLine.arguments.dropFirst())
switch arguments.first {
case "--version", "version":
    print("ship-agent protocol \(AgentProtocol.version)")
default:
    let usage = "usage: ship-agent --version\nship-agent is started by `ship` over ssh; run ship on your machine instead.\n"
    _ = usage.withCString { write(2, $0, strlen($0)) }
    exit(2)
}
