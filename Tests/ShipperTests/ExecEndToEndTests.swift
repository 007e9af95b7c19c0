import Foundation
import Testing
@testable import Shipper

/// `ship exec` on real hosts, as `deploy`: the command runs in `current` with the hook
/// environment, on all hosts, a role, or one host; a failing host makes the exit code 1 while the
/// others' output is complete.
@Suite("ship exec on real hosts", .tags(.endToEnd), .serialized)
struct ExecEndToEndTests {
    @Test("all hosts, a role, --once, --hosts, --runas, --lock; a host that fails: exit 1, the others' output complete")
    func exec() throws {
        let pool = try SandboxPool(hosts: 3)
        let app = try SandboxApp(pool: pool, extraEnvironment: "    ssh: { user: deploy }",
                                 hosts: ["{ host: web1, roles: [web, migrate] }", "{ host: web2, roles: [web] }", "{ host: web3, roles: [worker] }"])
        for host in pool.hosts { _ = try pool.output(host, "install -d -o deploy /srv/shop") }
        try app.repo.write("version.txt", "v1\n")
        try app.commit("v1")
        #expect(try app.ship(["deploy", "test"]).result.status == 0)

        func lines(_ events: [[String: Any]]) -> [String: [String]] {
            named(events, "exec_output").reduce(into: [:]) { $0[$1["host"] as? String ?? "", default: []].append($1["line"] as? String ?? "") }
        }
        // Several words are quoted one by one; the command sees the hook environment in current.
        let (all, allEvents) = try app.ship(["exec", "test", "--", "sh", "-c", #"echo "$SHIP_HOST $(cat version.txt) $GREETING in $(pwd)""#])
        #expect(all.status == 0, "\(all.stdout)\(all.stderr)")
        #expect(lines(allEvents) == [
            "web1": ["web1 v1 hello world in /srv/shop/current"],
            "web2": ["web2 v1 hello world in /srv/shop/current"],
            "web3": ["web3 v1 hello world in /srv/shop/current"],
        ])
        let finished = try #require(named(allEvents, "exec_finished").first)
        #expect(finished["status"] as? String == "succeeded" && finished["succeeded"] as? [String] == ["web1", "web2", "web3"])

        // One argument is a shell line.
        let (role, roleEvents) = try app.ship(["exec", "test", "--role", "web", "--", "echo $SHIP_HOST && echo second"])
        #expect(role.status == 0, "\(role.stdout)\(role.stderr)")
        #expect(lines(roleEvents) == ["web1": ["web1", "second"], "web2": ["web2", "second"]])
        let (once, onceEvents) = try app.ship(["exec", "test", "--once", "--role", "worker", "--", "echo $SHIP_HOST"])
        #expect(once.status == 0 && lines(onceEvents) == ["web3": ["web3"]], "\(once.stdout)")
        _ = try pool.output("web1", "mv /srv/shop/current /srv/shop/current.aside")
        let (onceNext, onceNextEvents) = try app.ship(["exec", "test", "--once", "--", "echo $SHIP_HOST"])
        #expect(onceNext.status == 0 && lines(onceNextEvents) == ["web2": ["web2"]], "a host without a current release is passed over: \(onceNext.stdout)")
        _ = try pool.output("web1", "mv /srv/shop/current.aside /srv/shop/current")
        let (chosen, chosenEvents) = try app.ship(["exec", "test", "--hosts", "web3,web1", "--runas", "www-data", "--", "id -un"])
        #expect(chosen.status == 0 && lines(chosenEvents) == ["web1": ["www-data"], "web3": ["www-data"]], "\(chosen.stdout)\(chosen.stderr)")

        // web2 fails: exit 1, named; web1's and web3's output is all there.
        let failing = #"for i in 1 2 3; do echo "$SHIP_HOST $i"; done; if [ "$SHIP_HOST" = web2 ]; then echo broken >&2; exit 3; fi"#
        let (failed, failedEvents) = try app.ship(["exec", "test", "--", failing])
        #expect(failed.status == 1, "\(failed.stdout)\(failed.stderr)")
        #expect(lines(failedEvents) == [
            "web1": ["web1 1", "web1 2", "web1 3"],
            "web2": ["web2 1", "web2 2", "web2 3", "broken"],
            "web3": ["web3 1", "web3 2", "web3 3"],
        ])
        let summary = try #require(named(failedEvents, "exec_finished").first)
        #expect(summary["failed"] as? [String] == ["web2"] && summary["succeeded"] as? [String] == ["web1", "web3"])
        #expect((summary["message"] as? String)?.contains("web2 (exit status 3)") == true, "\(summary)")
        #expect(named(failedEvents, "exec_host_finished").compactMap { $0["exit_status"] as? Int }.sorted() == [0, 0, 3])

        // --lock holds the environment's deploy lock (on every host) while the command runs.
        let (locked, lockedEvents) = try app.ship(["exec", "test", "--once", "--lock", "--", "cat /srv/shop/.ship/lock"])
        #expect(locked.status == 0, "\(locked.stdout)\(locked.stderr)")
        #expect(lines(lockedEvents)["web1"]?.first?.contains("\"deploymentId\":\"x") == true, "\(locked.stdout)")
        #expect(try pool.output("web3", "test -e /srv/shop/.ship/lock && echo held || echo free") == "free", "released afterwards")
        let (free, freeEvents) = try app.ship(["exec", "test", "--once", "--", "test -e /srv/shop/.ship/lock && echo held || echo free"])
        #expect(free.status == 0 && lines(freeEvents)["web1"] == ["free"], "no lock without --lock")

        // Plain output: each line prefixed with its host; mistakes are usage errors that run nothing.
        let plain = try ship(["exec", "test", "--hosts", "web2", "--", "echo plain"], in: app.repo.path,
                             environment: ["XDG_CACHE_HOME": app.repo.directory.file(".cache")])
        #expect(plain.status == 0 && plain.stdout.contains("web2 | plain"), "\(plain.stdout)")
        let unknown = try ship(["exec", "test", "--hosts", "web9", "--", "true"], in: app.repo.path)
        #expect(unknown.status == 2 && unknown.stdout.contains("web9 is not a host of test"), "\(unknown.stdout)\(unknown.stderr)")
        let noRole = try ship(["exec", "test", "--role", "cron", "--", "true"], in: app.repo.path)
        #expect(noRole.status == 2 && noRole.stdout.contains("no host of test has the role cron"), "\(noRole.stdout)")
        let noCommand = try ship(["exec", "test"], in: app.repo.path)
        #expect(noCommand.status == 2 && noCommand.stderr.contains("give the command after --"), "\(noCommand.stderr)")
    }

    @Test("ship ssh: a login shell in current on a host through ship's ssh settings; a command after -- with its exit status")
    func ssh() throws {
        let pool = try SandboxPool(hosts: 2)
        let app = try SandboxApp(pool: pool, extraEnvironment: "    ssh: { user: deploy }", hosts: ["web1", "{ host: web2, env: { GREETING: howdy } }"])
        for host in pool.hosts { _ = try pool.output(host, "install -d -o deploy /srv/shop") }
        try app.repo.write("version.txt", "v1\n")
        try app.commit("v1")
        #expect(try app.ship(["deploy", "test"]).result.status == 0)
        let command = try ship(["ssh", "test", "web2", "--", "echo \"$(id -un) $(pwd) $(cat version.txt) $SHIP_HOST $GREETING\""], in: app.repo.path)
        #expect(command.status == 0 && command.stdout.contains("deploy /srv/shop/current v1 web2 howdy"), "\(command.stdout)\(command.stderr)")
        let bare = try ship(["ssh", "web2", "--", "echo $SHIP_HOST"], in: app.repo.path)
        #expect(bare.status == 0 && bare.stdout.contains("web2"), "a host of the only environment, named alone: \(bare.stdout)\(bare.stderr)")
        let status = try ship(["ssh", "test", "--", "exit", "7"], in: app.repo.path)
        #expect(status.status == 7, "the command's exit status: \(status.stderr)")
        // A person at a terminal (script(1) gives it one): the shell starts in current, on the first host.
        let shipPath = (productsDirectory as NSString).appendingPathComponent("ship")
        let shell = try run("script", ["-qfec", "\(shipPath) ssh test", "/dev/null"], in: app.repo.path,
                            input: "echo \"at $(pwd) on $(hostname)\"; exit\n")
        #expect(shell.stdout.contains("at /srv/shop/current on web1"), "\(shell.stdout)")
        let unknown = try ship(["ssh", "test", "web9"], in: app.repo.path)
        #expect(unknown.status == 2 && unknown.stderr.contains("web9 is not a host of test"))
    }
}
