#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import FoundationEssentials
import Hooks

/// CodeDeploy `permissions` applied to a new release as CodeDeploy applies them to what it
/// installs. Each `object` is a path on the host; ship finds what it installs there through the
/// appspec's `files` entries (the root or a directory of the revision at its destination, a single
/// file at `destination/NAME`) and sets the release's own paths, which the links show and the
/// copies take their mode and owner from. An object that is a file gets the entry's mode and owner
/// (if `type` has `file`); an object that is a directory gets them on the files and directories
/// below it (of the entry's `type`) whose path matches `pattern` (`**`: all, at any depth; else a
/// name with `*`, directly below) and no `except`. The object directory itself is left as it is,
/// and so are symlinks (shared paths among them). Every release is a fresh install, so everything
/// below counts.
///
/// An agent that is not root sets modes and its own groups itself; an owner other than its own
/// user is given by the root-owned helper (`OwnerHelper`, `ship-agent give-owner`) once every mode
/// is set, which only reaches the release's own paths: such an owner on a file ship copies
/// outside deploy_to is refused before anything switches.
struct Permissions {
    let release: String
    let entries: [Appspec.Permission]
    let files: [Appspec.FileMapping]
    /// Whether a directory source's destination takes copies (`Operations.mergesInto`).
    var mergesInto: (String) -> Bool = { _ in false }
    /// The agent's user when it is not root (owners other than it go through the helper).
    var deployUser: String? = geteuid() == 0 ? nil : Operations.userName()

    private let ids = IDs()

    struct Failure: Error {
        var message: String
    }

    /// Users' and groups' ids as looked up, by database and name.
    final class IDs {
        var known: [String: UInt32?] = [:]
        func lookup(_ database: String, _ name: String) -> UInt32? {
            if let id = known[database + ":" + name] { return id }
            let id = GiveOwner.lookup(database: database, name)
            known[database + ":" + name] = id
            return id
        }
    }

    struct Applied {
        /// How many paths the entries selected and set.
        var changed = 0
        /// What the helper must give away, by owner: the release's paths, in order.
        var toGive: [OwnerHelper.Owner: [String]] = [:]
    }

    /// Applies every entry's mode and what the agent's own user may change; returns what the
    /// helper still has to give to another user.
    func apply() throws(Failure) -> Applied {
        var seen: Set<String> = []
        var applied = Applied()
        for entry in entries {
            for target in targets(entry) {
                guard entry.types.contains(target.directory ? "directory" : "file") else { continue }
                guard seen.insert(target.path).inserted else {
                    throw Failure(message: "permissions: \(display(target.path)) is set by more than one entry (CodeDeploy refuses this too)")
                }
                if let owner = try set(target.path, entry) {
                    if let copiedTo = target.copiedTo {
                        throw Failure(message: "permissions: \(copiedTo) wants owner \(owner.user), and ship copies it outside the release, "
                                      + "where only root may give files to another user (ship runs as \(deployUser ?? "root"))")
                    }
                    applied.toGive[owner, default: []].append(target.path)
                }
                applied.changed += 1
            }
        }
        return applied
    }

    /// The release's paths that the entry's object, pattern and except select, through each
    /// `files` entry.
    func targets(_ entry: Appspec.Permission) -> [Target] {
        var found: [Target] = []
        let object = entry.object
        for mapping in files {
            let source = mapping.source == "/" ? release : release + "/" + mapping.source
            var info = stat()
            guard lstat(source, &info) == 0 else { continue }
            let kind = info.st_mode & S_IFMT
            // Where the source's content is installed on the host.
            let installed = kind == S_IFREG
                ? (mapping.destination == "/" ? "" : mapping.destination) + "/" + Self.name(of: mapping.source)
                : mapping.destination
            // Whether ship copies this entry's files there (a file, or a directory merged into one).
            let copied = mapping.source != "/" && (kind == S_IFREG || (kind == S_IFDIR && mergesInto(mapping.destination)))
            var selected: [(path: String, directory: Bool)] = []
            if let below = Self.relative(object, to: installed) {
                // The object is at or below what this entry installs.
                let base = below.isEmpty ? source : source + "/" + below
                guard lstat(base, &info) == 0 else { continue }
                if info.st_mode & S_IFMT == S_IFREG {
                    selected.append((base, false))
                } else if info.st_mode & S_IFMT == S_IFDIR {
                    selected += self.below(base, entry: entry)
                }
            } else if let above = Self.relative(installed, to: object), !above.isEmpty {
                // The object is a directory above what this entry installs: `**` reaches all of
                // it, a name pattern only a file installed directly in the object.
                let first = String(above.split(separator: "/")[0])
                guard !entry.except.contains(where: { Self.matches(first, $0) }) else { continue }
                if entry.pattern == "**" {
                    if kind == S_IFREG { selected.append((source, false)) } else if kind == S_IFDIR { selected += self.below(source, entry: entry) }
                } else if kind == S_IFREG, !above.contains("/"), Self.matches(first, entry.pattern) {
                    selected.append((source, false))
                }
            }
            found += selected.map { target in
                let inSource = target.path == source ? "" : String(target.path.dropFirst(source.count))
                let destination = kind == S_IFREG ? installed : installed + inSource
                return Target(path: target.path, directory: target.directory, copiedTo: copied ? destination : nil)
            }
        }
        // Two entries of `files` can install the same release path (the root and a directory of it).
        var unique: Set<String> = []
        return found.filter { unique.insert($0.path).inserted }
    }

    /// A path of the release that an entry selects, and where ship copies it (nil: linked).
    struct Target {
        var path: String
        var directory: Bool
        var copiedTo: String?
    }

    /// `path` relative to `root` when it is `root` or below it ("" for `root` itself).
    static func relative(_ path: String, to root: String) -> String? {
        if path == root { return "" }
        let prefix = root == "/" ? "/" : root + "/"
        return path.hasPrefix(prefix) ? String(path.dropFirst(prefix.count)) : nil
    }

    static func name(of path: String) -> String {
        path.split(separator: "/").last.map(String.init) ?? path
    }

    /// The entries below a directory that the entry's pattern and except select.
    private func below(_ base: String, entry: Appspec.Permission) -> [(path: String, directory: Bool)] {
        var found: [(String, Bool)] = []
        let everything = entry.pattern == "**"
        var pending = [base]
        while let directory = pending.popLast() {
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { continue }
            for name in names.sorted() {
                let path = directory + "/" + name
                var info = stat()
                guard lstat(path, &info) == 0 else { continue }
                let kind = info.st_mode & S_IFMT
                guard kind == S_IFREG || kind == S_IFDIR else { continue } // symlinks (shared paths) stay as they are
                let direct = directory == base
                if kind == S_IFDIR && everything { pending.append(path) }
                let selected = everything || (direct && Self.matches(name, entry.pattern))
                let excepted = direct && entry.except.contains { Self.matches(name, $0) }
                if selected && !excepted { found.append((path, kind == S_IFDIR)) }
            }
        }
        return found
    }

    /// Sets what the agent's user may set; returns the owner the helper must give the path to.
    private func set(_ path: String, _ entry: Appspec.Permission) throws(Failure) -> OwnerHelper.Owner? {
        if let mode = entry.mode, let bits = mode_t(mode, radix: 8) {
            guard chmod(path, bits) == 0 else {
                throw Failure(message: "permissions: cannot set mode \(mode) on \(display(path)): \(String(cString: strerror(errno)))")
            }
        }
        if let deployUser, let owner = entry.owner, owner != deployUser {
            return OwnerHelper.Owner(user: owner, group: entry.group)
        }
        guard entry.owner != nil || entry.group != nil else { return nil }
        // The host's own user database through getent (a static agent makes no NSS lookups), once per name.
        let uid = try entry.owner.map { name throws(Failure) in
            guard let id = ids.lookup("passwd", name) else { throw Failure(message: "permissions: no user \(name) on this host") }
            return id
        } ?? uid_t.max
        let gid = try entry.group.map { name throws(Failure) in
            guard let id = ids.lookup("group", name) else { throw Failure(message: "permissions: no group \(name) on this host") }
            return id
        } ?? gid_t.max
        guard lchown(path, uid, gid) == 0 else {
            throw Failure(message: "permissions: cannot give \(display(path)) to \(entry.owner ?? "")\(entry.group.map { ":" + $0 } ?? ""): "
                          + String(cString: strerror(errno)))
        }
        return nil
    }

    private func display(_ path: String) -> String {
        path == release ? "the release" : String(path.dropFirst(release.count + 1))
    }

    /// CodeDeploy's simple glob: `*` is any run of characters; everything else is itself.
    static func matches(_ name: String, _ pattern: String) -> Bool {
        let name = Array(name.utf8), pattern = Array(pattern.utf8)
        var n = 0, p = 0, star = -1, mark = 0
        while n < name.count {
            if p < pattern.count && pattern[p] == UInt8(ascii: "*") {
                star = p
                mark = n
                p += 1
            } else if p < pattern.count && pattern[p] == name[n] {
                p += 1
                n += 1
            } else if star >= 0 {
                p = star + 1
                mark += 1
                n = mark
            } else {
                return false
            }
        }
        while p < pattern.count && pattern[p] == UInt8(ascii: "*") { p += 1 }
        return p == pattern.count
    }
}

extension Operations {
    /// Why the agent's user cannot apply these permissions here (an owner it may not give files
    /// to, with no helper to do it; a group it is not in), with the fix; nil when it can.
    func permissionProblem(_ entries: [Appspec.Permission]) -> (message: String, hint: String)? {
        guard geteuid() != 0 else { return nil }
        let me = Self.userName()
        var checked: Set<OwnerHelper.Owner> = []
        for entry in entries {
            if let owner = entry.owner, owner != me {
                // The helper gives the owner and the group together.
                let wanted = OwnerHelper.Owner(user: owner, group: entry.group)
                guard checked.insert(wanted).inserted else { continue }
                if let problem = OwnerHelper.problem(deployTo: layout.deployTo, owner: wanted) {
                    return ("\(entry.object): " + problem.message, problem.hint)
                }
                continue
            }
            if let group = entry.group {
                guard let gid = GiveOwner.lookup(database: "group", group) else {
                    return ("permissions: no group \(group) on this host", "create it, or fix the group")
                }
                var groups = [gid_t](repeating: 0, count: 256)
                let count = getgroups(Int32(groups.count), &groups)
                guard getegid() == gid || (count > 0 && groups.prefix(Int(count)).contains(gid)) else {
                    return ("permissions: \(entry.object) wants group \(group), which \(me) is not in",
                            "add the deploy user to it (sudo usermod -aG \(group) \(me)), or deploy as root")
                }
            }
        }
        return nil
    }
}
