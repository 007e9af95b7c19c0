import Foundation
import Testing
@testable import Shipper

/// A small deterministic generator (SplitMix64): the same seed gives the same documents, so a
/// failure can be replayed.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Generated ship.yml and appspec.yml documents: random shapes, huge and negative numbers,
/// look-alike hosts, broken YAML. Decoding each must give a configuration or a usage error
/// (exit 2), never a crash; what decodes must plan batches and key hosts without trapping.
@Suite("configuration fuzzing")
struct ConfigFuzzTests {
    static let scalars = [
        "0", "-1", "1", "2", "50%", "\"150%\"", "9223372036854775807", "-9223372036854775808",
        "99999999999999999999999", "1e308", "-.inf", ".nan", "0x7fffffffffffffff", "true", "null", "~", "\"\"",
        "'it''s'", "\"\\u0000\"", "\"a\\nb\"", "é✓", "/srv/shop", "srv/../etc", "/", "../x", "[]", "{}", "&a x", "*a",
        "\"-oProxyCommand=x\"", "web1", "\"web1:22\"", "\"[::1]:22\"", "\"::1:22\"", "deploy@web1", "\"web1:0\"",
    ]
    static let hostEntries = [
        "web1", "\"web1:22\"", "{ host: web1, ssh: { port: 22 } }", "{ host: web1 }", "\"[::1]:22\"", "\"::1:22\"",
        "{ host: \"::1\", ssh: { port: 22 } }", "deploy@web1", "{ host: web2, roles: [migrate, migrate] }",
        "{ host: web3, env: { A: 1, A: 2 } }", "{ host: web4, ssh: { user: \"\" } }", "\"web5:65536\"", "\"-web6\"",
        "{ host: web7, ssh: { port: 99999999999999999999 } }", "{ host: web8, roles: [\"bad role\"] }",
    ]
    static let keys = ["app", "deploy_to", "keep_releases", "ssh", "shared", "default_environment", "environments",
                       "revision", "hosts", "batch", "max_fail", "rollback", "env", "backup", "deploy_on_push", "kep_releases"]

    /// Values that are valid where the generator puts them, for the documents that should decode.
    static let validHosts = ["web1", "\"web2:2222\"", "{ host: web3, roles: [migrate] }", "\"[::1]:22\"", "deploy@web4",
                             "{ host: web5, ssh: { user: admin, port: 22 }, env: { A: 1 } }", "10.0.0.9"]
    static let validBatches = ["1", "2", "\"50%\"", "[1, \"50%\"]", "9223372036854775807", "[\"100%\"]"]

    static func shipDocument(_ random: inout SeededGenerator) -> String {
        func pick(_ list: [String]) -> String { list[Int(random.next() % UInt64(list.count))] }
        // Half the documents are hostile throughout; the others are valid but for rare mistakes.
        let hostile = Bool.random(using: &random)
        func value(_ valid: [String]) -> String { hostile || random.next() % 20 == 0 ? pick(scalars) : pick(valid) }
        var lines = ["app: \(value(["shop", "a-1"]))", "deploy_to: \(value(["/srv/shop", "/var/www/x"]))"]
        if hostile { for _ in 0..<Int(random.next() % 3) { lines.append("\(pick(keys)): \(pick(scalars))") } }
        lines.append("environments:")
        for environment in 0..<Int(random.next() % 3 + 1) {
            lines.append("  e\(environment):")
            var hosts = (0..<Int(random.next() % 4 + 1)).map { _ in hostile ? pick(hostEntries) : pick(validHosts) }
            if !hostile { hosts = Array(Set(hosts)) }
            lines.append("    hosts: [\(hosts.joined(separator: ", "))]")
            if hostile { for _ in 0..<Int(random.next() % 4) { lines.append("    \(pick(keys)): \(pick(scalars))") } }
            if Bool.random(using: &random) { lines.append("    batch: \(value(validBatches))") }
            if Bool.random(using: &random) { lines.append("    keep_releases: \(value(["1", "3", "9223372036854775807"]))") }
            if Bool.random(using: &random) { lines.append("    max_fail: \(value(["0", "2", "9223372036854775807"]))") }
        }
        guard hostile else { return lines.joined(separator: "\n") + "\n" }
        var text = lines.joined(separator: "\n") + "\n"
        // Now and then, damage the text itself.
        if random.next() % 4 == 0, !text.isEmpty {
            var bytes = Array(text.utf8)
            let noise = Array(":[]{}-&*!|>'\"#%@` \t\n".utf8)
            for _ in 0..<Int(random.next() % 4 + 1) {
                let index = Int(random.next() % UInt64(bytes.count))
                bytes[index] = noise[Int(random.next() % UInt64(noise.count))]
            }
            text = String(decoding: bytes, as: UTF8.self)
        }
        return text
    }

    static func appspecDocument(_ random: inout SeededGenerator) -> String {
        func pick(_ list: [String]) -> String { list[Int(random.next() % UInt64(list.count))] }
        let codeDeploy = Bool.random(using: &random)
        var lines = codeDeploy ? ["version: 0.0", "os: linux", "hooks:"] : ["version: 1", "hooks:"]
        let events = codeDeploy ? ["ApplicationStop", "BeforeInstall", "AfterInstall", "ApplicationStart", "ValidateService"]
            : ["stop", "install", "migrate", "start", "validate"]
        for _ in 0..<Int(random.next() % 4 + 1) {
            lines.append("  \(pick(events)):")
            for _ in 0..<Int(random.next() % 4 + 1) {
                let command = codeDeploy ? "location: s.sh" : "run: echo"
                let timeout = random.next() % 2 == 0 ? pick(scalars) : pick(["1", "60", "3600", "86400"])
                let runas = random.next() % 2 == 0 ? pick(["\"\"", "1", "null"]) : "www-data"
                lines.append("    - { \(command), timeout: \(timeout), runas: \(runas) }")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    @Test("3,000 generated ship.yml files: a configuration or an exit-2 error, never a crash")
    func shipYAML() {
        var random = SeededGenerator(state: 20_261_203)
        var decoded = 0
        for _ in 0..<3000 {
            let text = Self.shipDocument(&random)
            do {
                let config = try ConfigLoader.decode(yaml: text, file: "/work/app/ship.yml", displayName: "ship.yml")
                decoded += 1
                for environment in config.environments {
                    let plan = BatchPlan(hosts: Deployment.orderedHosts(environment.hosts), spec: environment.batch)
                    #expect(plan.batches.flatMap { $0 }.count == environment.hosts.count)
                    // Hosts are keyed by their description everywhere: it must be unique.
                    #expect(Set(environment.hosts.map(\.description)).count == environment.hosts.count, "\(text)")
                }
            } catch {
                #expect(error.exitCode == .usage, "\(text)\n\(error)")
                #expect(error.location != nil, "a configuration error names the file: \(error)")
            }
        }
        #expect(decoded > 50, "the generator also makes valid configurations (\(decoded))")
    }

    @Test("3,000 generated appspec.yml files: an appspec or an exit-2 error, never a crash")
    func appspecYAML() {
        var random = SeededGenerator(state: 42)
        var decoded = 0
        for _ in 0..<3000 {
            let text = Self.appspecDocument(&random)
            do {
                _ = try AppspecDecoder.decode(yaml: text, file: "appspec.yml")
                decoded += 1
            } catch {
                #expect(error.exitCode == .usage, "\(text)\n\(error)")
            }
        }
        #expect(decoded > 50, "the generator also makes valid appspecs (\(decoded))")
    }

    @Test("the same host written two ways is one host listed twice", arguments: [
        ("\"web1:22\"", "{ host: web1, ssh: { port: 22 } }"),
        ("\"[::1]:22\"", "{ host: \"::1\", ssh: { port: 22 } }"),
        ("{ host: web1 }", "web1"),
    ])
    func lookAlikeHosts(_ pair: (String, String)) {
        let yaml = "app: shop\ndeploy_to: /srv/shop\nenvironments:\n  prod:\n    hosts: [\(pair.0), \(pair.1)]\n"
        do {
            let config = try ConfigLoader.decode(yaml: yaml, file: "/work/app/ship.yml", displayName: "ship.yml")
            Issue.record("accepted: \(config.environments[0].hosts)")
        } catch {
            #expect(error.description.contains("is listed twice"), "\(error)")
            #expect(error.exitCode == .usage)
        }
    }
}
