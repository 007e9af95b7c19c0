import Foundation
import Hooks

/// git push deploys: the post-receive hook `ship hook install` writes, and what it runs.
public enum PushDeploy {
    /// The line that marks a post-receive hook as ship's.
    static let marker = "# ship post-receive hook: written by `ship hook install`"

    /// Writes `GIT_DIR/hooks/post-receive` calling `ship`. Idempotent; a hook of another tool is
    /// kept and chained (moved to post-receive.before-ship, run first with the same input).
    /// Returns what was done, for the user.
    public static func install(gitDirectory: String, shipPath: String) throws(ShipError) -> String {
        let repository = try GitRepository.open(containing: gitDirectory)
        let hooks = (repository.gitDirectory as NSString).appendingPathComponent("hooks")
        let hook = hooks + "/post-receive"
        let chained = hooks + "/post-receive.before-ship"
        let files = FileManager.default
        do {
            try files.createDirectory(atPath: hooks, withIntermediateDirectories: true)
        } catch {
            throw ShipError("cannot create \(hooks): \(error.localizedDescription)")
        }
        var note = "installed \(hook)"
        if let existing = files.contents(atPath: hook).map({ String(decoding: $0, as: UTF8.self) }) {
            if existing.contains(marker) {
                note = "updated \(hook)"
            } else if files.fileExists(atPath: chained) {
                throw ShipError.usage("\(hook) is another tool's hook and \(chained) exists already",
                                      hint: "merge them by hand, then run `ship hook install` again")
            } else {
                guard rename(hook, chained) == 0 else {
                    throw ShipError("cannot move \(hook) aside: \(String(cString: strerror(errno)))")
                }
                note = "installed \(hook); the existing hook was kept as \(chained) and runs first"
            }
        }
        let script = """
            #!/bin/sh
            \(marker)
            # Pushes of a branch named by an environment's deploy_on_push in ship.yml deploy it.
            hooks=$(cd "$(dirname "$0")" && pwd)
            input=$(cat)
            if [ -x "$hooks/post-receive.before-ship" ]; then
              printf '%s\\n' "$input" | "$hooks/post-receive.before-ship" || exit $?
            fi
            printf '%s\\n' "$input" | exec \(ShellQuote.quote(shipPath)) hook post-receive --git-dir "$hooks/.."

            """
        let temporary = hook + ".ship-tmp"
        guard files.createFile(atPath: temporary, contents: Data(script.utf8), attributes: [.posixPermissions: 0o755]),
              rename(temporary, hook) == 0 else {
            throw ShipError("cannot write \(hook)")
        }
        return note
    }

    /// One pushed ref: `old new ref`.
    public struct Update: Sendable, Equatable {
        public var old: String
        public var new: String
        public var ref: String
    }

    public static func parse(_ input: String) -> [Update] {
        input.split(separator: "\n").compactMap { line in
            let parts = line.split(separator: " ").map(String.init)
            guard parts.count == 3 else { return nil }
            return Update(old: parts[0], new: parts[1], ref: parts[2])
        }
    }

    /// Deploys what the push asks for. Lines go to `say` (git shows them to the pusher as
    /// `remote:` lines). Returns the worst exit code.
    public static func run(gitDirectory: String, input: String, agents: AgentCatalog, reporter: any Reporter,
                           say: (String) -> Void,
                           makeConnections: (Environment) throws(ShipError) -> SSHConnections) async -> Int32 {
        var worst: Int32 = 0
        let repository: GitRepository
        do {
            repository = try GitRepository.open(containing: gitDirectory)
        } catch {
            say("ship: \(error.description)")
            return error.exitCode.rawValue
        }
        for update in parse(input) {
            guard update.ref.hasPrefix("refs/heads/") else {
                say("ship: ignoring \(update.ref) (not a branch)")
                continue
            }
            let branch = String(update.ref.dropFirst("refs/heads/".count))
            if update.new.allSatisfy({ $0 == "0" }) {
                say("ship: branch \(branch) deleted; nothing to deploy")
                continue
            }
            let config: ShipConfig
            do {
                guard let data = try repository.fileContents(ConfigLoader.fileName, at: update.new) else {
                    say("ship: \(branch) has no ship.yml at \(update.new.prefix(12)); nothing to deploy")
                    continue
                }
                config = try ConfigLoader.decode(yaml: String(decoding: data, as: UTF8.self),
                                                 file: (repository.gitDirectory as NSString).appendingPathComponent(ConfigLoader.fileName),
                                                 displayName: "ship.yml (at \(update.new.prefix(12)))")
            } catch {
                say("error: \(error.description)")
                if let hint = error.hint { say("hint: \(hint)") }
                worst = max(worst, error.exitCode.rawValue)
                continue
            }
            let environments = config.environments.filter { $0.deployOnPush == branch }
            guard !environments.isEmpty else {
                say("ship: no environment deploys on push to \(branch)")
                continue
            }
            for declared in environments {
                let environment: Environment
                do {
                    environment = try await Inventory.resolve(declared)
                } catch {
                    say("error: \(error.description)")
                    worst = max(worst, error.exitCode.rawValue)
                    continue
                }
                say("ship: deploying \(branch) (\(update.new.prefix(12))) to \(environment.name)")
                let connections: SSHConnections
                do {
                    connections = try makeConnections(environment)
                } catch {
                    say("error: \(error.description)")
                    worst = max(worst, error.exitCode.rawValue)
                    continue
                }
                let secrets: [String: String]
                do {
                    secrets = try Secrets.resolve(environment, directory: config.directory)
                } catch {
                    say("error: \(error.description)")
                    worst = max(worst, error.exitCode.rawValue)
                    continue
                }
                let notifier = Notifier(config: config, environment: environment, reporter: reporter)
                var deployment = Deployment(config: config, environment: environment,
                                            request: DeployRequest(environment: environment.name, revision: update.new),
                                            agents: agents, reporter: MaskingReporter(notifier, mask: SecretMask(values: secrets.values)),
                                            makeTransport: { connections.transport(for: $0) })
                deployment.secrets = secrets
                let result = await deployment.run()
                await connections.closeAll()
                await notifier.flush()
                if let hint = result.hint { say("hint: \(hint)") }
                worst = max(worst, result.exitCode?.rawValue ?? 0)
            }
        }
        return worst
    }
}
