import Foundation
import Testing
@testable import Shipper

/// `build:` on real hosts: the commands run once per revision on the controller, in a clean
/// export; what they produce is on every host and never in Git; a second deployment of the same
/// revision builds nothing; a failing build touches no host.
@Suite("build step on real hosts", .tags(.endToEnd), .serialized)
struct BuildEndToEndTests {
    @Test("built once on the controller, on every host, not in Git; reused from the bundle and the build cache; excluded paths left out; a failure touches no host")
    func build() throws {
        let pool = try SandboxPool(hosts: 2)
        for host in pool.hosts { _ = try pool.output(host, "install -d -o deploy /srv/shop") }
        let app = try SandboxApp(pool: pool, extraEnvironment: "    ssh: { user: deploy }\n    batch: 100%", hosts: pool.hosts)
        let yml = try String(contentsOfFile: app.repo.directory.file("ship.yml"), encoding: .utf8)
        func setBuild(_ commands: [String]) throws {
            try app.repo.write("ship.yml", yml + "\nbuild:\n  commands:\n" + commands.map { "    - '\($0)'\n" }.joined() + "  exclude: [.cache]\n")
        }
        try setBuild([
            "test ! -e .git && mkdir -p vendor/lib .cache && echo \"autoload $(cat version.txt)\" > vendor/autoload.php",
            "date +%s%N > vendor/stamp && echo cache > .cache/x && ln -s lib vendor/link && echo compiled >> assets/app.css && echo \"built $(cat version.txt)\"",
        ])
        try app.repo.write("version.txt", "v1\n")
        try app.repo.write("assets/app.css", "body {}\n")
        try app.repo.write(".gitignore", "vendor/\n")
        try app.commit("v1")

        let (first, events) = try app.ship(["deploy", "test"])
        #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
        let output = named(events, "hook_output").filter { $0["host"] as? String == "build" }.compactMap { $0["line"] as? String }
        #expect(output == ["built v1"], "the build's output, once: \(output)")
        for host in pool.hosts {
            #expect(try pool.output(host, "cd /srv/shop/current && cat vendor/autoload.php assets/app.css && readlink vendor/link && test ! -e .cache && echo no-cache")
                    == "autoload v1\nbody {}\ncompiled\nlib\nno-cache")
        }
        #expect(try app.repo.git(["ls-files", "vendor"]).isEmpty, "nothing built is in Git")
        #expect(!FileManager.default.fileExists(atPath: app.repo.directory.file("vendor")), "the work tree is untouched")
        let stamp = try pool.output("web1", "cat /srv/shop/current/vendor/stamp")
        #expect(try pool.output("web2", "cat /srv/shop/current/vendor/stamp") == stamp, "one build for every host")

        // The same revision again: its bundle is in the cache, nothing is built.
        let (again, againEvents) = try app.ship(["deploy", "test"])
        #expect(again.status == 0, "\(again.stdout)\(again.stderr)")
        #expect(!named(againEvents, "host_step").contains { ($0["step"] as? String)?.hasPrefix("build") == true })
        #expect(try pool.output("web2", "cat /srv/shop/current/vendor/stamp") == stamp)
        // Without the bundle (another compression, say), the build itself is reused.
        for file in try FileManager.default.contentsOfDirectory(atPath: app.repo.directory.file(".cache/ship/bundles")) {
            try FileManager.default.removeItem(atPath: app.repo.directory.file(".cache/ship/bundles/" + file))
        }
        let (reused, reusedEvents) = try app.ship(["deploy", "test"])
        #expect(reused.status == 0, "\(reused.stdout)\(reused.stderr)")
        #expect(named(reusedEvents, "host_step").contains { ($0["step"] as? String)?.hasSuffix("reused from the build cache") == true })
        #expect(try pool.output("web1", "cat /srv/shop/current/vendor/stamp") == stamp)

        // A failing build: its output and the command said, exit 1, no host touched.
        let current = try pool.output("web1", "readlink /srv/shop/current")
        try setBuild(["echo \"cannot fetch the dependencies\"; exit 3"])
        try app.repo.write("version.txt", "v2\n")
        try app.commit("v2 breaks the build")
        let (failed, failedEvents) = try app.ship(["deploy", "test"])
        #expect(failed.status == 1, "\(failed.stdout)\(failed.stderr)")
        #expect(named(failedEvents, "hook_output").contains { $0["line"] as? String == "cannot fetch the dependencies" })
        #expect(failed.stdout.contains("the build failed: `echo \\\"cannot fetch the dependencies\\\"; exit 3` exited 3; no host was touched"), "\(failed.stdout)")
        #expect(named(failedEvents, "deployment_started").isEmpty)
        #expect(try pool.output("web1", "readlink /srv/shop/current") == current)
    }
    @Test("a composer project: vendor/ built once on the controller by Debian's composer from a local path package, offline; on every host, not in Git; the same revision again builds nothing")
    func composer() throws {
        let pool = try SandboxPool(hosts: 2)
        for host in pool.hosts { _ = try pool.output(host, "install -d -o deploy /srv/shop") }
        let app = try SandboxApp(pool: pool, extraEnvironment: "    ssh: { user: deploy }\n    batch: 100%", hosts: pool.hosts)
        // The dependency: a package in a local directory, so composer needs no network.
        let library = try TemporaryDirectory("hello-lib")
        try library.write("composer.json", #"{ "name": "shop/hello", "version": "1.2.0", "autoload": { "psr-4": { "Hello\\": "src/" } } }"#)
        try library.write("src/Greeter.php", "<?php\nnamespace Hello;\nclass Greeter { public static function hi() { return 'hi'; } }\n")
        let home = try TemporaryDirectory("composer-home")
        try app.repo.write("composer.json", """
            {
              "name": "shop/app",
              "repositories": [{ "packagist.org": false }, { "type": "path", "url": "\(library.path)", "options": { "symlink": false } }],
              "require": { "shop/hello": "^1.2" }
            }
            """)
        try app.repo.write(".gitignore", "vendor/\n")
        try app.repo.write("index.php", "<?php require __DIR__ . '/vendor/autoload.php'; echo Hello\\Greeter::hi();\n")
        let yml = try String(contentsOfFile: app.repo.directory.file("ship.yml"), encoding: .utf8)
        try app.repo.write("ship.yml", yml + "\nbuild:\n  - COMPOSER_HOME=\(home.path) composer install --no-dev --no-interaction --no-progress --optimize-autoloader\n")
        try app.commit("composer app")
        let (first, events) = try app.ship(["deploy", "test"])
        #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
        let output = named(events, "hook_output").filter { $0["host"] as? String == "build" }.compactMap { $0["line"] as? String }
        #expect(output.contains { $0.contains("Installing shop/hello (1.2.0)") }, "\(output)")
        for host in pool.hosts {
            #expect(try pool.output(host, "cd /srv/shop/current && cat vendor/shop/hello/src/Greeter.php | tail -n 1 && test -f vendor/autoload.php && echo autoload")
                    == "class Greeter { public static function hi() { return 'hi'; } }\nautoload")
        }
        #expect(try app.repo.git(["ls-files", "vendor"]).isEmpty && !FileManager.default.fileExists(atPath: app.repo.directory.file("vendor")))
        // PHP on the controller runs the bundle's code as the hosts have it.
        let bundle = try #require(try FileManager.default.contentsOfDirectory(atPath: app.repo.directory.file(".cache/ship/bundles"))
            .first { $0.hasSuffix(".tar.gz") })
        let unpacked = try TemporaryDirectory("unpacked")
        _ = try run("tar", ["-xzf", app.repo.directory.file(".cache/ship/bundles/" + bundle), "-C", unpacked.path])
        let php = try run("php", [unpacked.file("index.php")])
        #expect(php.stdout == "hi\n", "\(php.stdout)\(php.stderr)")

        let (again, againEvents) = try app.ship(["deploy", "test"])
        #expect(again.status == 0, "\(again.stdout)\(again.stderr)")
        #expect(!named(againEvents, "hook_output").contains { $0["host"] as? String == "build" }, "the same revision: no composer run")
    }
}
