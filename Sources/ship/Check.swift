import ArgumentParser
import Foundation
import Hooks
import Shipper

struct Check: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Validate ship.yml and the appspec.yml beside it; with --hosts, also reach every host."
    )

    @Argument(help: "The environment to check (default: every environment).")
    var environment: String?

    @Flag(help: "Also connect to every host over ssh (exit 5 when one cannot be reached).")
    var hosts = false

    @OptionGroup var options: ConfigOptions

    func run() async throws {
        let config = try options.load()
        let environments = try environment.map { [try config.environment(named: $0)] } ?? config.environments
        let cwd = FileManager.default.currentDirectoryPath
        print("\(ConfigLoader.display(config.file, relativeTo: cwd)): ok (app \(config.app))")
        for env in environments {
            let hosts = env.hosts.map(\.description).joined(separator: ", ")
            var line = "  \(env.name): \(env.hosts.count) host\(env.hosts.count == 1 ? "" : "s") (\(hosts)), deploy_to \(env.deployTo), "
                + "keep_releases \(env.keepReleases), batch \(env.batch), "
                + "\(env.failureLimit.map { "\($0) (\(env.allowedFailures) of \(env.hosts.count) hosts may fail)" } ?? "max_fail \(env.maxFail)"), rollback \(env.rollback.rawValue), revision \(env.revision ?? "HEAD")"
            if let branch = env.deployOnPush { line += ", deploys on push to \(branch)" }
            if env.backup != nil { line += ", backups configured" }
            if let inventory = env.inventory { line += ", and the instances of inventory aws (\(Inventory.describe(inventory)))" }
            if let traffic = env.traffic { line += ", traffic \(traffic.name)" }
            print(line)
        }
        let appspecPath = ConfigLoader.display((config.directory as NSString).appendingPathComponent(ConfigLoader.appspecName), relativeTo: cwd)
        var warnings: [ShipError] = []
        if let appspec = try ConfigLoader.loadAppspec(besides: config, warn: { warnings.append($0) }) {
            try AppspecDecoder.checkScripts(appspec, file: appspecPath) { path in ConfigLoader.workTreeKind(path, besides: config) }
            try AppspecDecoder.checkFiles(appspec, file: appspecPath) { path in ConfigLoader.workTreeKind(path, besides: config) }
            let format = appspec.format == .ship ? "version 1" : "AWS CodeDeploy 0.0"
            print("\(appspecPath): ok (\(format))")
            for warning in warnings {
                print("  warning: \(warning.description)" + (warning.hint.map { " (\($0))" } ?? ""))
            }
            let copies = Set(appspec.files.map(\.source).filter { ConfigLoader.workTreeKind($0, besides: config) != .directory && $0 != "/" })
            for line in AppspecSummary.lines(appspec, copies: copies) { print("  " + line) }
        } else {
            print("\(appspecPath): none (the deployed revision's appspec.yml is used; without one, no hooks run)")
        }
        guard hosts else { return }
        // Without a usable local agent, only reachability is checked (and said).
        let agents: AgentCatalog?
        do {
            agents = try AgentCatalog.locate()
        } catch {
            agents = nil
            print("  (agent not checked: \(error.message))")
        }
        var unreachable = 0
        for declared in environments {
            let env = try await Inventory.resolve(declared)
            if let inventory = declared.inventory {
                let found = env.hosts.filter { $0.instanceId != nil }
                print("  \(env.name): inventory aws (\(Inventory.describe(inventory))): \(found.count) instance\(found.count == 1 ? "" : "s")"
                      + (found.isEmpty ? "" : ": " + found.map { $0.name == $0.instanceId ? $0.description : "\($0.description) (\($0.instanceId ?? ""))" }.joined(separator: ", ")))
            }
            let connections = try SSHConnections(settings: env.ssh)
            let outcomes = await HostCheck.run(config: config, environment: env, agents: agents) { connections.transport(for: $0) }
            await connections.closeAll()
            for outcome in outcomes {
                switch outcome.result {
                case .success(let state): print("  \(env.name) \(outcome.host): \(state)")
                case .failure(let error):
                    unreachable += 1
                    print("  \(env.name) \(outcome.host): UNREACHABLE: \(error.message)")
                }
            }
        }
        if unreachable > 0 {
            throw ShipError("\(unreachable) host\(unreachable == 1 ? "" : "s") could not be reached",
                            hint: "try `ssh HOST` with the same ssh settings; ship uses your OpenSSH client and its config",
                            exitCode: .preflight)
        }
    }
}
