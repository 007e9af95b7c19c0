#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CSpawn
import FoundationEssentials
import Hooks

/// `ship-agent give-owner DEPLOY_TO USER [GROUP]`: the one thing a deploy user that is not root
/// may do as root, through a sudoers line that names this exact command, its deploy_to and its
/// owner (docs/installing.md):
///
///     deploy ALL=(root) NOPASSWD: /usr/local/libexec/ship-agent give-owner /srv/shop www-data
///
/// It runs from a root-owned copy of the agent (`OwnerHelper.path`): the deploy user can replace
/// the agent in `<deploy_to>/.ship/bin`, so a sudoers line naming that one would hand out root.
/// Requests come on stdin, NUL-terminated:
///
/// - `give<TAB>releases/NAME/PATH`: gives USER (and GROUP) a file or directory of a release that
///   the deploy user owns. Every component is opened below DEPLOY_TO without following a symlink,
///   and the owner is changed on the very inode that was checked (an O_PATH descriptor), so
///   swapping a path for a link while this runs reaches nothing else. Symlinks are left alone; a
///   file with other hard links, or one the deploy user does not own, is refused; setuid and
///   setgid bits are cleared.
/// - `remove<TAB>NAME`: deletes `.ship/trash/NAME` (a pruned release with files USER owns, which
///   the deploy user cannot delete), walking by descriptors, never through a symlink and never
///   onto another filesystem. The deploy user could already move anything it can reach out of
///   sight; this only finishes what it may start.
///
/// Empty stdin checks that the command may run (the preflight's check). Exit 0: all done; 1: some
/// request refused (each on stderr); 2: the command itself refused (not root, not through sudo,
/// an unsafe copy of the helper, an owner that is root, a deploy_to the caller does not own).
enum GiveOwner {
    static func run(_ arguments: [String]) -> Never {
        guard arguments.count == 2 || arguments.count == 3 else {
            fail("usage: ship-agent give-owner DEPLOY_TO USER [GROUP] (through sudo; requests on stdin)")
        }
        guard geteuid() == 0 else { fail("give-owner runs as root, through the sudoers line of docs/installing.md") }
        guard let callerText = getenv("SUDO_UID").map({ String(cString: $0) }), let caller = uid_t(callerText), caller != 0 else {
            fail("give-owner is for a deploy user through sudo (SUDO_UID is missing or root)")
        }
        if let unsafe = unsafeInstallation() { fail(unsafe) }
        let deployTo = arguments[0]
        guard deployTo.hasPrefix("/") else { fail("DEPLOY_TO must be an absolute path: \(deployTo)") }
        let owner = arguments[1]
        guard let uid = lookup(database: "passwd", owner), uid != 0 else {
            fail("no user \(owner) on this host, or it is root (files are never given to root)")
        }
        var gid = gid_t.max
        if arguments.count == 3 {
            guard let found = lookup(database: "group", arguments[2]), found != 0 else {
                fail("no group \(arguments[2]) on this host, or it is root's")
            }
            gid = found
        }
        let root = open(deployTo, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        var info = stat()
        guard root >= 0, fstat(root, &info) == 0 else { fail("cannot open \(deployTo): \(errorText())") }
        guard info.st_uid == caller else { fail("\(deployTo) is not the deploy user's (uid \(caller)); refusing") }

        var input: [UInt8] = []
        _ = POSIXIO.readToEnd(0) { input += $0 }
        var refused = 0
        for record in input.split(separator: 0) {
            let text = String(decoding: record, as: UTF8.self)
            let parts = text.split(separator: "\t", maxSplits: 1).map(String.init)
            let problem: String?
            switch (parts.first, parts.count) {
            case ("give", 2): problem = give(parts[1], root: root, caller: caller, uid: uid, gid: gid)
            case ("remove", 2): problem = remove(parts[1], root: root, caller: caller)
            default: problem = "malformed request"
            }
            if let problem {
                refused += 1
                _ = POSIXIO.writeAll(2, Array("refused \(parts.last ?? text): \(problem)\n".utf8))
            }
        }
        exit(refused == 0 ? 0 : 1)
    }

    /// Why this copy of the agent must not run as root: it, or a directory above it, can be
    /// changed by someone other than root.
    static func unsafeInstallation() -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard count > 0 else { return "cannot tell where this helper is (/proc/self/exe): \(errorText())" }
        let executable = String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        var path = executable
        while true {
            var info = stat()
            guard lstat(path, &info) == 0 else { return "cannot inspect \(path): \(errorText())" }
            if info.st_uid != 0 || info.st_mode & 0o022 != 0 {
                return "\(path) can be changed by a user other than root, so \(executable) must not run as root; "
                    + "install it as docs/installing.md says: install -D -o root -g root -m 0755 <deploy_to>/.ship/bin/ship-agent \(OwnerHelper.path)"
            }
            guard path != "/" else { return nil }
            path = Operations.parent(of: path)
        }
    }

    /// A user's or group's numeric id, from the host's own user database (`getent`, which
    /// knows LDAP users too); nil when there is none.
    static func lookup(database: String, _ name: String) -> UInt32? {
        guard !name.isEmpty, !name.hasPrefix("-"), !name.contains(":") else { return nil }
        let found = Helper.run(["/usr/bin/getent", database, name])
        guard found.status == 0 else { return nil }
        let fields = found.output.trimmed.split(separator: ":", omittingEmptySubsequences: false)
        return fields.count > 2 ? UInt32(fields[2]) : nil
    }

    /// `releases/NAME/…`, each component plain (the release's name as ship writes it, or its
    /// partial directory while it is prepared).
    static func releaseComponents(_ path: String) -> [String]? {
        let components = path.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard components.count >= 3, components[0] == "releases",
              components.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." }) else { return nil }
        let release = components[1]
        let name = release.hasPrefix(".") && release.hasSuffix(".partial") ? String(release.dropFirst().dropLast(".partial".count)) : release
        return HostLayout.validName(name) ? components : nil
    }

    static func give(_ path: String, root: Int32, caller: uid_t, uid: uid_t, gid: gid_t) -> String? {
        guard let components = releaseComponents(path) else { return "not a path below releases/NAME/" }
        var directory = dup(root)
        defer { close(directory) }
        for component in components.dropLast() {
            let next = ship_open_nofollow(directory, component, 1)
            guard next >= 0 else { return "cannot open \(component) (a symlink, or missing): \(errorText())" }
            close(directory)
            directory = next
        }
        let target = ship_open_nofollow(directory, components.last!, 0)
        guard target >= 0 else { return errorText() }
        defer { close(target) }
        var info = stat()
        guard fstat(target, &info) == 0 else { return errorText() }
        let kind = info.st_mode & S_IFMT
        if kind == S_IFLNK { return nil } // links (shared paths) stay as they are
        guard kind == S_IFREG || kind == S_IFDIR else { return "neither a file nor a directory" }
        guard info.st_uid == caller || info.st_uid == uid else { return "not the deploy user's (owner uid \(info.st_uid))" }
        guard kind == S_IFDIR || info.st_nlink == 1 else { return "has other hard links" }
        guard ship_fchown_fd(target, uid, gid) == 0 else { return "chown: \(errorText())" }
        // The kernel clears setuid and setgid on an executable whose owner changes; this clears
        // them on every file, whatever its mode was made in between.
        guard fstat(target, &info) == 0 else { return errorText() }
        if kind == S_IFREG && info.st_mode & (S_ISUID | S_ISGID) != 0 {
            guard chmod("/proc/self/fd/\(target)", info.st_mode & 0o777) == 0 else { return "cannot clear setuid/setgid: \(errorText())" }
        }
        return nil
    }

    static func remove(_ name: String, root: Int32, caller: uid_t) -> String? {
        guard !name.isEmpty, !name.contains("/"), name != ".", name != ".." else { return "not a name in .ship/trash" }
        var directory = dup(root)
        defer { close(directory) }
        for component in [".ship", "trash"] {
            let next = ship_open_directory_nofollow(directory, component)
            guard next >= 0 else { return "cannot open \(component): \(errorText())" }
            close(directory)
            directory = next
            var info = stat()
            guard fstat(directory, &info) == 0, info.st_uid == caller else { return "\(component) is not the deploy user's" }
        }
        var info = stat()
        guard fstat(directory, &info) == 0 else { return errorText() }
        return removeTree(name, in: directory, device: info.st_dev, depth: 0)
    }

    /// Deletes `name` below the directory `parent` and everything in it, by descriptors.
    static func removeTree(_ name: String, in parent: Int32, device: dev_t, depth: Int) -> String? {
        var info = stat()
        guard fstatat(parent, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { return errno == ENOENT ? nil : errorText() }
        guard info.st_mode & S_IFMT == S_IFDIR else {
            return unlinkat(parent, name, 0) == 0 || errno == ENOENT ? nil : "\(name): \(errorText())"
        }
        guard info.st_dev == device else { return "\(name) is another filesystem's mount point" }
        guard depth < 512 else { return "deeper than 512 directories" }
        let fd = ship_open_directory_nofollow(parent, name)
        guard fd >= 0 else { return "\(name): \(errorText())" }
        guard let stream = fdopendir(fd) else {
            close(fd)
            return "\(name): \(errorText())"
        }
        var names: [String] = []
        while let entry = readdir(stream) {
            let entryName = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if entryName != "." && entryName != ".." { names.append(entryName) }
        }
        var problem: String?
        for child in names {
            if let failed = removeTree(child, in: dirfd(stream), device: device, depth: depth + 1) { problem = problem ?? failed }
        }
        closedir(stream)
        if let problem { return problem }
        return unlinkat(parent, name, AT_REMOVEDIR) == 0 || errno == ENOENT ? nil : "\(name): \(errorText())"
    }

    static func fail(_ message: String) -> Never {
        _ = POSIXIO.writeAll(2, Array("ship-agent give-owner: \(message)\n".utf8))
        exit(2)
    }

    static func errorText() -> String { String(cString: strerror(errno)) }
}
