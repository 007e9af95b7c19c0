import ArgumentParser
import Foundation
import Shipper

struct Rollback: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Move every host to the newest release good on every host before current, or to --to RELEASE or REVISION."
    )

    @Argument(help: "The environment (default: default_environment, or the only one).")
    var environment: String?

    @Option(help: ArgumentHelp("Roll back to this release (a name under deploy_to/releases), or to the newest good release of this revision.", valueName: "RELEASE"))
    var to: String?

    @Option(name: .customLong("lock-wait"), help: ArgumentHelp("Wait up to SECONDS for a held lock instead of exiting 4.", valueName: "SECONDS"))
    var lockWait: Double?

    @Flag(name: .customLong("dry-run"), help: "Print where each host would go, and change nothing.")
    var dryRun = false

    @OptionGroup var output: OutputOptions
    @OptionGroup var options: ConfigOptions

    func run() async throws {
        try await EnvironmentRun.run(environment, request: DeployRequest(lockWait: lockWait), options: options, output: output,
                                     reporter: dryRun && !output.json ? PlainReporter() : nil) { deployment, config in
            // --to may name a revision or tag: the newest good release of that commit.
            var revision: String?
            if let to, to.range(of: #"^[0-9]{14}$"#, options: .regularExpression) == nil {
                revision = try? GitRepository.open(containing: config.directory).resolve(to).commit // not a revision here: matched as given
            }
            return dryRun ? await deployment.rollbackDryRun(to: to, requestedRevision: revision)
                : await deployment.rollback(to: to, requestedRevision: revision)
        }
    }
}

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Each host's current release and revision, read live; hosts that differ are flagged."
    )

    @Argument(help: "The environment (default: default_environment, or the only one).")
    var environment: String?

    @OptionGroup var output: OutputOptions
    @OptionGroup var options: ConfigOptions

    func run() async throws {
        let (config, env, agents, connections) = try await options.hostSession(environment: environment)
        let hosts = await StatusReport.status(config: config, environment: env, agents: agents) { connections.transport(for: $0) }
        await connections.closeAll()
        if output.json {
            for host in hosts {
                var object: [String: Any] = ["event": "host_status", "time": Event.timestamp(Date()), "host": host.host,
                                             "reachable": host.reachable, "flags": host.flags]
                object["release"] = host.release ?? NSNull()
                object["revision"] = host.revision ?? NSNull()
                if let error = host.error { object["error"] = error }
                if let lock = host.lock {
                    object["locked_by"] = lock.holder
                    object["lock"] = lock.described()
                }
                printJSON(object)
            }
        } else {
            let width = max(4, hosts.map(\.host.count).max() ?? 4)
            print("HOST".padding(toLength: width, withPad: " ", startingAt: 0) + "  RELEASE         REVISION      NOTES")
            for host in hosts {
                var notes = host.flags
                if let error = host.error { notes.insert((host.reachable ? "error: " : "UNREACHABLE: ") + error, at: 0) }
                if let lock = host.lock { notes.append("locked by \(lock.described()); `ship unlock` removes it if stale") }
                let release = (host.release ?? "-").padding(toLength: 14, withPad: " ", startingAt: 0)
                let revision = String((host.revision ?? "-").prefix(12)).padding(toLength: 12, withPad: " ", startingAt: 0)
                print(host.host.padding(toLength: width, withPad: " ", startingAt: 0) + "  \(release)  \(revision)  " + notes.joined(separator: "; "))
            }
        }
        if hosts.contains(where: { $0.error != nil }) { throw ExitCode(ShipError.ExitCode.preflight.rawValue) }
        // Drift (hosts on different releases, or not on the last successful deployment's) is a failure.
        if hosts.contains(where: \.drifted) { throw ExitCode(ShipError.ExitCode.failed.rawValue) }
    }
}

struct History: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Past deployments and rollbacks, newest first, from the hosts' journals."
    )

    @Argument(help: "The environment (default: default_environment, or the only one).")
    var environment: String?

    @Option(help: "How many to show.")
    var limit: Int = 20

    @OptionGroup var output: OutputOptions
    @OptionGroup var options: ConfigOptions

    func run() async throws {
        guard limit >= 1 else { throw ShipError.usage("--limit must be at least 1") }
        let (config, env, agents, connections) = try await options.hostSession(environment: environment)
        let (records, unreachable) = await StatusReport.history(config: config, environment: env, agents: agents, limit: limit) {
            connections.transport(for: $0)
        }
        await connections.closeAll()
        for record in records {
            if output.json {
                var object: [String: Any] = ["event": record.kind == "rollback" ? "rollback" : "deployment", "time": record.started,
                                             "deployment_id": record.id, "status": record.status, "hosts": record.hosts]
                object["revision"] = record.revision ?? NSNull()
                object["release"] = record.release ?? NSNull()
                object["user"] = record.user ?? NSNull()
                object["finished"] = record.finished ?? NSNull()
                object["duration"] = record.duration.map { ($0 * 10).rounded() / 10 } ?? NSNull()
                printJSON(object)
            } else {
                let duration = record.duration.map { String(format: "%.0fs", $0) } ?? "-"
                let hosts = record.hosts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
                print("\(record.id)  \(record.kind.padding(toLength: 8, withPad: " ", startingAt: 0))  \(record.started.prefix(19))  "
                    + "\(duration.padding(toLength: 5, withPad: " ", startingAt: 0))  \(record.status.padding(toLength: 11, withPad: " ", startingAt: 0))  "
                    + "\(String((record.revision ?? "-").prefix(12)))  \(record.release ?? "-")  \(record.user ?? "-")  [\(hosts)]")
            }
        }
        if records.isEmpty && !output.json { print("no deployments recorded for \(env.name)") }
        if !unreachable.isEmpty {
            FileHandle.standardError.writeQuietly(Data("warning: not read (unreachable): \(unreachable.joined(separator: ", "))\n".utf8))
        }
    }
}

func printJSON(_ object: [String: Any]) {
    guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else { return }
    print(String(decoding: data, as: UTF8.self))
}
