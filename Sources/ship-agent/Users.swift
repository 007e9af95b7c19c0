#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import FoundationEssentials
import Hooks

/// Users without NSS: a static executable must not call getpwnam/getpwuid (glibc would load the
/// host's NSS modules, built for another glibc). The agent's own name comes from /etc/passwd
/// (or the USER sshd sets); a `runas` user is looked up by the host's own `getent`.
enum Users {
    /// The name of the agent's effective user, if /etc/passwd or $USER knows it.
    static func currentName() -> String? {
        fromPasswdFile(geteuid()) ?? ProcessInfo.processInfo.environment["USER"]
    }

    static func fromPasswdFile(_ uid: uid_t) -> String? {
        guard let data = FileManager.default.contents(atPath: "/etc/passwd") else { return nil }
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            let fields = line.split(separator: ":", omittingEmptySubsequences: false)
            if fields.count > 2, UInt32(fields[2]) == uid { return String(fields[0]) }
        }
        return nil
    }

    /// The name of a user id, from /etc/passwd or the host's `getent` (LDAP users too).
    static func name(of uid: uid_t) -> String? {
        if let name = fromPasswdFile(uid) { return name }
        let found = Helper.run(["getent", "passwd", String(uid)])
        guard found.status == 0 else { return nil }
        return found.output.split(separator: ":").first.map(String.init)
    }

    /// Why hooks cannot run as `user` on this host, or nil when they can: the user must exist,
    /// and an agent that is not root must be allowed to start itself as that user with
    /// `sudo -n` (the narrow sudoers line, which this checks by running exactly that command).
    static func runasProblem(_ user: String, agentPath: String) -> (message: String, hint: String)? {
        let me = currentName() ?? "uid \(geteuid())"
        let lookup = Helper.run(["getent", "passwd", user])
        if lookup.status == 2 {
            return ("runas user '\(user)' does not exist on this host",
                    "create the user (e.g. `useradd --system \(user)`), or change `runas:` in appspec.yml")
        }
        if lookup.status != 0 {
            return ("cannot look up runas user '\(user)' (getent exit \(lookup.status)): \(lookup.output.trimmed)",
                    "check the host's user database (`getent passwd \(user)`)")
        }
        if geteuid() == 0 || user == me { return nil }
        let line = "\(me) ALL=(\(user)) NOPASSWD: \(agentPath) exec-hook"
        let hint = "as root on the host: echo '\(line)' > /etc/sudoers.d/ship && chmod 440 /etc/sudoers.d/ship (docs/installing.md)"
        guard Child.findOnPath(["sudo"]) != nil else {
            return ("runas \(user): sudo is not installed, and \(me) needs it to run hooks as \(user)",
                    "install sudo (apt-get install sudo), then " + hint)
        }
        let check = Helper.run(["sudo", "-n", "-u", user, "--", agentPath, "exec-hook"])
        guard check.status == 0 else {
            let said = check.output.trimmed.split(separator: "\n").last.map(String.init) ?? "exit \(check.status)"
            return ("runas \(user): \(me) cannot run hooks as \(user) through sudo without a password (\(said))", hint)
        }
        return nil
    }
}
