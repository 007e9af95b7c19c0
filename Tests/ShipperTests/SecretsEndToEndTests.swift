import Foundation
import Hooks
import Testing
@testable import Shipper

@Suite("secrets")
struct SecretsTests {
    @Test("secrets_command's NAME=value lines: export, quotes, comments; masks hide each value and each line of a multi-line one")
    func parseAndMask() {
        let parsed = Secrets.parse(["# from pass", "export A=one", "B=\"two words\"", "C='x=y'", "", "not a line", "bad-name=1", "D="])
        #expect(parsed == ["A": "one", "B": "two words", "C": "x=y", "D": ""])
        let mask = SecretMask(values: ["hunter2", "-----BEGIN KEY-----\nabcdefgh\n-----END KEY-----", ""])
        #expect(mask.apply("pw=hunter2 and hunter2") == "pw=*** and ***")
        #expect(mask.apply("line: abcdefgh") == "line: ***", "a line of a multi-line value is hidden on its own")
        #expect(SecretMask(values: [""]).isEmpty)
    }
}

/// Secrets reaching hooks and `ship exec` on a real host, as `deploy` and through sudo as
/// www-data, while nothing ship prints or the host keeps ever holds a value.
@Suite("secrets on real hosts", .tags(.endToEnd), .serialized)
struct SecretsEndToEndTests {
    static let token = "tok-7f3e9a51c2"
    static let password = "pw-from-command-4b8d"

    @Test("from ship's environment and from secrets_command to hooks and exec; never on a command line, in output, journal or hook logs; a missing one fails the preflight")
    func secrets() throws {
        let pool = try SandboxPool(hosts: 1)
        _ = try pool.output("web1", "install -d -o deploy /srv/shop")
        let secretsFile = try TemporaryDirectory()
        try secretsFile.write("prod.env", "# from the password manager\nDB_PASSWORD=\(Self.password)\n")
        let app = try SandboxApp(pool: pool, extraEnvironment: """
                ssh: { user: deploy }
                secrets: [API_TOKEN, DB_PASSWORD]
                secrets_command: cat \(secretsFile.file("prod.env"))
            """, hosts: pool.hosts)
        try app.writeAppspec("""
            version: 1
            hooks:
              install:
                - run: echo "token=$API_TOKEN db=$DB_PASSWORD"; printf '%s %s' "$API_TOKEN" "$DB_PASSWORD" > "$SHIP_DEPLOY_TO/arrived"; sleep 1
                - run: echo "as $(id -un) $DB_PASSWORD"; sleep 1
                  runas: www-data
            """)
        try app.repo.write("index.html", "v1\n")
        try app.commit("v1")
        // Every command line on the host, sampled until the deploy is over.
        _ = try pool.output("web1", """
            nohup sh -c 'while [ ! -e /tmp/stop-ps ]; do for p in /proc/[0-9]*; do tr "\\000" " " < $p/cmdline 2>/dev/null; echo; done >> /tmp/ps.log; done' >/dev/null 2>&1 &
            """)
        let environment = ["API_TOKEN": Self.token]
        let (deploy, events) = try app.ship(["deploy", "test"], environment: environment)
        _ = try pool.output("web1", "touch /tmp/stop-ps")
        #expect(deploy.status == 0, "\(deploy.stdout)\(deploy.stderr)")
        #expect(try pool.output("web1", "cat /srv/shop/arrived") == "\(Self.token) \(Self.password)", "both reached the hook")
        let lines = named(events, "hook_output").compactMap { $0["line"] as? String }
        #expect(lines.contains("token=*** db=***") && lines.contains("as www-data ***"), "\(lines)")

        let exec = try ship(["exec", "test", "--", "echo \"exec $API_TOKEN\""], in: app.repo.path,
                            environment: environment.merging(["XDG_CACHE_HOME": app.repo.directory.file(".cache")]) { $1 })
        #expect(exec.status == 0 && exec.stdout.contains("web1 | exec ***"), "\(exec.stdout)\(exec.stderr)")

        // On a terminal (the live view of a deployment whose hooks print them): the same.
        let shipPath = (productsDirectory as NSString).appendingPathComponent("ship")
        let terminal = try run("script", ["-qfec", "\(shipPath) deploy test", "/dev/null"], in: app.repo.path,
                               environment: environment.merging(["XDG_CACHE_HOME": app.repo.directory.file(".cache"), "TERM": "xterm", "CI": "false"]) { $1 })
        #expect(terminal.status == 0 && terminal.stdout.contains("plan: deploy"), "the live view of a deployment: \(terminal.stdout)")

        let kept = try pool.output("web1", "cat /srv/shop/.ship/journal.jsonl /srv/shop/.ship/logs/* /tmp/ps.log; ls /srv/shop/.ship/logs")
        #expect(kept.contains("sleep 1"), "the ps log holds the hooks' command lines")
        for value in [Self.token, Self.password] {
            #expect(!deploy.stdout.contains(value) && !deploy.stderr.contains(value), "ship's output holds no value")
            #expect(!exec.stdout.contains(value) && !exec.stderr.contains(value))
            #expect(!terminal.stdout.contains(value))
            #expect(!kept.contains(value), "no journal, hook log or command line on the host holds \(value)")
        }

        // A secret that cannot be had: exit 5 before any host, naming it and not the other's value.
        let missing = try ship(["deploy", "test"], in: app.repo.path)
        #expect(missing.status == 5, "\(missing.stdout)\(missing.stderr)")
        #expect(missing.stderr.contains("secret API_TOKEN is not set"), "\(missing.stderr)")
        #expect(!missing.stderr.contains(Self.password))
        try secretsFile.write("prod.env", "echo nothing\n")
        let (failing, _) = try app.ship(["exec", "test", "--", "true"], environment: ["API_TOKEN": Self.token])
        #expect(failing.status == 5 && failing.stderr.contains("secret DB_PASSWORD is not set"), "\(failing.stderr)")
    }
}
