import Foundation
import Synchronization
import Testing
@testable import Shipper

/// ship installed as users install it (PREFIX/bin/ship, PREFIX/libexec/ship/ship-agent): the
/// prefix scripts/test.sh made with scripts/install.sh (SHIP_TEST_PREFIX), else the same layout
/// made from this build's `ship` and static agent.
final class InstalledShip {
    let prefix: String
    private let owned: TemporaryDirectory?

    init() throws {
        if let prefix = ProcessInfo.processInfo.environment["SHIP_TEST_PREFIX"], !prefix.isEmpty {
            self.prefix = prefix
            owned = nil
            return
        }
        let directory = try TemporaryDirectory("ship-prefix")
        try FileManager.default.createDirectory(atPath: directory.file("bin"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: directory.file("libexec/ship"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: productsDirectory + "/ship", toPath: directory.file("bin/ship"))
        try FileManager.default.copyItem(atPath: staticAgentPath, toPath: directory.file("libexec/ship/ship-agent"))
        prefix = directory.path
        owned = directory
    }

    /// Runs `ship ARGS` the way a user types it: found on PATH by the shell (argv[0] is `ship`),
    /// from `directory`, with no SHIP_AGENT set.
    func ship(_ arguments: [String], in directory: String, environment: [String: String] = [:]) throws -> ProcessResult {
        let line = (["ship"] + arguments).map(ShellQuote.quote).joined(separator: " ")
        var env = environment
        env["PATH"] = prefix + "/bin:/usr/bin:/bin"
        env["SHIP_AGENT"] = ""
        return try run("/bin/sh", ["-c", line], in: directory, environment: env)
    }
}

/// Every process's command line on this machine, read over and over while `body` runs: the
/// sandbox hosts' PID namespaces are inside this one, so this sees what `ps` on each host sees.
final class CommandLineWatch: @unchecked Sendable {
    private let seen = Mutex<Set<String>>([])
    private let stop = Atomic<Bool>(false)

    func watch<T>(_ body: () throws -> T) rethrows -> T {
        let thread = Thread { [self] in
            while !stop.load(ordering: .relaxed) {
                let pids = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
                var lines: Set<String> = []
                for pid in pids where pid.allSatisfy(\.isNumber) {
                    guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline"), !data.isEmpty else { continue }
                    lines.insert(String(decoding: data.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self))
                }
                seen.withLock { $0.formUnion(lines) }
            }
        }
        thread.start()
        defer { stop.store(true, ordering: .relaxed) }
        return try body()
    }

    var commandLines: Set<String> { seen.withLock { $0 } }
}

@Suite("real servers: installed from PATH, static agent, Debian 11 and 12 hosts, non-root deploys", .tags(.endToEnd), .serialized)
struct RealServerEndToEndTests {
    @Test("installed on PATH: deploys as deploy to Debian 12 and 11 hosts without Swift, runas www-data through sudo, no env value on any command line; ship hook install deploys on push")
    func installedNonRootDeploy() throws {
        let pool = try SandboxPool(hosts: 2, os: ["bookworm", "bullseye"])
        let installed = try InstalledShip()
        let token = "tok-\(UUID().uuidString.prefix(12))"
        let app = try TestRepository()
        try app.write("ship.yml", """
            app: shop
            deploy_to: /srv/shop
            ssh: { config_file: \(pool.sshConfig), user: deploy }
            shared: { dirs: [var] }
            environments:
              prod:
                hosts: [web1, { host: web2, env: { HOST_NOTE: "on web2" } }]
                batch: 2
                deploy_on_push: main
                env: { API_TOKEN: "\(token)" }

            """)
        try app.write("appspec.yml", """
            version: 1
            hooks:
              install:
                - run: 'echo "$(id -un) $HOME" > $SHIP_DEPLOY_TO/shared/www/$SHIP_RELEASE && printf %s "$API_TOKEN" > $SHIP_DEPLOY_TO/shared/www/token && sleep 1'
                  runas: www-data
              start:
                - run: 'id -un > $SHIP_DEPLOY_TO/shared/var/started-by; echo "note=$HOST_NOTE" >> $SHIP_DEPLOY_TO/shared/var/started-by'

            """)
        let first = try app.commitAll("v1")
        // As an administrator prepares a server: deploy_to owned by deploy, one directory for the
        // web user.
        for host in pool.hosts {
            _ = try pool.output(host, "install -d -o deploy -g deploy /srv/shop /srv/shop/shared && install -d -o www-data /srv/shop/shared/www")
        }
        let cache = ["XDG_CACHE_HOME": app.directory.file(".cache")]

        // No Swift and no Swift runtime on either host; their own C libraries.
        for host in pool.hosts {
            #expect(try pool.ssh(host, "command -v swift || ls /usr/lib/swift /opt/swift || ldconfig -p | grep -i swift").status != 0)
        }
        #expect(try pool.output("web1", "ldd --version | head -1").hasSuffix("2.36"))
        #expect(try pool.output("web2", "ldd --version | head -1").hasSuffix("2.31"))

        let watch = CommandLineWatch()
        let deploy = try watch.watch { try installed.ship(["deploy", "prod"], in: app.path, environment: cache) }
        #expect(deploy.status == 0, "\(deploy.stdout)\n\(deploy.stderr)")
        let lines = watch.commandLines
        #expect(lines.contains { $0.contains("sudo -n -u www-data -- /srv/shop/.ship/bin/ship-agent exec-hook") },
                "the watch saw the hooks run (so it would have seen a leak)")
        #expect(!lines.contains { $0.contains(token) }, "the env: value never appears on a command line")

        for host in pool.hosts {
            #expect(try pool.output(host, "cat /srv/shop/current/REVISION") == first)
            let written = "/srv/shop/shared/www/$(basename $(readlink /srv/shop/current))"
            #expect(try pool.output(host, "cat \(written)") == "www-data /var/www", "www-data's own HOME")
            #expect(try pool.output(host, "stat -c %U \(written)") == "www-data")
            #expect(try pool.output(host, "cat /srv/shop/shared/www/token") == token, "the hook got the env: value")
            #expect(try pool.output(host, "stat -c %U /srv/shop/releases /srv/shop/.ship/bin/ship-agent") == "deploy\ndeploy")
            #expect(try pool.output(host, "/srv/shop/.ship/bin/ship-agent --version").contains("static"))
        }
        #expect(try pool.output("web1", "cat /srv/shop/shared/var/started-by") == "deploy\nnote=")
        #expect(try pool.output("web2", "cat /srv/shop/shared/var/started-by") == "deploy\nnote=on web2")

        // ship check --hosts runs the agent on each host and says its version and platform.
        let check = try installed.ship(["check", "--hosts"], in: app.path)
        #expect(check.status == 0, "\(check.stdout)\n\(check.stderr)")
        #expect(check.stdout.contains("prod web2: reachable, Linux x86_64, ship-agent \(ShipperVersion.current)"))

        // ship hook install from PATH writes the installed ship's absolute path; a push deploys.
        let bare = try TemporaryDirectory("ship-bare")
        let gitDir = bare.file("shop.git")
        _ = try run("git", ["init", "-q", "--bare", "-b", "main", gitDir])
        let hook = try installed.ship(["hook", "install", gitDir], in: bare.path)
        #expect(hook.status == 0, "\(hook.stderr)")
        let script = try String(contentsOfFile: gitDir + "/hooks/post-receive", encoding: .utf8)
        #expect(script.contains("exec \(installed.prefix)/bin/ship hook post-receive"))
        try app.write("index.html", "v2\n")
        let second = try app.commitAll("v2")
        try app.git(["remote", "add", "origin", gitDir])
        // The pusher's PATH does not have ship: the hook calls it by its absolute path.
        let push = try run("git", ["push", "-q", "origin", "main"], in: app.path,
                           environment: cache.merging(["PATH": "/usr/bin:/bin", "SHIP_AGENT": ""]) { $1 })
        #expect(push.status == 0, "\(push.stderr)")
        #expect(push.stderr.contains("succeeded"), "\(push.stderr)")
        for host in pool.hosts {
            #expect(try pool.output(host, "cat /srv/shop/current/REVISION") == second)
        }
    }

    @Test("a host without Swift cannot run a dynamically linked agent, and ship refuses to install one")
    func dynamicAgentRefused() throws {
        let pool = try SandboxPool(hosts: 1, os: ["bullseye"])
        let dynamic = productsDirectory + "/ship-agent"
        // What the old build shipped: on a real host it cannot even start.
        let copy = try run("/bin/sh", ["-c", "ssh -F \(ShellQuote.quote(pool.sshConfig)) web1 'cat > /tmp/agent && chmod 755 /tmp/agent && /tmp/agent --version' < \(ShellQuote.quote(dynamic))"])
        #expect(copy.status == 127 && copy.stderr.contains("libswift"), "\(copy.stderr)")
        let app = try SandboxApp(pool: pool)
        try app.writeAppspec("version: 1\n")
        try app.commit("v1")
        let (deploy, _) = try app.ship(["deploy", "test"], environment: ["SHIP_AGENT": dynamic])
        #expect(deploy.status == 5)
        #expect(deploy.stderr.contains("is dynamically linked: it would need the Swift runtime on every host"), "\(deploy.stderr)")
        #expect(try pool.ssh("web1", "test -e /srv/shop").status == 1, "nothing was installed")
    }

    @Test("an aarch64 host fails the preflight naming its platform and where an agent for it goes; nothing changes")
    func foreignArchitecture() throws {
        let pool = try SandboxPool(hosts: 2)
        // web2 reports aarch64, as `uname -m` on an ARM server would.
        _ = try pool.output("web2", #"printf '#!/bin/sh\n/bin/uname "$@" | sed s/x86_64/aarch64/\n' > /usr/local/bin/uname && chmod 755 /usr/local/bin/uname"#)
        #expect(try pool.output("web2", "uname -sm") == "Linux aarch64")
        let installed = try InstalledShip()
        let app = try SandboxApp(pool: pool)
        try app.writeAppspec("version: 1\n")
        try app.commit("v1")
        let deploy = try installed.ship(["deploy", "test"], in: app.repo.path,
                                        environment: ["XDG_CACHE_HOME": app.repo.directory.file(".cache")])
        #expect(deploy.status == 5, "\(deploy.stderr)")
        #expect(deploy.stdout.contains("web2: platform: Linux aarch64: this ship has an agent for x86_64 only"), "\(deploy.stdout)")
        #expect(deploy.stderr.contains("\(installed.prefix)/libexec/ship/linux-aarch64/ship-agent"), "\(deploy.stderr)")
        for host in pool.hosts {
            #expect(try pool.ssh(host, "test -e /srv/shop").status == 1, "nothing was created on \(host)")
        }
    }

    @Test("runas preflight: a missing user, or sudo wanting a password, exits 5 with the sudoers line; no release changes")
    func runasPreflight() throws {
        let pool = try SandboxPool(hosts: 1, os: ["bullseye"])
        let installed = try InstalledShip()
        let app = try SandboxApp(pool: pool, extraEnvironment: "    ssh: { user: deploy }")
        let cache = ["XDG_CACHE_HOME": app.repo.directory.file(".cache")]

        try app.writeAppspec("version: 1\nhooks:\n  install: [{ run: 'true', runas: ghost }]\n")
        try app.commit("ghost")
        let missing = try installed.ship(["deploy", "test"], in: app.repo.path, environment: cache)
        #expect(missing.status == 5, "\(missing.stderr)")
        #expect(missing.stdout.contains("runas user 'ghost' does not exist on this host"), "\(missing.stdout)")

        // `nobody` exists, but the sandbox's sudoers line allows www-data only.
        try app.writeAppspec("version: 1\nhooks:\n  install: [{ run: 'true', runas: nobody }]\n")
        try app.commit("nobody")
        let password = try installed.ship(["deploy", "test"], in: app.repo.path, environment: cache)
        #expect(password.status == 5, "\(password.stderr)")
        #expect(password.stdout.contains("deploy cannot run hooks as nobody through sudo without a password"), "\(password.stdout)")
        #expect(password.stderr.contains("deploy ALL=(nobody) NOPASSWD: /srv/shop/.ship/bin/ship-agent exec-hook"), "\(password.stderr)")
        #expect(try pool.ssh("web1", "test -e /srv/shop/releases || test -e /srv/shop/current").status == 1, "no release was made")

        // With the line the hint gives, the same deployment goes through.
        _ = try pool.output("web1", "echo 'deploy ALL=(nobody) NOPASSWD: /srv/shop/.ship/bin/ship-agent exec-hook' > /etc/sudoers.d/nobody")
        let fixed = try installed.ship(["deploy", "test"], in: app.repo.path, environment: cache)
        #expect(fixed.status == 0, "\(fixed.stderr)")
    }

    @Test("staging and prod on one host under different deploy_to, each with its own keep_releases")
    func environmentsShareAHost() throws {
        let pool = try SandboxPool(hosts: 1)
        let app = try TestRepository()
        try app.write("ship.yml", """
            app: shop
            ssh: { config_file: \(pool.sshConfig), user: deploy }
            environments:
              staging:
                deploy_to: /srv/shop-staging
                keep_releases: 1
                hosts: [web1]
                env: { APP_ENV: staging }
              prod:
                deploy_to: /srv/shop
                hosts: [web1]
                env: { APP_ENV: prod }

            """)
        try app.write("appspec.yml", "version: 1\nhooks:\n  start: [{ run: 'echo $APP_ENV > app-env' }]\n")
        let commit = try app.commitAll("v1")
        let cache = ["XDG_CACHE_HOME": app.directory.file(".cache")]
        for environment in ["staging", "prod", "staging", "staging"] {
            let deploy = try ship(["deploy", environment], in: app.path, environment: cache)
            #expect(deploy.status == 0, "\(environment): \(deploy.stderr)")
        }
        #expect(try pool.output("web1", "cat /srv/shop-staging/current/app-env /srv/shop/current/app-env") == "staging\nprod")
        #expect(try pool.output("web1", "cat /srv/shop-staging/current/REVISION") == commit)
        // keep_releases 1: current and the release a rollback returns to, never a third.
        #expect(try pool.output("web1", "ls /srv/shop-staging/releases | wc -l") == "2", "staging keeps its own count")
        #expect(try pool.output("web1", "ls /srv/shop/releases | wc -l") == "1")
        let status = try ship(["status", "prod", "--json"], in: app.path, environment: cache)
        #expect(status.status == 0 && status.stdout.contains(commit))
    }
}
