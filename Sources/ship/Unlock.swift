import ArgumentParser
import Foundation
import Shipper

struct Unlock: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Remove a stale deploy lock from an environment's hosts, saying whose it was."
    )

    @Argument(help: "The environment (default: default_environment, or the only one).")
    var environment: String?

    @OptionGroup var options: ConfigOptions

    func run() async throws {
        let config = try options.load()
        let env = try await Inventory.resolve(try config.environment(named: environment))
        let connections = try SSHConnections(settings: env.ssh)
        let outcomes = await Locks.forceUnlock(config: config, environment: env) { connections.transport(for: $0) }
        await connections.closeAll()
        var failed = false
        for outcome in outcomes {
            switch outcome.result {
            case .success(let holder?):
                print("\(outcome.host): removed the lock of \(holder.holder) (deployment \(holder.deploymentId), since \(holder.started))")
            case .success(nil):
                print("\(outcome.host): not locked")
            case .failure(let error):
                failed = true
                FileHandle.standardError.writeQuietly(Data("error: \(error)\n".utf8))
            }
        }
        if failed { throw ExitCode(ShipError.ExitCode.preflight.rawValue) }
    }
}
