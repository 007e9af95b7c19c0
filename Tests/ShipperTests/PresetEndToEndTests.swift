import Foundation
import Testing
@testable import Shipper

/// The Drupal and Laravel presets' hook scripts on real hosts, with recording stand-ins for
/// `drush` and `php` on PATH (no Drupal or Laravel codebase is available here): the commands,
/// their order, and maintenance mode always turned off again when a migrate fails.
@Suite("presets on real hosts", .tags(.endToEnd), .serialized)
struct PresetEndToEndTests {
    /// A stand-in that records its arguments, answers `status` as Drupal does, and fails the
    /// migration step while /tmp/fail exists.
    static let standIn = """
        #!/bin/sh
        echo "$(basename "$0") $*" >> /tmp/calls.log
        case "$*" in
          *status*) echo Successful ;;
          *" deploy"|*"migrate --force") [ -e /tmp/fail ] && { echo "the migration failed" >&2; exit 1; } ;;
        esac
        exit 0
        """

    func deploy(preset: String) throws -> (SandboxPool, SandboxApp) {
        let pool = try SandboxPool(hosts: 2)
        for host in pool.hosts {
            _ = try pool.output(host, """
                install -d -o deploy /srv/shop && cat > /usr/local/bin/\(preset == "drupal" ? "drush" : "php") <<'EOF'
                \(Self.standIn)
                EOF
                chmod 755 /usr/local/bin/* && touch /tmp/calls.log && chmod 666 /tmp/calls.log
                """)
        }
        let app = try SandboxApp(pool: pool, extraEnvironment: "    ssh: { user: deploy }",
                                 hosts: ["{ host: web1, roles: [migrate] }", "{ host: web2, roles: [worker] }"])
        let yml = try String(contentsOfFile: app.repo.directory.file("ship.yml"), encoding: .utf8)
        let initialized = try ship(["init", "--preset", preset, "--force"], in: app.repo.path)
        #expect(initialized.status == 0, "\(initialized.stderr)")
        try app.repo.write("ship.yml", yml) // the sandbox's hosts, not the example's
        try app.commit("\(preset) preset")
        return (pool, app)
    }

    func calls(_ pool: SandboxPool, _ host: String) throws -> [String] {
        try pool.output(host, "cat /tmp/calls.log; : > /tmp/calls.log").split(separator: "\n").map(String.init)
    }

    @Test("Drupal: maintenance mode on, drush deploy, off again and caches rebuilt once; drush cr on each host after the switch; off again when deploy fails")
    func drupal() throws {
        let (pool, app) = try deploy(preset: "drupal")
        let (first, _) = try app.ship(["deploy", "test"])
        #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
        #expect(try calls(pool, "web1") == [
            "drush --yes state:set system.maintenance_mode 1 --input-format=integer",
            "drush --yes deploy",
            "drush --yes state:set system.maintenance_mode 0 --input-format=integer",
            "drush --yes cache:rebuild",
            "drush --yes cache:rebuild",
            "drush status --field=bootstrap",
        ])
        #expect(try calls(pool, "web2") == ["drush --yes cache:rebuild", "drush status --field=bootstrap"], "migrate ran once, on web1")

        _ = try pool.output("web1", "touch /tmp/fail")
        try app.repo.write("index.html", "v2\n")
        try app.commit("v2")
        let current = try pool.output("web1", "readlink /srv/shop/current")
        let (failed, _) = try app.ship(["deploy", "test"])
        #expect(failed.status == 1, "\(failed.stdout)\(failed.stderr)")
        let failedCalls = try calls(pool, "web1")
        #expect(failedCalls == [
            "drush --yes state:set system.maintenance_mode 1 --input-format=integer",
            "drush --yes deploy",
            "drush --yes state:set system.maintenance_mode 0 --input-format=integer",
            "drush --yes cache:rebuild",
            "drush status --field=bootstrap",
        ], "maintenance mode off again after the failed deploy (then the release web1 keeps is validated again): \(failedCalls)")
        #expect(try pool.output("web1", "readlink /srv/shop/current") == current, "nothing switched")
    }

    @Test("Laravel: artisan down, migrate --force, up once; caches on each host after the switch, queue:restart on workers; up again when migrate fails")
    func laravel() throws {
        let (pool, app) = try deploy(preset: "laravel")
        let (first, _) = try app.ship(["deploy", "test"])
        #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
        let caches = ["php artisan config:cache", "php artisan route:cache", "php artisan view:cache"]
        #expect(try calls(pool, "web1") == ["php artisan down --retry=15", "php artisan migrate --force", "php artisan up"] + caches)
        #expect(try calls(pool, "web2") == caches + ["php artisan queue:restart"], "the worker restarts its queue")

        _ = try pool.output("web1", "touch /tmp/fail")
        try app.repo.write("index.html", "v2\n")
        try app.commit("v2")
        let (failed, _) = try app.ship(["deploy", "test"])
        #expect(failed.status == 1, "\(failed.stdout)\(failed.stderr)")
        #expect(try calls(pool, "web1") == ["php artisan down --retry=15", "php artisan migrate --force", "php artisan up"], "up again")
    }
}
