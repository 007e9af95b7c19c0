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
struct Permissions {
    let release: String
    let entries: [Appspec.Permission]
    let files: [Appspec.FileMapping]

    struct Failure: Error {
        var message: String
    }

    /// Applies every entry; returns how many paths changed.
    func apply() throws(Failure) -> Int {
        var seen: Set<String> = []
        var changed = 0
        for entry in entries {
            for (path, directory) in targets(entry) {
                guard entry.types.contains(directory ? "directory" : "file") else { continue }
                guard seen.insert(path).inserted else {
                    throw Failure(message: "permissions: \(display(path)) is set by more than one entry (CodeDeploy refuses this too)")
                }
                try set(path, entry)
                changed += 1
            }
        }
        return changed
    }

    /// The release's paths that the entry's object, pattern and except select, through each
    /// `files` entry.
    func targets(_ entry: Appspec.Permission) -> [(path: String, directory: Bool)] {
        var found: [(path: String, directory: Bool)] = []
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
            if let below = Self.relative(object, to: installed) {
                // The object is at or below what this entry installs.
                let base = below.isEmpty ? source : source + "/" + below
                guard lstat(base, &info) == 0 else { continue }
                if info.st_mode & S_IFMT == S_IFREG {
                    found.append((base, false))
                } else if info.st_mode & S_IFMT == S_IFDIR {
                    found += self.below(base, entry: entry)
                }
            } else if let above = Self.relative(installed, to: object), !above.isEmpty {
                // The object is a directory above what this entry installs: `**` reaches all of
                // it, a name pattern only a file installed directly in the object.
                let first = String(above.split(separator: "/")[0])
                guard !entry.except.contains(where: { Self.matches(first, $0) }) else { continue }
                if entry.pattern == "**" {
                    if kind == S_IFREG { found.append((source, false)) } else if kind == S_IFDIR { found += self.below(source, entry: entry) }
                } else if kind == S_IFREG, !above.contains("/"), Self.matches(first, entry.pattern) {
                    found.append((source, false))
                }
            }
        }
        // Two entries of `files` can install the same release path (the root and a directory of it).
        var unique: Set<String> = []
        return found.filter { unique.insert($0.path).inserted }
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

    private func set(_ path: String, _ entry: Appspec.Permission) throws(Failure) {
        if let mode = entry.mode, let bits = mode_t(mode, radix: 8) {
            guard chmod(path, bits) == 0 else {
                throw Failure(message: "permissions: cannot set mode \(mode) on \(display(path)): \(String(cString: strerror(errno)))")
            }
        }
        guard entry.owner != nil || entry.group != nil else { return }
        let uid = try entry.owner.map { name throws(Failure) in
            guard let user = getpwnam(name) else { throw Failure(message: "permissions: no user \(name) on this host") }
            return user.pointee.pw_uid
        } ?? uid_t.max
        let gid = try entry.group.map { name throws(Failure) in
            guard let group = getgrnam(name) else { throw Failure(message: "permissions: no group \(name) on this host") }
            return group.pointee.gr_gid
        } ?? gid_t.max
        guard lchown(path, uid, gid) == 0 else {
            throw Failure(message: "permissions: cannot give \(display(path)) to \(entry.owner ?? "")\(entry.group.map { ":" + $0 } ?? ""): "
                          + String(cString: strerror(errno)))
        }
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
    /// Why the agent's user cannot apply these permissions here (an owner or group it may not
    /// give files to, as a user that is not root); nil when it can.
    func permissionProblem(_ entries: [Appspec.Permission]) -> (message: String, hint: String)? {
        guard geteuid() != 0 else { return nil }
        let me = Self.userName()
        for entry in entries {
            if let owner = entry.owner, owner != me {
                return ("permissions: \(entry.object) wants owner \(owner), and only root may give files to another user (ship runs as \(me))",
                        "deploy as root for this, or drop owner: and let a runas hook write what \(owner) must own")
            }
            if let group = entry.group {
                guard let record = getgrnam(group) else { return ("permissions: no group \(group) on this host", "create it, or fix the group") }
                let gid = record.pointee.gr_gid
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
