#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CSpawn
import FoundationEssentials
import Hooks

/// How an agent that is not root reaches `ship-agent give-owner` (GiveOwner.swift): a root-owned
/// copy of the agent at `path`, run with `sudo -n` under a sudoers line that names deploy_to and
/// the owner. Owners it has given are remembered in `.ship/owners`, so that a prune can ask the
/// same helper to delete a release that holds their files.
enum OwnerHelper {
    static let path = "/usr/local/libexec/ship-agent"

    /// An owner the appspec's permissions give files to, with its group.
    struct Owner: Hashable, Codable, Comparable {
        var user: String
        var group: String?

        var arguments: [String] { [user] + (group.map { [$0] } ?? []) }

        static func < (left: Owner, right: Owner) -> Bool { left.arguments.lexicographicallyPrecedes(right.arguments) }
    }

    static func command(deployTo: String, owner: Owner) -> [String] {
        ["sudo", "-n", "--", path, "give-owner", deployTo] + owner.arguments
    }

    /// The sudoers line that allows exactly this command, and how to install it with the helper.
    static func setup(user: String, deployTo: String, owner: Owner) -> (line: String, hint: String) {
        let line = "\(user) ALL=(root) NOPASSWD: \(path) give-owner \(deployTo) \(owner.arguments.joined(separator: " "))"
        let hint = "as root on the host, once: install -D -o root -g root -m 0755 \(deployTo)/.ship/bin/ship-agent \(path) && "
            + "echo '\(line)' > /etc/sudoers.d/ship-owner && chmod 440 /etc/sudoers.d/ship-owner (docs/installing.md)"
        return (line, hint)
    }

    /// Why the helper cannot give files to `owner` here, with the fix; nil when it can (the
    /// preflight runs the exact command with nothing to do).
    static func problem(deployTo: String, owner: Owner) -> (message: String, hint: String)? {
        let me = Operations.userName()
        let (_, hint) = setup(user: me, deployTo: deployTo, owner: owner)
        let wants = "permissions give files to \(owner.user)\(owner.group.map { ":" + $0 } ?? ""), which only root may do (ship runs as \(me))"
        guard Child.findOnPath(["sudo"]) != nil else {
            return ("\(wants), and sudo is not installed", "install sudo (apt-get install sudo), then " + hint)
        }
        guard access(path, X_OK) == 0 else {
            return ("\(wants), through the root-owned helper \(path), which is not installed", hint)
        }
        let check = Helper.run(command(deployTo: deployTo, owner: owner), input: [])
        guard check.status == 0 else {
            let said = check.output.trimmed.split(separator: "\n").last.map(String.init) ?? "exit \(check.status)"
            return ("\(wants), and sudo does not let \(me) run the helper for that without a password (\(said))", hint)
        }
        return nil
    }

    static func requests(_ verb: String, _ paths: [String]) -> [UInt8] {
        var bytes: [UInt8] = []
        for path in paths {
            bytes += Array("\(verb)\t\(path)".utf8).filter { $0 != 0 }
            bytes.append(0)
        }
        return bytes
    }
}

extension Operations {
    var ownersFile: String { layout.state + "/owners" }

    /// The owners the helper has given files to on this host.
    func knownOwners() -> [OwnerHelper.Owner] {
        guard let data = files.contents(atPath: ownersFile) else { return [] }
        return (try? JSONDecoder().decode([OwnerHelper.Owner].self, from: data)) ?? []
    }

    /// Gives the release's paths (below `releases/`) to their owners through the helper.
    func giveThroughHelper(_ toGive: [OwnerHelper.Owner: [String]]) throws {
        guard !toGive.isEmpty else { return }
        let known = knownOwners()
        let all = Array(Set(known).union(toGive.keys)).sorted()
        if all != known.sorted() { try writeAtomically(try JSONEncoder().encode(all), to: ownersFile) }
        let prefix = layout.deployTo + "/"
        for (owner, paths) in toGive.sorted(by: { $0.key < $1.key }) {
            let relative = paths.map { $0.hasPrefix(prefix) ? String($0.dropFirst(prefix.count)) : $0 }
            let given = Helper.run(OwnerHelper.command(deployTo: layout.deployTo, owner: owner),
                                        input: OwnerHelper.requests("give", relative))
            guard given.status == 0 else {
                let lines = given.output.trimmed.split(separator: "\n")
                throw AgentError("permissions: the helper did not give \(lines.count) of \(paths.count) paths to \(owner.user): "
                                 + (lines.first.map(String.init) ?? "exit \(given.status)"),
                                 hint: OwnerHelper.problem(deployTo: layout.deployTo, owner: owner)?.hint)
            }
        }
    }

    /// Asks the helper to delete `.ship/trash/NAME`, under any owner it has given files to;
    /// whether it did.
    func removeThroughHelper(_ name: String) -> Bool {
        guard geteuid() != 0 else { return false }
        for owner in knownOwners() {
            let removed = Helper.run(OwnerHelper.command(deployTo: layout.deployTo, owner: owner),
                                          input: OwnerHelper.requests("remove", [name]))
            if removed.status == 0 { return true }
        }
        return false
    }
}
