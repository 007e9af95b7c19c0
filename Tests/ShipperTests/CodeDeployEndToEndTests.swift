import Foundation
import Testing
@testable import Shipper

/// CodeDeploy appspecs on real hosts, deployed as `deploy`: the root `files` destination is a
/// link to `current`, so scripts that cd there see what CodeDeploy would show them at each event.
@Suite("CodeDeploy appspecs on real hosts", .tags(.endToEnd), .serialized)
struct CodeDeployEndToEndTests {
    static let appspec = """
        version: 0.0
        os: linux
        files:
          - source: /
            destination: /var/www/shop
          - source: public/
            destination: /var/www/shop-public
        hooks:
          BeforeInstall:
            - location: scripts/seen.sh
          AfterInstall:
            - location: scripts/seen.sh
          ApplicationStart:
            - location: scripts/seen.sh
              timeout: 60
          ValidateService:
            - location: scripts/seen.sh
        """

    func app(_ pool: SandboxPool) throws -> SandboxApp {
        let app = try SandboxApp(pool: pool, extraEnvironment: "    ssh: { user: deploy }", hosts: pool.hosts)
        try app.writeAppspec(Self.appspec)
        // What the destination holds when each event runs, as a CodeDeploy script sees it.
        try app.repo.write("scripts/seen.sh", """
            #!/bin/sh
            cd /var/www/shop 2>/dev/null && seen=$(cat version.txt) || seen=none
            echo "$LIFECYCLE_EVENT $seen" >> /srv/shop/seen.log
            """, executable: true)
        try app.repo.write("public/index.html", "home v1\n")
        return app
    }

    @Test("the destination is a link to current: BeforeInstall sees the old revision there, AfterInstall on the new one")
    func destination() throws {
        let pool = try SandboxPool(hosts: 1)
        _ = try pool.output("web1", "install -d -o deploy /srv/shop /var/www")
        let app = try app(pool)
        try app.repo.write("version.txt", "v1\n")
        try app.commit("v1")
        let (first, events) = try app.ship(["deploy", "test"])
        #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
        #expect(named(events, "host_step").contains { ($0["step"] as? String) == "linked /var/www/shop -> /srv/shop/current (the revision's files destination)" })
        #expect(try pool.output("web1", "readlink /var/www/shop") == "/srv/shop/current")
        #expect(try pool.output("web1", "readlink /var/www/shop-public; cat /var/www/shop-public/index.html") == "/srv/shop/current/public\nhome v1",
                "a directory of the revision is linked where CodeDeploy would have copied it")
        try app.repo.write("version.txt", "v2\n")
        try app.commit("v2")
        let (second, events2) = try app.ship(["deploy", "test"])
        #expect(second.status == 0, "\(second.stdout)\(second.stderr)")
        #expect(!named(events2, "host_step").contains { ($0["step"] as? String)?.hasPrefix("linked") == true }, "the link stays as it is")
        #expect(try pool.output("web1", "cat /srv/shop/seen.log") == """
            BeforeInstall none
            AfterInstall v1
            ApplicationStart v1
            ValidateService v1
            BeforeInstall v1
            AfterInstall v2
            ApplicationStart v2
            ValidateService v2
            """)
        let (rollback, _) = try app.ship(["rollback", "test"])
        #expect(rollback.status == 0, "\(rollback.stdout)\(rollback.stderr)")
        #expect(try pool.output("web1", "cat /var/www/shop/version.txt") == "v1", "the destination follows current back")
    }

    @Test("a destination that is a directory with files, or in a directory the deploy user cannot write, stops the deploy before anything changes, with the fix")
    func refused() throws {
        let pool = try SandboxPool(hosts: 2)
        _ = try pool.output("web1", "install -d -o deploy /srv/shop /var/www")
        _ = try pool.output("web2", "install -d -o deploy /srv/shop && mkdir -p /var/www/shop && echo old > /var/www/shop/index.html")
        let app = try app(pool)
        try app.repo.write("version.txt", "v1\n")
        try app.commit("v1")
        let (copied, _) = try app.ship(["deploy", "test"])
        #expect(copied.status == 5, "\(copied.stdout)\(copied.stderr)")
        #expect(copied.stdout.contains("/var/www/shop is a directory with files in it"), "\(copied.stdout)")
        #expect(copied.stderr.contains("sudo mv /var/www/shop /var/www/shop.before-ship"), "\(copied.stderr)")
        #expect(try pool.output("web1", "ls /srv/shop; test -e /var/www/shop || echo absent") == "absent", "nothing changed on web1 either")

        // Moved aside, but /var/www is root's: the hint is the link, made once as root.
        _ = try pool.output("web2", "mv /var/www/shop /var/www/shop.before-ship")
        let (unwritable, _) = try app.ship(["deploy", "test"])
        #expect(unwritable.status == 5)
        #expect(unwritable.stderr.contains("sudo ln -sfn /srv/shop/current /var/www/shop"), "\(unwritable.stderr)")
        _ = try pool.output("web2", "ln -sfn /srv/shop/current /var/www/shop && ln -sfn /srv/shop/current/public /var/www/shop-public")
        let (deployed, _) = try app.ship(["deploy", "test"])
        #expect(deployed.status == 0, "\(deployed.stdout)\(deployed.stderr)")
        #expect(try pool.output("web2", "cat /var/www/shop/version.txt") == "v1")
        #expect(try pool.output("web2", "cat /var/www/shop.before-ship/index.html") == "old", "nothing of the old copy was deleted")
    }

    @Test("permissions as CodeDeploy applies them: modes, a group of the deploy user's, pattern and except; another owner needs root, said before anything changes")
    func permissions() throws {
        let pool = try SandboxPool(hosts: 1)
        _ = try pool.output("web1", "install -d -o deploy /srv/shop /var/www && usermod -aG www-data deploy")
        let app = try app(pool)
        let permissions = """
            permissions:
              - object: /var/www/shop
                type: [directory]
                mode: 750
              - object: /var/www/shop/storage
                pattern: "*.log"
                except: [keep.log]
                group: www-data
                mode: 640
              - object: /var/www/shop/bin/tool
                type: [file]
                mode: 700
            """
        try app.writeAppspec(Self.appspec + "\n" + permissions)
        try app.repo.write("version.txt", "v1\n")
        try app.repo.write("storage/app.log", "log\n")
        try app.repo.write("storage/keep.log", "kept\n")
        try app.repo.write("storage/sub/deep.log", "deep\n")
        try app.repo.write("bin/tool", "#!/bin/sh\n", executable: true)
        try app.commit("v1")
        let (first, _) = try app.ship(["deploy", "test"])
        #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
        let modes = try pool.output("web1", "cd /var/www/shop/ && stat -c '%n %a %G' storage storage/sub bin storage/app.log storage/keep.log storage/sub/deep.log bin/tool version.txt")
        #expect(modes == """
            storage 750 deploy
            storage/sub 750 deploy
            bin 750 deploy
            storage/app.log 640 www-data
            storage/keep.log 644 deploy
            storage/sub/deep.log 644 deploy
            bin/tool 700 deploy
            version.txt 644 deploy
            """)

        // Another owner than the deploy user: only root may, and the preflight says so.
        try app.writeAppspec(Self.appspec + "\npermissions:\n  - { object: /var/www/shop/storage, owner: www-data }\n")
        try app.repo.write("version.txt", "v2\n")
        try app.commit("v2")
        let (refused, _) = try app.ship(["deploy", "test"])
        #expect(refused.status == 5, "\(refused.stdout)\(refused.stderr)")
        #expect(refused.stdout.contains("permissions give files to www-data, which only root may do (ship runs as deploy), through the root-owned helper"),
                "\(refused.stdout)")
        #expect(try pool.output("web1", "cat /var/www/shop/version.txt") == "v1", "nothing changed")

        // Deploying as root, the same appspec gives what is below the directory to www-data (the
        // object itself is left as it is, as CodeDeploy leaves it).
        let yml = try String(contentsOfFile: app.repo.directory.file("ship.yml"), encoding: .utf8)
        try app.repo.write("ship.yml", yml.replacingOccurrences(of: "    ssh: { user: deploy }", with: ""))
        let (asRoot, _) = try app.ship(["deploy", "test"])
        #expect(asRoot.status == 0, "\(asRoot.stdout)\(asRoot.stderr)")
        #expect(try pool.output("web1", "cd /var/www/shop/storage && stat -c '%U' app.log sub sub/deep.log") == "www-data\nwww-data\nwww-data")
    }

    @Test("another owner as the deploy user, through the root-owned helper and its one sudoers line: the preflight's fix works, files are given, pruning deletes them, hostile requests change nothing")
    func ownerThroughHelper() throws {
        let pool = try SandboxPool(hosts: 1)
        _ = try pool.output("web1", "install -d -o deploy /srv/shop /var/www")
        let app = try SandboxApp(pool: pool, keepReleases: 1, extraEnvironment: "    ssh: { user: deploy }", hosts: pool.hosts)
        try app.writeAppspec("""
            version: 0.0
            os: linux
            files:
              - { source: /, destination: /var/www/shop }
            permissions:
              - { object: /var/www/shop/storage, owner: www-data, group: www-data, mode: 640, type: [file] }
              - { object: /var/www/shop/storage, owner: www-data, group: www-data, mode: 750, type: [directory] }
            """)
        try app.repo.write("version.txt", "v1\n")
        try app.repo.write("storage/app.log", "log\n")
        try app.repo.write("storage/cache/page.html", "page\n")
        try app.commit("v1")

        // No helper yet: exit 5 before anything changes, with the commands that install it.
        let (refused, _) = try app.ship(["deploy", "test"])
        #expect(refused.status == 5, "\(refused.stdout)\(refused.stderr)")
        #expect(refused.stdout.contains("through the root-owned helper /usr/local/libexec/ship-agent, which is not installed"), "\(refused.stdout)")
        let hintLine = try #require(refused.stderr.split(separator: "\n").map(String.init).first { $0.contains("install -D") }, "\(refused.stderr)")
        let hint = hintLine.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "hint: ", with: "")
        #expect(hint.contains("deploy ALL=(root) NOPASSWD: /usr/local/libexec/ship-agent give-owner /srv/shop www-data www-data"), "\(hint)")
        #expect(try pool.ssh("web1", "test -e /srv/shop/current").status == 1, "no release went live")

        // The fix, as the hint words it, run by root on the host.
        let command = String(hint.dropFirst("as root on the host, once: ".count)).replacingOccurrences(of: " (docs/installing.md)", with: "")
        _ = try pool.output("web1", command)
        let (first, _) = try app.ship(["deploy", "test"])
        #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
        let owners = try pool.output("web1", "cd /var/www/shop && stat -c '%n %U %G %a' storage storage/app.log storage/cache storage/cache/page.html version.txt")
        #expect(owners == """
            storage deploy deploy 755
            storage/app.log www-data www-data 640
            storage/cache www-data www-data 750
            storage/cache/page.html www-data www-data 640
            version.txt deploy deploy 644
            """)

        // Old releases hold www-data's files, which deploy cannot delete: without the runas
        // sudoers line, the helper deletes them when they are pruned.
        _ = try pool.output("web1", "rm /etc/sudoers.d/ship")
        for version in 2...3 {
            try app.repo.write("version.txt", "v\(version)\n")
            try app.commit("v\(version)")
            let (next, events) = try app.ship(["deploy", "test"])
            #expect(next.status == 0, "\(next.stdout)\(next.stderr)")
            #expect(named(events, "host_warning").isEmpty, "\(named(events, "host_warning"))")
        }
        #expect(try pool.output("web1", "ls /srv/shop/releases | wc -l") == "2")
        #expect(try pool.output("web1", "ls -A /srv/shop/.ship/trash").isEmpty, "pruned releases deleted whole")

        // Hostile requests, straight to the helper as the deploy user: nothing outside a
        // release's own files changes hands.
        let release = try pool.output("web1", "ls /srv/shop/releases | tail -1")
        let dir = "/srv/shop/releases/\(release)"
        _ = try pool.output("web1", """
            su deploy -s /bin/sh -c 'ln -s /etc/hostname \(dir)/link && ln -s /etc \(dir)/etcdir && echo x > \(dir)/once && ln \(dir)/once \(dir)/twice \
              && cp /bin/true \(dir)/tool && chmod 4755 \(dir)/tool'
            touch \(dir)/roots
            """)
        func give(_ requests: [String]) throws -> (status: Int32, output: String) {
            let input = requests.map { $0 + "\\0" }.joined()
            let result = try pool.ssh("web1", "printf '\(input)' | su deploy -s /bin/sh -c 'sudo -n /usr/local/libexec/ship-agent give-owner /srv/shop www-data www-data' 2>&1")
            return (result.status, result.stdout)
        }
        let hostile = try give(["give\\treleases/../../etc/passwd", "give\\treleases/\(release)/etcdir/hostname", "give\\treleases/\(release)/link",
                                "give\\treleases/\(release)/twice", "give\\treleases/\(release)/roots", "give\\t.ship/lock", "remove\\t../releases",
                                "give\\treleases/\(release)/tool"])
        #expect(hostile.status == 1, "\(hostile.output)")
        #expect(hostile.output.contains("refused releases/../../etc/passwd: not a path below releases/NAME/"), "\(hostile.output)")
        #expect(hostile.output.contains("refused releases/\(release)/etcdir/hostname: cannot open etcdir"), "\(hostile.output)")
        #expect(hostile.output.contains("refused releases/\(release)/twice: has other hard links"), "\(hostile.output)")
        #expect(hostile.output.contains("refused releases/\(release)/roots: not the deploy user's"), "\(hostile.output)")
        #expect(hostile.output.contains("refused ../releases: not a name in .ship/trash"), "\(hostile.output)")
        #expect(try pool.output("web1", "stat -c '%U' /etc/passwd /etc/hostname \(dir)/roots \(dir)/once && ls /srv/shop/releases | wc -l")
                == "root\nroot\nroot\ndeploy\n2")
        // The setuid file was given, without its setuid bit.
        #expect(try pool.output("web1", "stat -c '%U %a' \(dir)/tool") == "www-data 755")

        // A helper the deploy user could replace refuses to run as root at all.
        _ = try pool.output("web1", """
            install -o deploy -m 0755 /usr/local/libexec/ship-agent /home/deploy/ship-agent
            echo 'deploy ALL=(root) NOPASSWD: /home/deploy/ship-agent give-owner /srv/shop www-data' > /etc/sudoers.d/unsafe
            """)
        let unsafe = try pool.ssh("web1", "su deploy -s /bin/sh -c 'sudo -n /home/deploy/ship-agent give-owner /srv/shop www-data < /dev/null' 2>&1")
        #expect(unsafe.status == 2)
        #expect(unsafe.stdout.contains("can be changed by a user other than root, so /home/deploy/ship-agent must not run as root"), "\(unsafe.stdout)")
    }

    @Test("a file source is copied at the switch: DISALLOW stops before anything switches, OVERWRITE keeps the original aside, a rollback and a later revision put it back")
    func copies() throws {
        let pool = try SandboxPool(hosts: 1)
        _ = try pool.output("web1", "mkdir -p /etc/shop /var/www && echo original > /etc/shop/existing.conf")
        let app = try SandboxApp(pool: pool, hosts: pool.hosts)
        func appspec(_ entries: [String], behavior: String? = nil) throws {
            try app.writeAppspec("version: 0.0\nos: linux\n" + (behavior.map { "file_exists_behavior: \($0)\n" } ?? "")
                + "files:\n  - { source: /, destination: /var/www/shop }\n" + entries.map { "  - { source: \($0), destination: /etc/shop }\n" }.joined())
        }
        func etc() throws -> String { try pool.output("web1", "cd /etc/shop && for f in *; do echo \"$f: $(cat $f)\"; done") }
        try app.repo.write("deploy/app.conf", "app v1\n")
        try app.repo.write("deploy/existing.conf", "from the revision\n")
        try appspec(["deploy/app.conf"])
        try app.commit("v1")
        let (first, events) = try app.ship(["deploy", "test"])
        #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
        #expect(named(events, "host_step").contains { ($0["step"] as? String) == "copied /etc/shop/app.conf (the revision's files)" })
        #expect(try etc() == "app.conf: app v1\nexisting.conf: original")

        // A file ship did not install is in the way: DISALLOW, CodeDeploy's default, stops the host before it switches.
        try app.repo.write("deploy/app.conf", "app v2\n")
        try appspec(["deploy/app.conf", "deploy/existing.conf"])
        try app.commit("v2")
        let (disallowed, _) = try app.ship(["deploy", "test"])
        #expect(disallowed.status == 1, "\(disallowed.stdout)\(disallowed.stderr)")
        #expect(disallowed.stdout.contains("/etc/shop/existing.conf exists and ship did not install it: file_exists_behavior is DISALLOW"), "\(disallowed.stdout)")
        #expect(try etc() == "app.conf: app v1\nexisting.conf: original", "nothing was copied")
        #expect(try pool.output("web1", "cat /var/www/shop/deploy/app.conf") == "app v1", "nothing switched")

        try appspec(["deploy/app.conf", "deploy/existing.conf"], behavior: "OVERWRITE")
        try app.repo.write("deploy/app.conf", "app v3\n")
        try app.commit("v3")
        let (overwritten, _) = try app.ship(["deploy", "test"])
        #expect(overwritten.status == 0, "\(overwritten.stdout)\(overwritten.stderr)")
        #expect(try etc() == "app.conf: app v3\nexisting.conf: from the revision")

        let (rollback, _) = try app.ship(["rollback", "test"])
        #expect(rollback.status == 0, "\(rollback.stdout)\(rollback.stderr)")
        #expect(try etc() == "app.conf: app v1\nexisting.conf: original", "the release rolled back to has its copies, the original is back")

        try appspec([])
        try app.commit("v4")
        let (without, _) = try app.ship(["deploy", "test"])
        #expect(without.status == 0, "\(without.stdout)\(without.stderr)")
        #expect(try etc() == "existing.conf: original", "a copy no release wants is gone")

        // --file-exists-behavior over the appspec's, for one deployment.
        try appspec(["deploy/existing.conf"])
        try app.commit("v5")
        let (lowercase, _) = try app.ship(["deploy", "test", "--file-exists-behavior", "retain"])
        #expect(lowercase.status == 2 && lowercase.stderr.contains("write it in capitals: RETAIN"), "\(lowercase.stderr)")
        let (retained, _) = try app.ship(["deploy", "test", "--file-exists-behavior", "RETAIN"])
        #expect(retained.status == 0, "\(retained.stdout)\(retained.stderr)")
        #expect(try etc() == "existing.conf: original", "RETAIN leaves the file there as it is")
    }

    @Test("a directory of the revision whose destination has files of its own is merged in by copies, as the deploy user: permissions reach the copies, a rollback and a later revision put every file back")
    func merged() throws {
        let pool = try SandboxPool(hosts: 1)
        _ = try pool.output("web1", """
            install -d -o deploy /srv/shop /var/www /etc/shop /etc/shop/conf.d && usermod -aG www-data deploy && \
            echo mine > /etc/shop/conf.d/other.conf && echo theirs > /etc/shop/conf.d/site.conf && chown deploy /etc/shop/conf.d/*
            """)
        let app = try SandboxApp(pool: pool, extraEnvironment: "    ssh: { user: deploy }", hosts: pool.hosts)
        func appspec(behavior: String?, conf: Bool = true) throws {
            try app.writeAppspec("version: 0.0\nos: linux\n" + (behavior.map { "file_exists_behavior: \($0)\n" } ?? "") + """
                files:
                  - { source: /, destination: /var/www/shop }
                \(conf ? "  - { source: conf/, destination: /etc/shop/conf.d }\n" : "")  - { source: deploy/app.service, destination: /etc/shop }
                permissions:
                  - { object: /etc/shop/conf.d, pattern: "*.conf", mode: 640, group: www-data }
                  - { object: /etc/shop, pattern: "*.service", mode: 600 }
                """)
        }
        func etc() throws -> String {
            try pool.output("web1", "cd /etc/shop && find . -type f | sort | while read f; do echo \"$f $(stat -c '%a %U:%G' $f) $(cat $f)\"; done")
        }
        try app.repo.write("conf/site.conf", "site v1\n")
        try app.repo.write("conf/sub/nested.conf", "nested v1\n")
        try app.repo.write("deploy/app.service", "[Service] v1\n")
        try appspec(behavior: nil)
        try app.commit("v1")
        let (disallowed, _) = try app.ship(["deploy", "test"])
        #expect(disallowed.status == 1, "\(disallowed.stdout)\(disallowed.stderr)")
        #expect(disallowed.stdout.contains("/etc/shop/conf.d/site.conf exists and ship did not install it"), "\(disallowed.stdout)")
        let untouched = """
            ./conf.d/other.conf 644 deploy:root mine
            ./conf.d/site.conf 644 deploy:root theirs
            """
        #expect(try etc() == untouched, "DISALLOW: nothing copied")

        try appspec(behavior: "OVERWRITE")
        try app.commit("v1 overwrite")
        let (first, events) = try app.ship(["deploy", "test"])
        #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
        #expect(named(events, "host_step").contains { ($0["step"] as? String) == "copied /etc/shop/conf.d/sub/nested.conf (the revision's files)" })
        let v1 = """
            ./app.service 600 deploy:deploy [Service] v1
            ./conf.d/other.conf 644 deploy:root mine
            ./conf.d/site.conf 640 deploy:www-data site v1
            ./conf.d/sub/nested.conf 644 deploy:deploy nested v1
            """
        #expect(try etc() == v1, "merged in with the appspec's modes and group; the directory's own file left alone")
        #expect(try pool.output("web1", "test -L /etc/shop/conf.d || echo directory") == "directory")

        try app.repo.write("conf/site.conf", "site v2\n")
        _ = try app.repo.git(["rm", "-q", "conf/sub/nested.conf"])
        try app.repo.write("conf/new.conf", "new v2\n")
        try app.commit("v2")
        let (second, _) = try app.ship(["deploy", "test"])
        #expect(second.status == 0, "\(second.stdout)\(second.stderr)")
        #expect(try etc() == """
            ./app.service 600 deploy:deploy [Service] v1
            ./conf.d/new.conf 640 deploy:www-data new v2
            ./conf.d/other.conf 644 deploy:root mine
            ./conf.d/site.conf 640 deploy:www-data site v2
            """)
        let (rollback, _) = try app.ship(["rollback", "test"])
        #expect(rollback.status == 0, "\(rollback.stdout)\(rollback.stderr)")
        #expect(try etc() == v1, "the release rolled back to has exactly its copies")

        // A copy failing partway through the switch (its directory is a file on the host): the
        // host does not switch, and the copies made before the failure go back to the live release's.
        _ = try pool.output("web1", "echo blocker > /etc/shop/conf.d/zz && chown deploy /etc/shop/conf.d/zz")
        try app.repo.write("conf/site.conf", "site v3\n")
        try app.repo.write("conf/zz/last.conf", "last\n")
        try app.commit("v3")
        let (failed, _) = try app.ship(["deploy", "test"])
        #expect(failed.status == 1, "\(failed.stdout)\(failed.stderr)")
        #expect(try etc() == v1 + "\n./conf.d/zz 644 deploy:root blocker", "the copies are the live release's again")
        #expect(try pool.output("web1", "cat /var/www/shop/conf/site.conf") == "site v1", "nothing switched")
        _ = try pool.output("web1", "rm /etc/shop/conf.d/zz")
        let (fixed, _) = try app.ship(["deploy", "test"])
        #expect(fixed.status == 0, "\(fixed.stdout)\(fixed.stderr)")
        #expect(try pool.output("web1", "cat /etc/shop/conf.d/site.conf /etc/shop/conf.d/zz/last.conf") == "site v3\nlast")

        // A revision without the directory entry: the original ship replaced is back, nothing else of ship's left.
        try appspec(behavior: "OVERWRITE", conf: false)
        try app.commit("v4")
        let (without, _) = try app.ship(["deploy", "test"])
        #expect(without.status == 0, "\(without.stdout)\(without.stderr)")
        #expect(try etc() == """
            ./app.service 600 deploy:deploy [Service] v1
            ./conf.d/other.conf 644 deploy:root mine
            ./conf.d/site.conf 644 deploy:root theirs
            """)
    }
    /// Every key of CodeDeploy's in-place reference in one appspec, deployed as `deploy` to two
    /// hosts twice and rolled back.
    static let reference = """
        version: 0.0
        os: linux
        file_exists_behavior: OVERWRITE
        files:
          - source: /
            destination: /var/www/shop
          - source: public
            destination: /var/www/shop-public
          - source: nginx/
            destination: /etc/shop/nginx.d
          - source: deploy/shop.service
            destination: /etc/shop/systemd
            overwrite: true
        permissions:
          - object: /var/www/shop/storage
            pattern: "**"
            except: [keep]
            owner: deploy
            group: www-data
            mode: 770
            type:
              - directory
          - object: /etc/shop/systemd/shop.service
            mode: 640
            type: [file]
        hooks:
          BeforeBlockTraffic: [{ location: scripts/event.sh, timeout: 30 }]
          AfterBlockTraffic: [{ location: scripts/event.sh, timeout: "30" }]
          ApplicationStop: [{ location: scripts/event.sh }]
          BeforeInstall:
            - location: scripts/event.sh
            - location: scripts/migrate.sh
              once: true
          AfterInstall:
            - location: scripts/event.sh
              runas: www-data
          ApplicationStart: [{ location: scripts/event.sh, timeout: 60 }]
          ValidateService: [{ location: scripts/event.sh, timeout: 60.5 }]
          BeforeAllowTraffic: [{ location: scripts/event.sh }]
          AfterAllowTraffic: [{ location: /scripts/event.sh }]
        """

    @Test("the in-place reference, every key, as deploy on two hosts: events in order with CodeDeploy's variables, once on one host, links, a merge and a copy, modes and groups; a rollback puts every copy back")
    func reference() throws {
        let pool = try SandboxPool(hosts: 2)
        for host in pool.hosts {
            _ = try pool.output(host, """
                install -d -o deploy /srv/shop /var/www /etc/shop /etc/shop/nginx.d /etc/shop/systemd && usermod -aG www-data deploy && \
                echo theirs > /etc/shop/nginx.d/default.conf && echo old-unit > /etc/shop/systemd/shop.service && \
                chown deploy /etc/shop/nginx.d/default.conf /etc/shop/systemd/shop.service && touch /tmp/events.log && chmod 666 /tmp/events.log
                """)
        }
        let app = try SandboxApp(pool: pool, extraEnvironment: "    ssh: { user: deploy }", hosts: ["{ host: web1, roles: [migrate] }", "web2"])
        try app.writeAppspec(Self.reference)
        try app.repo.write("scripts/event.sh", """
            #!/bin/sh
            seen=$(cat /var/www/shop/version.txt 2>/dev/null || echo none)
            echo "$(hostname) $LIFECYCLE_EVENT $seen $(id -un) $APPLICATION_NAME $DEPLOYMENT_GROUP_NAME ${DEPLOYMENT_ID:+id} ${DEPLOYMENT_GROUP_ID:+group}" >> /tmp/events.log
            """, executable: true)
        try app.repo.write("scripts/migrate.sh", "#!/bin/sh\necho \"$(hostname) migrate $(cat version.txt)\" >> /tmp/events.log\n", executable: true)
        func revision(_ version: String) throws {
            try app.repo.write("version.txt", version + "\n")
            try app.repo.write("public/index.html", "home \(version)\n")
            try app.repo.write("nginx/shop.conf", "server \(version)\n")
            try app.repo.write("deploy/shop.service", "[Service] \(version)\n")
            try app.repo.write("storage/cache/.gitkeep", "")
            try app.repo.write("storage/keep/.gitkeep", "")
        }
        try revision("v1")
        try app.commit("v1")
        let check = try ship(["check"], in: app.repo.path)
        #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
        #expect(check.stdout.contains("files[3].overwrite: unknown key, ignored"), "a key the agent ignores is a warning: \(check.stdout)")
        let (first, _) = try app.ship(["deploy", "test"])
        #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
        _ = try pool.output("web1", ": > /tmp/events.log")
        _ = try pool.output("web2", ": > /tmp/events.log")
        try revision("v2")
        try app.commit("v2")
        let (second, _) = try app.ship(["deploy", "test"])
        #expect(second.status == 0, "\(second.stdout)\(second.stderr)")

        let variables = "shop test id group"
        #expect(try pool.output("web1", "cat /tmp/events.log") == """
            web1 BeforeBlockTraffic v1 deploy \(variables)
            web1 AfterBlockTraffic v1 deploy \(variables)
            web1 ApplicationStop v1 deploy \(variables)
            web1 BeforeInstall v1 deploy \(variables)
            web1 migrate v2
            web1 AfterInstall v2 www-data \(variables)
            web1 ApplicationStart v2 deploy \(variables)
            web1 ValidateService v2 deploy \(variables)
            web1 BeforeAllowTraffic v2 deploy \(variables)
            web1 AfterAllowTraffic v2 deploy \(variables)
            """)
        #expect(try !pool.output("web2", "cat /tmp/events.log").contains("migrate"), "once: true ran on one host only")
        for host in pool.hosts {
            #expect(try pool.output(host, "readlink /var/www/shop /var/www/shop-public") == "/srv/shop/current\n/srv/shop/current/public")
            #expect(try pool.output(host, "test -L /etc/shop/nginx.d || echo merged; cat /etc/shop/nginx.d/default.conf /etc/shop/nginx.d/shop.conf")
                    == "merged\ntheirs\nserver v2")
            #expect(try pool.output(host, "stat -c '%a %U' /etc/shop/systemd/shop.service; cat /etc/shop/systemd/shop.service") == "640 deploy\n[Service] v2")
            #expect(try pool.output(host, "cd /var/www/shop/storage && stat -c '%n %a %G' cache keep") == "cache 770 www-data\nkeep 755 deploy")
        }
        let (rollback, _) = try app.ship(["rollback", "test"])
        #expect(rollback.status == 0, "\(rollback.stdout)\(rollback.stderr)")
        #expect(try pool.output("web2", "cat /var/www/shop/version.txt /etc/shop/nginx.d/shop.conf /etc/shop/systemd/shop.service /etc/shop/nginx.d/default.conf")
                == "v1\nserver v1\n[Service] v1\ntheirs")
    }
}
