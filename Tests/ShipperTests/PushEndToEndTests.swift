import Foundation
import Testing
@testable import Shipper

@Suite("git push deploys", .tags(.endToEnd), .serialized)
struct PushEndToEndTests {
    @Test("a push of the deploy_on_push branch deploys every host with its output in the push; other pushes deploy nothing")
    func pushDeploys() throws {
        let pool = try SandboxPool(hosts: 2)
        let bare = try TemporaryDirectory("ship-bare")
        let gitDir = bare.file("shop.git")
        _ = try run("git", ["init", "-q", "--bare", "-b", "main", gitDir])
        let install = try ShipperTests.ship(["hook", "install", gitDir], in: bare.path)
        #expect(install.status == 0, "\(install.stderr)")
        #expect(install.stdout.contains("installed"))
        let again = try ShipperTests.ship(["hook", "install", gitDir], in: bare.path)
        #expect(again.stdout.contains("updated"), "installing twice rewrites ship's own hook")

        let work = try TestRepository()
        try work.write("ship.yml", """
            app: shop
            deploy_to: /srv/shop
            ssh: { config_file: \(pool.sshConfig) }
            environments:
              prod:
                hosts: [web1, web2]
                deploy_on_push: main

            """)
        try work.write("appspec.yml", "version: 1\nhooks:\n  validate: [{ run: \"echo validated $SHIP_REVISION on $SHIP_HOST\" }]\n")
        let commit = try work.commitAll("first")
        try work.git(["remote", "add", "origin", gitDir])
        let environment = ["XDG_CACHE_HOME": work.directory.file(".cache")]
        let push = try run("git", ["push", "-q", "origin", "main"], in: work.path, environment: environment)
        #expect(push.status == 0, "\(push.stderr)")
        #expect(push.stderr.contains("remote: ship: deploying main (\(commit.prefix(12))) to prod"))
        #expect(push.stderr.contains("remote: ") && push.stderr.contains("web2 |   validated \(commit) on web2"))
        #expect(push.stderr.contains("succeeded"))
        for host in pool.hosts {
            #expect(try pool.output(host, "cat /srv/shop/current/REVISION") == commit)
        }

        // Another branch deploys nothing; deleting it is harmless.
        try work.git(["checkout", "-q", "-b", "feature"])
        try work.write("index.html", "feature\n")
        try work.commitAll("feature")
        let other = try run("git", ["push", "-q", "origin", "feature"], in: work.path, environment: environment)
        #expect(other.status == 0)
        #expect(other.stderr.contains("remote: ship: no environment deploys on push to feature"))
        let deletion = try run("git", ["push", "-q", "origin", ":feature"], in: work.path, environment: environment)
        #expect(deletion.status == 0)
        #expect(deletion.stderr.contains("remote: ship: branch feature deleted; nothing to deploy"))
        for host in pool.hosts {
            #expect(try pool.output(host, "cat /srv/shop/current/REVISION") == commit, "\(host) still on main's commit")
        }
    }

    @Test("a foreign post-receive hook is kept and chained")
    func chainsForeignHook() throws {
        let bare = try TemporaryDirectory("ship-bare")
        let gitDir = bare.file("app.git")
        _ = try run("git", ["init", "-q", "--bare", gitDir])
        try bare.write("app.git/hooks/post-receive", "#!/bin/sh\necho notified\n", executable: true)
        let install = try ShipperTests.ship(["hook", "install", gitDir], in: bare.path)
        #expect(install.status == 0)
        #expect(install.stdout.contains("kept as"))
        #expect(try String(contentsOfFile: bare.file("app.git/hooks/post-receive.before-ship"), encoding: .utf8).contains("echo notified"))
        let hook = try run(bare.file("app.git/hooks/post-receive"), [], in: gitDir, input: "")
        #expect(hook.stdout.contains("notified"))
    }
}
