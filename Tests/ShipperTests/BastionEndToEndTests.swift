import Foundation
import Testing
@testable import Shipper

/// A pool reached through a bastion (ProxyJump) whose sshd drops new connections past
/// `MaxStartups 3`, as a small bastion does under a burst.
@Suite("a pool behind a bastion", .tags(.endToEnd), .serialized)
struct BastionEndToEndTests {
    @Test("through a bastion with MaxStartups 3, 24 hosts opened all at once lose connections; ship, opening them 3 at a time (ssh.max_startups), deploys to all 24 with none lost")
    func maxStartups() throws {
        let pool = try SandboxPool(hosts: 25)
        let bastion = pool.network + ".11"
        // web1 is the bastion: a second sshd there, with MaxStartups 3.
        _ = try pool.output("web1", """
            sed -e 's/^ListenAddress .*/ListenAddress \(bastion):2223/' -e 's/^MaxStartups .*/MaxStartups 3/' \
              /etc/ssh/sshd_config_ship > /etc/ssh/sshd_config_bastion && /usr/sbin/sshd -f /etc/ssh/sshd_config_bastion
            """)
        // The client's view: web2..web25 through the bastion.
        let directory = pool.directory.file("pool")
        let knownHosts = try String(contentsOfFile: directory + "/known_hosts", encoding: .utf8)
        let bastionKey = try #require(knownHosts.split(separator: "\n").first { $0.hasPrefix("[\(bastion)]:2222 ") })
        try (knownHosts + bastionKey.replacingOccurrences(of: "]:2222 ", with: "]:2223 ") + "\n")
            .write(toFile: directory + "/known_hosts", atomically: true, encoding: .utf8)
        let targets = (2...25).map { "web\($0)" }
        let config = pool.directory.file("bastion_config")
        try ("""
            Host bastion
              HostName \(bastion)
              Port 2223
              User root
              IdentityFile \(directory)/id_ed25519
              IdentitiesOnly yes
              UserKnownHostsFile \(directory)/known_hosts
              StrictHostKeyChecking yes
              BatchMode yes
              LogLevel ERROR

            Host \(targets.joined(separator: " "))
              ProxyJump bastion

            """ + (try String(contentsOfFile: directory + "/ssh_config", encoding: .utf8))).write(toFile: config, atomically: true, encoding: .utf8)
        var up = false
        for _ in 0..<100 where !up {
            up = try run("ssh", ["-F", config, "bastion", "true"]).status == 0
            if !up { usleep(100_000) } // the bastion's sshd starting: no event to await from here
        }
        try #require(up, "the bastion's sshd came up")

        // All at once: the bastion drops most of them.
        let burst = targets.map { target -> Process in
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/ssh")
            process.arguments = ["-F", config, target, "true"]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            return process
        }
        for process in burst { try process.run() }
        for process in burst { process.waitUntilExit() }
        let lost = burst.filter { $0.terminationStatus != 0 }.count
        #expect(lost > 0, "opened at once, some of the 24 connections are dropped by MaxStartups 3")

        // ship, 3 new connections at a time through the bastion: every host deploys.
        let app = try SandboxApp(pool: pool, extraEnvironment: """
                ssh: { user: deploy, config_file: \(config), max_startups: 3 }
                batch: "100%"

            """, hosts: targets)
        try app.writeAppspec("version: 1\nhooks:\n  validate: [{ run: test -f index.html }]\n")
        try app.repo.write("index.html", "v1\n")
        try app.commit("v1")
        let (deploy, events) = try app.ship(["deploy", "test"])
        #expect(deploy.status == 0, "\(deploy.stdout.suffix(3000))\(deploy.stderr)")
        #expect(named(events, "host_failed").isEmpty, "\(named(events, "host_failed").prefix(3))")
        #expect(Set(named(events, "host_succeeded").compactMap { $0["host"] as? String }) == Set(targets))
    }
}
