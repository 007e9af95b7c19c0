import Foundation

/// Scratch files and directories that carry the name of the process that made them
/// (`…~MACHINE~PID…`), so that a later run can tell which ones a killed `ship` left behind
/// (same machine, process gone) and remove them, without touching a live run's.
public enum Leftovers {
    /// `~MACHINE~PID`: what this process puts in the names of its scratch files.
    public static var tag: String { "~\(machine)~\(getpid())" }

    static var machine: String {
        ProcessInfo.processInfo.hostName.replacingOccurrences(of: "~", with: "-")
    }

    /// Whether `name` carries the tag of a process of this machine that is gone.
    static func isAbandoned(_ name: String) -> Bool {
        let parts = name.split(separator: "~", omittingEmptySubsequences: false)
        guard parts.count >= 3, String(parts[1]) == machine else { return false }
        let digits = parts[2].prefix { $0.isNumber }
        guard let pid = Int32(digits), pid > 0, pid != getpid() else { return false }
        return kill(pid, 0) != 0 && errno == ESRCH
    }

    /// Removes what killed runs left in `directory`: entries whose names start with `prefix`,
    /// end with `suffix` and carry a dead process's tag; untagged ones older than `untaggedAge`
    /// seconds (from versions that did not tag) go too. Returns the names removed.
    @discardableResult
    public static func removeAbandoned(in directory: String, prefix: String, suffix: String = "",
                                       untaggedAge: TimeInterval? = nil) -> [String] {
        let files = FileManager.default
        var removed: [String] = []
        for name in (try? files.contentsOfDirectory(atPath: directory)) ?? []
        where name.hasPrefix(prefix) && name.hasSuffix(suffix) {
            let path = directory + "/" + name
            var abandoned = isAbandoned(name)
            if !abandoned, !name.contains("~"), let untaggedAge,
               let modified = (try? files.attributesOfItem(atPath: path))?[.modificationDate] as? Date {
                abandoned = Date().timeIntervalSince(modified) > untaggedAge
            }
            // A leftover that cannot be removed now is retried by the next run.
            if abandoned, (try? files.removeItem(atPath: path)) != nil { removed.append(name) }
        }
        return removed
    }
}
