import Foundation
import Hooks

/// Hosts that joined the environment while a deployment ran: with `inventory:`, the instances an
/// autoscaler started meanwhile, which installed themselves (`ship-agent pull`) from the release
/// the store named when they booted. Once every host validated and the store names the new
/// release, the inventory is read again and the newcomers get it as `ship sync` gives it: every
/// hook but migrate, in the environment's batches. Their own pull, if still running, follows the
/// store to the new release before the instance goes in service.
extension Deployment {
    struct CatchUp: Sendable {
        var hosts: [String]
        var result: DeploymentResult
    }

    func catchUp(deployed hosts: [Host], release: String, revision: String) async -> CatchUp? {
        guard environment.inventory != nil, request.sync == nil, !interruption.requested else { return nil }
        let resolved: Environment
        do {
            resolved = try await Inventory.resolve(environment)
        } catch {
            reporter.report(Event(.hostWarning(message: "cannot read the inventory again to catch up hosts that joined during the deployment: "
                + "\(error.description); run ship sync \(environment.name)")))
            return nil
        }
        let known = Set(hosts.map(\.description))
        let joined = resolved.hosts.filter { !known.contains($0.description) }
        guard !joined.isEmpty else { return nil }
        let names = joined.map(\.description)
        reporter.report(Event(.hostStep(step: "\(names.count) host\(names.count == 1 ? "" : "s") joined during the deployment "
            + "(\(names.joined(separator: ", "))): bringing \(names.count == 1 ? "it" : "them") to \(revision.prefix(12)) as ship sync does")))
        var subset = environment
        subset.hosts = joined
        var deployment = Deployment(config: config, environment: subset, request: request, agents: agents,
                                    reporter: NestedRunReporter(reporter), interruption: interruption, makeTransport: makeTransport)
        deployment.secrets = secrets
        return CatchUp(hosts: names, result: await deployment.sync(to: (release, revision)))
    }
}

/// A run inside another (a catch-up inside a deployment): its start and end are steps of the
/// outer run, whose own `deployment_finished` stays the last line.
struct NestedRunReporter: Reporter {
    let outer: any Reporter

    init(_ outer: any Reporter) {
        self.outer = outer
    }

    func report(_ event: Event) {
        switch event.kind {
        case .deploymentStarted(let id, _, _, let release, let hosts):
            outer.report(Event(.hostStep(step: "catch-up \(id): release \(release) on \(hosts.joined(separator: ", "))")))
        case .deploymentFinished(let status, _, let id, let message):
            outer.report(Event(.hostStep(step: "catch-up \(id) \(status)" + (message.map { ": \($0)" } ?? ""))))
        default:
            outer.report(event)
        }
    }
}
