import Foundation
import Testing
@testable import Shipper

/// `ship setup` on fresh real hosts as `deploy`: the first deploy then needs no manual step, and
/// a second setup changes nothing.
@Suite("ship setup on real hosts", .tags(.endToEnd), .serialized)
struct SetupEndToEndTests {
    @Test("fresh hosts: setup, then a first deploy with no manual step; setup again reports no change; a differing file is kept unless --overwrite")
    func setup() throws {
        let pool = try SandboxPool(hosts: 2)
        for host in pool.hosts { _ = try pool.output(host, "usermod -aG www-data deploy") }
        let app = try SandboxApp(pool: pool, extraEnvironment: "    ssh: { user: deploy }", hosts: pool.hosts, sharedFiles: [".env"])
        try app.writeAppspec("""
            version: 1
            hooks:
              install:
                - run: touch public/files/written-by-$(id -un)
                  runas: www-data
              validate: [{ run: grep -q APP_KEY=abc .env }]
            """)
        try app.repo.write("index.html", "v1\n")
        try app.commit("v1")
        let shared = try TemporaryDirectory()
        try shared.write(".env", "APP_KEY=abc\n")
        try shared.write("config/extra.ini", "x=1\n")
        chmod(shared.file(".env"), 0o644)
        chmod(shared.file("config/extra.ini"), 0o640)

        // deploy_to is root's on web2: setup says so with the fix (exit 5); web1 is set up.
        _ = try pool.output("web2", "install -d -o root -m 755 /srv/shop")
        let refused = try ship(["setup", "test", "--shared-from", shared.path], in: app.repo.path)
        #expect(refused.status == 5, "\(refused.stdout)\(refused.stderr)")
        #expect(refused.stdout.contains("web2: FAILED: ") && refused.stderr.contains("/srv/shop"), "\(refused.stdout)\(refused.stderr)")
        _ = try pool.output("web2", "chown deploy /srv/shop")
        _ = try pool.output("web1", "rm -rf /srv/shop")

        let first = try ship(["setup", "test", "--shared-from", shared.path], in: app.repo.path)
        #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
        for line in ["web1: installed /srv/shop/.ship/bin/ship-agent", "web1: created /srv/shop/releases",
                     "web1: created /srv/shop/shared/public/files", "web1: group www-data on /srv/shop/shared/public/files",
                     "web1: mode 2775 on /srv/shop/shared/public/files", "web2: uploaded /srv/shop/shared/.env (mode 600)",
                     "web2: uploaded /srv/shop/shared/config/extra.ini (mode 640)"] {
            #expect(first.stdout.contains(line + "\n"), "\(line)\n\(first.stdout)")
        }
        #expect(try pool.output("web2", "stat -c '%a %U:%G' /srv/shop/shared/.env /srv/shop/shared/public/files")
                == "600 deploy:deploy\n2775 deploy:www-data")
        func snapshot() throws -> [String] {
            try pool.hosts.map { try pool.output($0, "find /srv/shop -printf '%p %y %s %T@ %C@ %m %u:%g\\n' | sort") }
        }
        let before = try snapshot()
        let (again, events) = try app.ship(["setup", "test", "--shared-from", shared.path])
        #expect(again.status == 0)
        #expect(named(events, "host_setup").map { $0["status"] as? String } == ["unchanged", "unchanged"], "\(again.stdout)")
        #expect(try snapshot() == before, "the second setup changed nothing")

        // The first deploy: no manual step. The web user writes in the shared directory; .env is there.
        let (deploy, _) = try app.ship(["deploy", "test"])
        #expect(deploy.status == 0, "\(deploy.stdout)\(deploy.stderr)")
        #expect(try pool.output("web1", "ls /srv/shop/shared/public/files") == "written-by-www-data")

        // A file changed locally is not pushed over the host's unless asked.
        try shared.write(".env", "APP_KEY=new\n")
        let kept = try ship(["setup", "test", "--shared-from", shared.path], in: app.repo.path)
        #expect(kept.status == 0 && kept.stdout.contains("web1: warning: /srv/shop/shared/.env differs from the file given: left as it is"), "\(kept.stdout)")
        #expect(try pool.output("web1", "cat /srv/shop/shared/.env") == "APP_KEY=abc")
        let replaced = try ship(["setup", "test", "--shared-from", shared.path, "--overwrite"], in: app.repo.path)
        #expect(replaced.status == 0 && replaced.stdout.contains("web1: replaced /srv/shop/shared/.env (mode 600)"), "\(replaced.stdout)")
        #expect(try pool.output("web2", "cat /srv/shop/shared/.env") == "APP_KEY=new")
    }
}
