import Foundation
import Testing
@testable import Shipper

@Suite("remote command rendering")
struct RemoteCommandTests {
    @Test("words are quoted only when they must be", arguments: [
        ("simple", "simple"),
        ("/srv/shop/current", "/srv/shop/current"),
        ("", "''"),
        ("with space", "'with space'"),
        ("it's", #"'it'\''s'"#),
        ("$HOME", "'$HOME'"),
        ("a;rm -rf /", "'a;rm -rf /'"),
        ("`id`", "'`id`'"),
        ("line\nbreak", "'line\nbreak'"),
        ("*.php", "'*.php'"),
        ("=x", "'=x'"),
    ])
    func quoting(_ word: String, _ expected: String) {
        #expect(ShellQuote.quote(word) == expected)
    }

    @Test("a command with environment and working directory renders as one safe line")
    func rendering() {
        let command = RemoteCommand(["/srv/my app/.ship/bin/ship-agent", "run-hooks"],
                                    environment: [("GREETING", "hello 'world'"), ("PATH", "/usr/bin:/bin")],
                                    workingDirectory: "/srv/my app")
        #expect(command.rendered == #"cd '/srv/my app' && env 'GREETING=hello '\''world'\''' PATH=/usr/bin:/bin '/srv/my app/.ship/bin/ship-agent' run-hooks"#)
        #expect(ShellLine(all: [RemoteCommand(["mkdir", "-p", "/srv/a b"]), RemoteCommand(["true"])]).text == "mkdir -p '/srv/a b' && true")
    }

    @Test("lines compose: all (&&), each (;), otherwise (cleanup and fail); a failed step's cleanup runs in a real shell")
    func composition() throws {
        let temporary = "/tmp/ship test '\(UUID().uuidString)'"
        let line = ShellLine(all: [RemoteCommand(["touch", temporary]), RemoteCommand(["false"])])
            .otherwise(RemoteCommand(["rm", "-f", temporary]))
        #expect(line.text == "touch \(ShellQuote.quote(temporary)) && false || { rm -f \(ShellQuote.quote(temporary)); exit 1; }")
        let result = try run("/bin/sh", ["-c", line.text])
        #expect(result.status == 1)
        #expect(!FileManager.default.fileExists(atPath: temporary), "the cleanup ran")
        let each = ShellLine(each: [ShellLine(RemoteCommand(["false"])), ShellLine(RemoteCommand(["echo", "a b"]))])
        #expect(each.text == "false; echo 'a b'")
        #expect(try run("/bin/sh", ["-c", each.text]).stdout == "a b\n")
    }

    @Test("a rendered line survives a real shell unchanged")
    func roundTrip() throws {
        let nasty = ["it's", "$(id)", "a b", "\"q\"", "\\", "tab\there", "ünï"]
        let line = RemoteCommand(["printf", "%s\\n"] + nasty).rendered
        let result = try run("/bin/sh", ["-c", line])
        #expect(result.stdout == nasty.joined(separator: "\n") + "\n")
    }

    @Test("ssh gets the user's options first, then ship's multiplexing, then the destination")
    func sshArguments() {
        let transport = OpenSSHTransport(host: Host(name: "web1", port: 2200),
                                         settings: SSHSettings(user: "deploy", port: 22, identityFile: "/k/id", configFile: "/c/ssh_config",
                                                               options: ["-o", "ConnectTimeout=3"]),
                                         controlDirectory: "/tmp/ctl")
        let arguments = transport.baseArguments
        #expect(Array(arguments.prefix(10)) == ["-o", "ConnectTimeout=3", "-F", "/c/ssh_config", "-l", "deploy", "-p", "2200", "-i", "/k/id"])
        #expect(arguments.contains("ControlPath=/tmp/ctl/%C"))
        #expect(arguments.contains("BatchMode=yes"))
        #expect(!arguments.contains { $0.contains("StrictHostKeyChecking") }, "host keys are checked by ssh as configured")
        #expect(Array(arguments.suffix(2)) == ["--", "web1"])
        // A host written user@name keeps that user: ssh would let -l win over it.
        let explicit = OpenSSHTransport(host: Host(name: "root@lb1"), settings: SSHSettings(user: "deploy"), controlDirectory: "/tmp/ctl")
        #expect(!explicit.baseArguments.contains("-l"))
        #expect(Array(explicit.baseArguments.suffix(2)) == ["--", "root@lb1"])
    }
}
