import Foundation
import Testing
@testable import Hooks
@testable import Shipper

@Suite("the agent on real hosts: static builds, platforms, runas without command-line secrets")
struct AgentPlatformTests {
    @Test("the static agent has no program interpreter; the debug build's agent and ship do, and locate() skips a dynamic agent")
    func staticDetection() throws {
        let agent = try AgentBinary(path: staticAgentPath)
        #expect(agent.isStatic && agent.machine == "x86_64")
        let dynamic = try AgentBinary(path: productsDirectory + "/ship-agent")
        #expect(!dynamic.isStatic, "swift build links the agent against the Swift runtime: not what goes to hosts")
        #expect(throws: ShipError.self) { try AgentBinary(path: repositoryRoot + "/README.md") }
        let catalog = AgentCatalog(primary: agent, searchedForOtherMachines: ["/nonexistent/linux-ARCH/ship-agent"])
        #expect(try catalog.agent(system: "Linux", machine: "x86_64") == agent)
        do {
            _ = try catalog.agent(system: "Linux", machine: "aarch64")
            Issue.record("an aarch64 host got an x86_64 agent")
        } catch {
            #expect(error.message == "Linux aarch64: this ship has an agent for x86_64 only")
            #expect(error.hint.contains("/nonexistent/linux-aarch64/ship-agent"))
        }
        #expect(throws: AgentPlatformError.self) { try catalog.agent(system: "FreeBSD", machine: "amd64") }
    }

    @Test("the probe's output is read past a chatty login shell; no marker means no answer")
    func probeParsing() {
        let sha = String(repeating: "ab", count: 32)
        let probe = HostProbe(output: ["Welcome to web1!", "ship-probe:uname", "Linux aarch64", "ship-probe:proc", "\(sha)  /srv/a/.ship/bin/ship-agent"])
        #expect(probe == HostProbe(output: ["ship-probe:uname", "Linux aarch64", "ship-probe:proc", "\(sha)  x"]))
        #expect(probe?.platform == "Linux aarch64" && probe?.hasProc == true && probe?.installedAgentSHA256 == sha)
        let bare = HostProbe(output: ["ship-probe:uname", "Linux x86_64"])
        #expect(bare?.hasProc == false && bare?.installedAgentSHA256 == nil)
        #expect(HostProbe(output: ["Linux x86_64"]) == nil)
    }

    @Test("runas as another user: sudo starts the agent's exec-hook, the environment goes on stdin, never in argv")
    func runasLaunch() {
        let invocation = HookRunner.Invocation(command: .shell("drush cr"), workingDirectory: "/srv/shop/releases/1",
                                               environment: ["API_TOKEN": "s3cr3t", "PATH": "/usr/bin:/bin"], timeout: 60,
                                               runas: "www-data", logFile: "/dev/null", agentPath: "/srv/shop/.ship/bin/ship-agent")
        let (argv, spec) = HookRunner.launch(for: invocation, isRoot: false)
        #expect(argv == ["sudo", "-n", "-u", "www-data", "--", "/srv/shop/.ship/bin/ship-agent", "exec-hook"])
        #expect(!argv.joined().contains("s3cr3t"))
        #expect(spec == ExecSpec(arguments: ["/bin/sh", "-c", "drush cr"], directory: "/srv/shop/releases/1",
                                 environment: ["API_TOKEN": "s3cr3t", "PATH": "/usr/bin:/bin"]))
        let (rootArgv, rootSpec) = HookRunner.launch(for: invocation, isRoot: true)
        #expect(rootArgv == ["runuser", "-u", "www-data", "--", "/bin/sh", "-c", "drush cr"] && rootSpec == nil)
        var plain = invocation
        plain.runas = nil
        #expect(HookRunner.launch(for: plain, isRoot: false).argv == ["/bin/sh", "-c", "drush cr"])
    }

    @Test("an exec spec survives encoding with spaces, quotes, '=' and newlines; anything else is refused")
    func execSpecRoundTrip() {
        let spec = ExecSpec(arguments: ["/srv/my app/bin/run", "a 'b' \"c\"", "x=y"], directory: "/srv/my app",
                            environment: ["MULTI": "line one\nline two", "EQ": "a=b=c", "EMPTY": ""])
        #expect(ExecSpec(decoding: spec.encoded) == spec)
        #expect(ExecSpec(decoding: Array("not a spec\0".utf8)) == nil)
        #expect(ExecSpec(decoding: Array("ship-exec-hook/1\0relative\u{0}1\0/bin/true\0".utf8)) == nil)
        #expect(ExecSpec(decoding: Array(spec.encoded.dropLast())) == nil)
    }

    @Test("ship-agent exec-hook runs the spec's program in its directory with exactly its environment")
    func execHookRuns() throws {
        let directory = try TemporaryDirectory()
        let spec = ExecSpec(arguments: ["/bin/sh", "-c", "pwd; printf '%s|%s|' \"$GREETING\" \"$HOME\"; cat"], directory: directory.path,
                            environment: ["GREETING": "hello 'world'", "PATH": "/usr/bin:/bin"])
        let result = try run(staticAgentPath, ["exec-hook"], input: String(decoding: spec.encoded, as: UTF8.self))
        #expect(result.status == 0, "\(result.stderr)")
        let home = ProcessInfo.processInfo.environment["HOME"] ?? ""
        #expect(result.stdout == directory.path + "\nhello 'world'|\(home)|\n", "HOME from sudo's environment; stdin is /dev/null once the spec is read")
        let check = try run(staticAgentPath, ["exec-hook"], input: "")
        #expect(check.status == 0 && check.stdout.hasPrefix("ship-agent exec-hook: ok"))
        let missing = ExecSpec(arguments: ["/nonexistent/hook"], directory: directory.path, environment: [:])
        let failed = try run(staticAgentPath, ["exec-hook"], input: String(decoding: missing.encoded, as: UTF8.self))
        #expect(failed.status == 127 && failed.stderr.contains("cannot run /nonexistent/hook"))
    }
}
