import ArgumentParser
import Foundation
import Hooks
import Shipper

struct Releases: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Each host's releases: revision, state, age and size; which is current, and which `ship rollback` would pick."
    )

    @Argument(help: "The environment (default: default_environment, or the only one).")
    var environment: String?

    @OptionGroup var output: OutputOptions
    @OptionGroup var options: ConfigOptions

    func run() async throws {
        let (config, env, agents, connections) = try await options.hostSession(environment: environment)
        let listing = await ReleaseListing.read(config: config, environment: env, agents: agents) { connections.transport(for: $0) }
        await connections.closeAll()
        let target = try? listing.rollbackTarget.get()
        let now = Date()
        if output.json {
            for host in listing.hosts {
                var object: [String: Any] = ["event": "host_releases", "time": Event.timestamp(now), "host": host.host,
                                             "current": host.current ?? NSNull()]
                if let error = host.error { object["error"] = error }
                object["releases"] = host.releases.map { info -> [String: Any] in
                    var release: [String: Any] = ["release": info.release, "state": info.state.rawValue,
                                                  "current": info.release == host.current, "rollback_target": info.release == target]
                    release["revision"] = info.revision ?? NSNull()
                    release["bytes"] = info.bytes ?? NSNull()
                    release["age_seconds"] = ReleaseListing.age(of: info.release, now: now).map { Int($0) } ?? NSNull()
                    return release
                }
                printJSON(object)
            }
            var summary: [String: Any] = ["event": "rollback_target", "time": Event.timestamp(now)]
            switch listing.rollbackTarget {
            case .success(let release): summary["release"] = release
            case .failure(let refusal): summary["release"] = NSNull(); summary["reason"] = refusal.message
            }
            printJSON(summary)
        } else {
            for host in listing.hosts {
                print("\(host.host):")
                if let error = host.error {
                    print("  UNREACHABLE: \(error)")
                    continue
                }
                if host.releases.isEmpty { print("  no releases") }
                for info in host.releases.reversed() {
                    var notes: [String] = []
                    if info.release == host.current { notes.append("current") }
                    if info.release == target { notes.append("rollback target") }
                    let age = ReleaseListing.age(of: info.release, now: now).map(Self.age) ?? "-"
                    let size = info.bytes.map(ByteCount.format) ?? "-"
                    let columns = [
                        (info.release == host.current ? "* " : "  ") + info.release,
                        String((info.revision ?? "-").prefix(12)).padding(toLength: 12, withPad: " ", startingAt: 0),
                        info.state.rawValue.padding(toLength: 10, withPad: " ", startingAt: 0),
                        age.padding(toLength: 8, withPad: " ", startingAt: 0),
                        size.padding(toLength: 9, withPad: " ", startingAt: 0),
                        notes.joined(separator: ", "),
                    ]
                    print("  " + columns.joined(separator: "  "))
                }
            }
            switch listing.rollbackTarget {
            case .success(let release): print("ship rollback would go to \(release)")
            case .failure(let refusal): print("ship rollback would refuse: \(refusal.message)")
            }
        }
        if listing.hosts.contains(where: { $0.error != nil }) { throw ExitCode(ShipError.ExitCode.preflight.rawValue) }
    }

    static func age(_ seconds: TimeInterval) -> String {
        let minutes = Int(seconds) / 60
        if minutes < 60 { return "\(minutes)m" }
        if minutes < 48 * 60 { return "\(minutes / 60)h" }
        return "\(minutes / 1440)d"
    }
}
