import Foundation
import Hooks

/// `ship unlock`: remove whatever lock an environment's hosts hold.
public enum Locks {
    public struct Outcome: Sendable {
        public var host: String
        /// The holder whose lock was removed, or nil when there was none.
        public var result: Result<LockInfo?, HostError>
    }

    public static func forceUnlock(config: ShipConfig, environment: Environment,
                                   makeTransport: @Sendable (Host) -> any Transport) async -> [Outcome] {
        var outcomes: [Outcome] = []
        // lock: store: the store's lock too, reported as the store's.
        if environment.lockInStore, let settings = environment.artifacts {
            let name = "s3://\(settings.bucket)"
            do throws(ShipError) {
                let store = EnvironmentStore(artifacts: try ArtifactStore(settings, app: config.app), environment: environment.name)
                outcomes.append(Outcome(host: store.artifacts.client.describe(store.lockKey), result: .success(try store.forceUnlock())))
            } catch {
                outcomes.append(Outcome(host: name, result: .failure(HostError(host: name, step: "unlock", message: error.description,
                                                                                unreachable: false, hint: error.hint))))
            }
        }
        for host in environment.hosts {
            let client = AgentClient(transport: makeTransport(host), deployTo: environment.deployTo)
            var request = client.request(.unlock)
            request.force = true
            do {
                // Without an agent on the host there is no lock either.
                let probe = await client.transport.run(ShellLine(RemoteCommand(["test", "-x", client.deployTo + "/.ship/bin/ship-agent"])), input: .none) { _ in }
                try client.failIfUnreachable(probe, step: "connect")
                if probe.status != 0 {
                    outcomes.append(Outcome(host: host.description, result: .success(nil)))
                    continue
                }
                let result = try await client.require(request)
                outcomes.append(Outcome(host: host.description, result: .success(result.lock)))
            } catch {
                outcomes.append(Outcome(host: host.description, result: .failure(error)))
            }
        }
        return outcomes
    }
}
