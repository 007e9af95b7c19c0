import Foundation
import Testing
@testable import Shipper

/// Delta releases on real hosts (Debian rootfs, deploying as `deploy`, www-data editing files): the
/// release a delta makes is the one a full unpack makes, file for file; a base changed on the
/// host is never used.
@Suite("delta releases on real hosts", .tags(.endToEnd), .serialized)
struct DeltaEndToEndTests {
    /// Every entry of a release with its type, mode and link target, every file's size, mtime and
    /// SHA-256: what must not differ between two makings of a revision.
    static let listing = "find . -printf '%p %y %m %l\\n' | sort; find . -type f -printf '%p %s %T@\\n' | sort; "
        + "find . -type f -exec sha256sum {} + | sort"

    func steps(_ events: [[String: Any]], _ host: String) -> [String] {
        named(events, "host_step").filter { $0["host"] as? String == host }.compactMap { $0["step"] as? String }
    }

    @Test("a delta release is the revision file for file as a full unpack makes it; copies, never links to the base")
    func sameAsFull() throws {
        let pool = try SandboxPool(hosts: 1)
        let app = try SandboxApp(pool: pool, extraEnvironment: "    ssh: { user: deploy }")
        _ = try pool.output("web1", "install -d -o deploy /srv/shop")
        try app.writeAppspec("version: 1\n")
        try app.repo.write("public/index.php", "<?php echo 'v1';\n")
        try app.repo.write("public/files/tracked.txt", "in git, under a shared dir\n")
        try app.repo.write("lib/keep.php", "<?php // unchanged\n")
        try app.repo.write("lib/gone.php", "<?php // deleted in v2\n")
        try app.repo.write("bin/console", "#!/bin/sh\necho console\n")
        try app.repo.write("vendor/pkg/a/b/c/deep.php", "<?php // deep\n")
        try app.repo.write("becomes-dir", "a file in v1\n")
        try FileManager.default.createSymbolicLink(atPath: app.repo.directory.file("public/home.php"), withDestinationPath: "index.php")
        try app.commit("v1")
        let (first, _) = try app.ship(["deploy", "test"])
        #expect(first.status == 0, "\(first.stdout)\(first.stderr)")

        // v2: a change, a deletion, a mode change, a link retargeted, a file replaced by a
        // directory, a new nested directory.
        try app.repo.write("public/index.php", "<?php echo 'v2';\n")
        try FileManager.default.removeItem(atPath: app.repo.directory.file("lib/gone.php"))
        _ = try run("chmod", ["+x", app.repo.directory.file("bin/console")])
        try FileManager.default.removeItem(atPath: app.repo.directory.file("public/home.php"))
        try FileManager.default.createSymbolicLink(atPath: app.repo.directory.file("public/home.php"), withDestinationPath: "../lib/keep.php")
        try FileManager.default.removeItem(atPath: app.repo.directory.file("becomes-dir"))
        try app.repo.write("becomes-dir/now.txt", "a directory in v2\n")
        try app.repo.write("modules/new/module.php", "<?php // new\n")
        let v2 = try app.commit("v2")
        let (second, events2) = try app.ship(["deploy", "test"])
        #expect(second.status == 0, "\(second.stdout)\(second.stderr)")
        let delta = try #require(named(events2, "deployment_finished").last?["release"] as? String)
        #expect(steps(events2, "web1").contains { $0.hasPrefix("sending bundle: a delta from release ") && $0.contains("(4 files changed, 5 copied on the host; ") },
                "\(steps(events2, "web1"))")

        // The same revision again, from the full bundle.
        let (third, events3) = try app.ship(["deploy", "test", "--revision", v2], environment: ["SHIP_FULL_BUNDLES": "1"])
        #expect(third.status == 0, "\(third.stdout)\(third.stderr)")
        let full = try #require(named(events3, "deployment_finished").last?["release"] as? String)
        #expect(!steps(events3, "web1").contains { $0.contains("delta") })

        let fromDelta = try pool.output("web1", "cd /srv/shop/releases/\(delta) && { \(Self.listing); }")
        let fromFull = try pool.output("web1", "cd /srv/shop/releases/\(full) && { \(Self.listing); }")
        #expect(fromDelta == fromFull)
        #expect(fromDelta.contains("./bin/console f 755 "), "\(fromDelta)")
        #expect(fromDelta.contains("./public/home.php l 777 ../lib/keep.php"), "\(fromDelta)")
        #expect(!fromDelta.contains("gone.php"))
        #expect(fromDelta.contains("./public/files l 777 /srv/shop/shared/public/files"), "the shared dir is the agent's link")
        #expect(!fromDelta.contains("tracked.txt"), "what git has under a shared dir is never copied")
        // Separate files: writing into the new release leaves the one before as it was.
        let release1 = try pool.output("web1", "ls /srv/shop/releases | head -1")
        #expect(try pool.output("web1", "stat -c %i /srv/shop/releases/\(release1)/lib/keep.php")
                != pool.output("web1", "stat -c %i /srv/shop/releases/\(delta)/lib/keep.php"))
        _ = try pool.output("web1", "sudo -u deploy sh -c 'echo changed >> /srv/shop/releases/\(delta)/lib/keep.php'")
        #expect(try pool.output("web1", "cat /srv/shop/releases/\(release1)/lib/keep.php") == "<?php // unchanged")
    }

    @Test("a release changed on the host is no base: the delta is refused, the full bundle sent, and the new release is the revision")
    func changedBase() throws {
        let pool = try SandboxPool(hosts: 2)
        let app = try SandboxApp(pool: pool, extraEnvironment: "    ssh: { user: deploy }")
        for host in pool.hosts { _ = try pool.output(host, "install -d -o deploy /srv/shop") }
        try app.writeAppspec("version: 1\n")
        try app.repo.write("config/settings.php", "<?php $v = 1;\n")
        try app.repo.write("index.php", "<?php echo 1;\n")
        try app.commit("v1")
        let (first, _) = try app.ship(["deploy", "test"])
        #expect(first.status == 0, "\(first.stderr)")
        // On web2 the web user edits a file of the live release in place (the deploy user lets
        // it: group-writable, as some setups do).
        _ = try pool.output("web2", "chgrp www-data /srv/shop/current/config/settings.php && chmod g+w /srv/shop/current/config/settings.php")
        _ = try pool.output("web2", "sudo -u www-data sh -c 'echo \"\\$v = 2;\" >> /srv/shop/current/config/settings.php'")
        try app.repo.write("index.php", "<?php echo 2;\n")
        try app.commit("v2")
        let (second, events) = try app.ship(["deploy", "test"])
        #expect(second.status == 0, "\(second.stderr)")
        #expect(steps(events, "web1").contains { $0.hasPrefix("sending bundle: a delta from release ") })
        #expect(!steps(events, "web1").contains { $0.contains("refused") })
        #expect(steps(events, "web2").contains("delta refused: config/settings.php was changed in the base release after it was unpacked; sending the full bundle"),
                "\(steps(events, "web2"))")
        for host in pool.hosts {
            #expect(try pool.output(host, "cat /srv/shop/current/config/settings.php") == "<?php $v = 1;", "\(host): the revision's file")
            #expect(try pool.output(host, "cat /srv/shop/current/index.php") == "<?php echo 2;")
        }
    }
}
