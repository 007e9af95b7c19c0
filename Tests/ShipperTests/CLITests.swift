import Foundation
import Testing
@testable import Shipper

/// The `ship` executable as users run it: output, exit codes, and no crash on bad input.
@Suite("ship CLI")
struct CLITests {
    @Test("ship init writes files that ship check accepts, and refuses to overwrite them")
    func initThenCheck() throws {
        let dir = try TemporaryDirectory("my-shop")
        let initResult = try ship(["init"], in: dir.path)
        #expect(initResult.status == 0, "\(initResult.stderr)")
        #expect(FileManager.default.fileExists(atPath: dir.file("ship.yml")))
        #expect(FileManager.default.fileExists(atPath: dir.file("appspec.yml")))
        let check = try ship(["check"], in: dir.path)
        #expect(check.status == 0, "\(check.stderr)")
        #expect(check.stdout.contains("ship.yml: ok"))
        #expect(check.stdout.contains("appspec.yml: ok (version 1"))

        let again = try ship(["init"], in: dir.path)
        #expect(again.status == 2)
        #expect(again.stderr.contains("already exist"))
        #expect(again.stderr.contains("hint: "))
    }

    @Test("ship config shows the environment as resolved: overrides applied, a host's env over the environment's, secrets by name only")
    func config() throws {
        let dir = try TemporaryDirectory()
        try dir.write("ship.yml", """
            app: shop
            deploy_to: /srv/shop
            ssh: { user: deploy, port: 2222 }
            environments:
              staging:
                hosts: [s1]
              prod:
                deploy_to: /srv/shop-prod
                ssh: { user: admin }
                env: { APP_ENV: prod, GREETING: hello }
                secrets: [API_TOKEN]
                hosts:
                  - web1
                  - { host: web2, roles: [migrate], env: { APP_ENV: canary }, ssh: { user: root } }
            """)
        let text = try ship(["config", "prod"], in: dir.path, environment: ["API_TOKEN": "do-not-print-me"])
        #expect(text.status == 0, "\(text.stderr)")
        #expect(text.stdout.contains("deploy_to: /srv/shop-prod\n"))
        #expect(text.stdout.contains("ssh:\n  user: admin\n  port: 2222\n"), "the environment's user over the top level's, the top level's port kept")
        #expect(text.stdout.contains("- host: web2\n  roles:\n  - migrate\n  user: root\n  port: 2222\n  env:\n    APP_ENV: canary\n    GREETING: hello\n"),
                "\(text.stdout)")
        #expect(text.stdout.contains("API_TOKEN: (set in ship's environment)") && !text.stdout.contains("do-not-print-me"))
        let json = try ship(["config", "staging", "--json"], in: dir.path)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect(object["deploy_to"] as? String == "/srv/shop" && (object["ssh"] as? [String: Any])?["user"] as? String == "deploy")
        let unknown = try ship(["config", "qa"], in: dir.path)
        #expect(unknown.status == 2 && unknown.stderr.contains("unknown environment 'qa'"))
    }

    @Test("shell completion: the bash script ship writes completes its commands and flags; the zsh one is a compdef")
    func completion() throws {
        let dir = try TemporaryDirectory()
        let bash = try ship(["--generate-completion-script", "bash"], in: dir.path)
        #expect(bash.status == 0)
        try dir.write("ship.bash", bash.stdout)
        func complete(_ words: [String]) throws -> String {
            let line = words.joined(separator: " ")
            let script = "source \(ShellQuote.quote(dir.file("ship.bash"))); COMP_WORDS=(\(words.map(ShellQuote.quote).joined(separator: " "))); "
                + "COMP_CWORD=\(words.count - 1); COMP_LINE=\(ShellQuote.quote(line)); COMP_POINT=\(line.utf8.count); "
                + "_ship ship \(ShellQuote.quote(words.last!)) \(ShellQuote.quote(words[words.count - 2])); echo \"${COMPREPLY[*]}\""
            return try run("bash", ["-c", script]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        #expect(try complete(["ship", "ex"]) == "exec")
        #expect(try complete(["ship", "se"]).split(separator: " ").sorted() == ["setup"])
        #expect(try complete(["ship", "deploy", "--dry"]) == "--dry-run")
        #expect(try complete(["ship", "logs", "--fo"]) == "--follow")
        let zsh = try ship(["--generate-completion-script", "zsh"], in: dir.path)
        #expect(zsh.status == 0 && zsh.stdout.hasPrefix("#compdef ship"))
    }

    @Test("ship init --preset writes files ship check accepts, with each framework's shared paths, build and hooks; an unknown preset is refused")
    func presets() throws {
        let expected: [String: (shared: String, hooks: [String])] = [
            "drupal": ("dirs: [web/sites/default/files, private]", ["deploy/drupal-migrate.sh", "deploy/drupal-after-switch.sh", "deploy/php-reload.sh"]),
            "wordpress": ("dirs: [wp-content/uploads]", ["deploy/wordpress-migrate.sh", "deploy/wordpress-after-switch.sh"]),
            "laravel": ("dirs: [storage]", ["deploy/laravel-migrate.sh", "deploy/laravel-after-switch.sh"]),
            "static": ("dirs: []", []),
        ]
        for (preset, files) in expected {
            let dir = try TemporaryDirectory("site")
            _ = try run("git", ["init", "-q"], in: dir.path)
            let written = try ship(["init", "--preset", preset], in: dir.path)
            #expect(written.status == 0, "\(preset): \(written.stderr)")
            #expect(preset == "static" || written.stdout.contains("fastcgi_param SCRIPT_FILENAME $realpath_root$fastcgi_script_name;"))
            let check = try ship(["check"], in: dir.path)
            #expect(check.status == 0, "\(preset): \(check.stdout)\(check.stderr)")
            #expect(try String(contentsOfFile: dir.file("ship.yml"), encoding: .utf8).contains(files.shared), "\(preset)")
            for hook in files.hooks { #expect(check.stdout.contains(hook), "\(preset): \(hook)") }
        }
        let empty = try TemporaryDirectory()
        let unknown = try ship(["init", "--preset", "joomla"], in: empty.path)
        #expect(unknown.status == 2 && unknown.stderr.contains("presets: drupal, wordpress, laravel, static"))
    }

    @Test("ship check of a bad ship.yml exits 2 with file:line: key: message and a hint, never a crash")
    func badConfiguration() throws {
        let dir = try TemporaryDirectory()
        try dir.write("ship.yml", "app: shop\ndeploy_to: /srv/shop\nenvironments:\n  prod:\n    hosts: [web1]\n    batch: lots\n")
        let result = try ship(["check"], in: dir.path)
        #expect(result.status == 2)
        #expect(result.stderr.hasPrefix(#"error: ship.yml:6: environments.prod.batch: expected an integer, "N%" or a list, found "lots""#))
        #expect(result.stderr.contains("hint: "))
        #expect(!result.stderr.contains("Fatal error"))
        #expect(!result.stderr.contains("Stack dump"))
        #expect(result.stdout.isEmpty)
    }

    @Test("ship check reports a bad appspec.yml beside ship.yml")
    func badAppspec() throws {
        let dir = try TemporaryDirectory()
        try dir.write("ship.yml", "app: shop\ndeploy_to: /srv/shop\nenvironments:\n  prod:\n    hosts: [web1]\n")
        try dir.write("appspec.yml", "version: 0.0\nos: linux\nfile_exists_behavior: retain\n")
        let result = try ship(["check"], in: dir.path)
        #expect(result.status == 2)
        #expect(result.stderr.hasPrefix(#"error: appspec.yml:3: file_exists_behavior: expected DISALLOW, OVERWRITE or RETAIN, found "retain""#))
        #expect(result.stderr.contains("hint: write it in capitals: RETAIN"))
    }

    @Test("ship check lists each event's scripts in the order they run, says what it ignores, and finds scripts missing or not executable")
    func appspecScripts() throws {
        let dir = try TemporaryDirectory()
        try dir.write("ship.yml", "app: shop\ndeploy_to: /srv/shop\nenvironments:\n  prod:\n    hosts: [web1]\n")
        let appspec = """
            version: 0.0
            os: linux
            hooks:
              AfterInstal:
                - location: x.sh
              AfterAllowTraffic:
                - location: scripts/warm.sh
              ApplicationStop:
                - location: scripts/stop.sh
                  timeout: 60
                  runas: www-data
              BeforeBlockTraffic:
                - location: scripts/drain.sh

            """
        try dir.write("appspec.yml", appspec)
        try dir.write("scripts/stop.sh", "#!/bin/sh\n", executable: true)
        try dir.write("scripts/warm.sh", "#!/bin/sh\n", executable: true)
        try dir.write("scripts/drain.sh", "#!/bin/sh\n", executable: true)
        let result = try ship(["check"], in: dir.path)
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains("  warning: appspec.yml:4: hooks.AfterInstal: its scripts never run"), "\(result.stdout)")
        let listing = result.stdout.components(separatedBy: "appspec.yml: ok (AWS CodeDeploy 0.0)\n").last ?? ""
        #expect(listing.contains("""
              BeforeBlockTraffic (before_block_traffic); from the release being replaced:
                scripts/drain.sh  (timeout 3600 s)
              ApplicationStop (stop); from the release being replaced:
                scripts/stop.sh  (timeout 60 s, as www-data)
              AfterAllowTraffic (after_allow_traffic):
                scripts/warm.sh  (timeout 3600 s)
            """), "\(listing)")
        _ = try run("chmod", ["-x", dir.file("scripts/stop.sh")])
        let notExecutable = try ship(["check"], in: dir.path)
        #expect(notExecutable.status == 2)
        #expect(notExecutable.stderr.hasPrefix("error: appspec.yml:9: hooks.ApplicationStop[0].location: scripts/stop.sh is not executable in the revision"),
                "\(notExecutable.stderr)")
        #expect(notExecutable.stderr.contains("hint: git update-index --chmod=+x scripts/stop.sh"))
        try FileManager.default.removeItem(atPath: dir.file("scripts/warm.sh"))
        _ = try run("chmod", ["+x", dir.file("scripts/stop.sh")])
        let missing = try ship(["check"], in: dir.path)
        #expect(missing.status == 2)
        #expect(missing.stderr.hasPrefix("error: appspec.yml:7: hooks.AfterAllowTraffic[0].location: scripts/warm.sh is not in the revision"),
                "\(missing.stderr)")
    }

    @Test("ship check: a files source that is a directory of the revision is linked, a file is copied; a missing one is refused")
    func filesSources() throws {
        let dir = try TemporaryDirectory()
        try dir.write("ship.yml", "app: shop\ndeploy_to: /srv/shop\nenvironments:\n  prod:\n    hosts: [web1]\n")
        try dir.write("app/index.php", "<?php\n")
        try dir.write("config/app.ini", "x=1\n")
        try dir.write("appspec.yml", "version: 0.0\nos: linux\nfiles:\n  - { source: /app/, destination: /var/www/app }\n")
        let linked = try ship(["check"], in: dir.path)
        #expect(linked.status == 0, "\(linked.stderr)")
        #expect(linked.stdout.contains("files: app -> /var/www/app: a link to deploy_to/current/app"), "\(linked.stdout)")
        try dir.write("appspec.yml", "version: 0.0\nos: linux\nfiles:\n  - { source: /app/, destination: /var/www/app }\n  - source: config/app.ini\n    destination: /etc/app\n")
        let copied = try ship(["check"], in: dir.path)
        #expect(copied.status == 0, "\(copied.stderr)")
        #expect(copied.stdout.contains("files: config/app.ini -> /etc/app: copied at each switch (file_exists_behavior DISALLOW)"), "\(copied.stdout)")
        try dir.write("appspec.yml", "version: 0.0\nos: linux\nfiles:\n  - { source: web, destination: /var/www/app }\n")
        let missing = try ship(["check"], in: dir.path)
        #expect(missing.status == 2 && missing.stderr.hasPrefix("error: appspec.yml:4: files[0].source: web is not in the revision"), "\(missing.stderr)")
    }

    @Test("usage errors exit 2: unknown environment, unknown option, no ship.yml")
    func usageErrors() throws {
        let dir = try TemporaryDirectory()
        try dir.write("ship.yml", "app: shop\ndeploy_to: /srv/shop\nenvironments:\n  prod:\n    hosts: [web1]\n")
        let unknownEnv = try ship(["check", "staging"], in: dir.path)
        #expect(unknownEnv.status == 2)
        #expect(unknownEnv.stderr.contains("unknown environment 'staging'"))
        let unknownOption = try ship(["check", "--frobnicate"], in: dir.path)
        #expect(unknownOption.status == 2)
        let empty = try TemporaryDirectory()
        let noConfig = try ship(["check"], in: empty.path)
        #expect(noConfig.status == 2)
        #expect(noConfig.stderr.contains("no ship.yml"))
        #expect(noConfig.stderr.contains("ship init"))
        let help = try ship(["--help"], in: empty.path)
        #expect(help.status == 0)
        #expect(help.stdout.contains("package"))
        #expect(help.stdout.contains("backup") && help.stdout.contains("restore"))
    }

    @Test("backup usage errors exit 2 and change nothing: no backup section, no password, restore without an id")
    func backupUsageErrors() throws {
        let dir = try TemporaryDirectory()
        try dir.write("ship.yml", "app: shop\ndeploy_to: /srv/shop\nenvironments:\n  prod:\n    hosts: [web1]\n")
        let noSection = try ship(["backup", "db"], in: dir.path)
        #expect(noSection.status == 2 && noSection.stderr.contains("has no backup section") && noSection.stderr.contains("hint:"))
        try dir.write("ship.yml", """
            app: shop
            deploy_to: /srv/shop
            environments:
              prod:
                hosts: [web1]
                backup:
                  store: backups
                  db: { host: local, engine: mysql, name: shop, password_env: SHIP_TEST_UNSET_PASSWORD }

            """)
        let noPassword = try ship(["backup", "db"], in: dir.path)
        #expect(noPassword.status == 2 && noPassword.stderr.contains("SHIP_TEST_UNSET_PASSWORD is not set"))
        let noAssets = try ship(["backup", "assets"], in: dir.path)
        #expect(noAssets.status == 2 && noAssets.stderr.contains("backup.assets"))
        let noID = try ship(["restore", "db", "--yes"], in: dir.path)
        #expect(noID.status == 2)
        let unknownID = try ship(["restore", "db", "prod", "db-nope", "--yes"], in: dir.path)
        #expect(unknownID.status == 2 && unknownID.stderr.contains("no backup db-nope"))
        let list = try ship(["backup", "list"], in: dir.path)
        #expect(list.status == 0 && list.stdout.contains("no backups"))
        #expect(!FileManager.default.fileExists(atPath: dir.file("backups")), "nothing was created")
    }

    @Test("a failed backup is told to the notify webhooks as backup_failed, and still exits as it fails")
    func backupFailedNotified() throws {
        let dir = try TemporaryDirectory()
        let bodies = dir.file("bodies")
        let receiver = try PythonHTTPServer(handler: """
            class H(http.server.BaseHTTPRequestHandler):
                def do_POST(self):
                    body = self.rfile.read(int(self.headers["Content-Length"]))
                    with open(sys.argv[1], "ab") as f:
                        f.write(body + b"\\n")
                    self.send_response(200)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                def log_message(self, *args):
                    pass
            """, arguments: [bodies])
        try dir.write("ship.yml", """
            app: shop
            deploy_to: \(dir.path)/srv
            environments:
              prod:
                hosts: [web1]
                notify: [{ webhook_env: SHIP_TEST_HOOK, events: [backup_failed] }]
                backup:
                  store: backups
                  db: { host: local, engine: command, dump_command: "echo no database here >&2; exit 3", restore_command: "cat >/dev/null" }

            """)
        let failed = try ship(["backup", "db", "--json"], in: dir.path, environment: ["SHIP_TEST_HOOK": receiver.base + "/hook"])
        #expect(failed.status == 1, "\(failed.stdout)\(failed.stderr)")
        let posted = try String(contentsOfFile: bodies, encoding: .utf8).split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        #expect(posted.count == 1)
        #expect(posted.first?["event"] as? String == "backup_failed" && posted.first?["kind"] as? String == "db")
        #expect((posted.first?["message"] as? String)?.contains("no database here") == true, "\(posted)")
        #expect((posted.first?["text"] as? String)?.hasPrefix("shop prod: db backup failed: ") == true)
        _ = receiver
    }

    @Test("ship package prints the bundle's path and SHA-256 and finds ship.yml from a subdirectory")
    func packageCommand() throws {
        let repo = try TestRepository()
        try repo.write("ship.yml", "app: shop\ndeploy_to: /srv/shop\nenvironments:\n  prod:\n    hosts: [web1]\n")
        try repo.write("src/app.php", "<?php\n")
        let commit = try repo.commitAll()
        let result = try ship(["package"], in: repo.directory.file("src"))
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == 2)
        let expectedPath = repo.directory.file("src/shop-\(commit.prefix(12)).tar.gz")
        #expect(lines.first == expectedPath)
        let sum = try run("sha256sum", [expectedPath])
        #expect(sum.stdout.hasPrefix(lines.last ?? "-"))

        let json = try ship(["package", "HEAD", "--output", "out.tar.gz", "--json"], in: repo.path)
        #expect(json.status == 0)
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        #expect(object?["event"] as? String == "packaged")
        #expect(object?["revision"] as? String == commit)
        #expect(object?["sha256"] as? String == lines.last)

        let unknown = try ship(["package", "v9.9"], in: repo.path)
        #expect(unknown.status == 2)
        #expect(unknown.stderr.contains("unknown revision 'v9.9'"))
    }
}
