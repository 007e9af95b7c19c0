#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import FoundationEssentials
import Hooks

/// `ship setup`: a host made ready for its first deployment, changing only what is not so
/// already: the deploy_to tree, the shared directories (group of the web user, setgid, group
/// writable, so files the web server writes there stay shared), the shared files uploaded from
/// the controller, and a check that the deploy user can write where deployments write.
extension Operations {
    func setup() throws -> AgentResult {
        var changed: [String] = []
        var warnings: [String] = []
        for directory in [layout.deployTo, layout.releases, layout.shared, layout.state, layout.bundles, layout.records, layout.logs]
            where !files.fileExists(atPath: directory) {
            do {
                try files.createDirectory(atPath: directory, withIntermediateDirectories: true)
            } catch {
                throw AgentError("cannot create \(directory) as \(Self.userName()): \(error)",
                                 hint: "let \(Self.userName()) write its parent: sudo install -d -o \(Self.userName()) \(layout.deployTo)")
            }
            changed.append("created \(directory)")
        }
        let group = try request.webUser.map { user throws in try Self.primaryGroup(of: user) }
        let shared = request.shared ?? SharedSpec(dirs: [], files: [])
        for dir in shared.dirs {
            let path = layout.shared + "/" + dir
            try Containment(root: layout.shared, sharedPaths: []).requireRealParents(of: dir)
            var info = stat()
            if lstat(path, &info) != 0 {
                try files.createDirectory(atPath: path, withIntermediateDirectories: true)
                changed.append("created \(path)")
                guard lstat(path, &info) == 0 else { continue }
            }
            guard info.st_mode & S_IFMT == S_IFDIR else {
                warnings.append("\(path) is not a directory (a link to a mount, say): left as it is")
                continue
            }
            if let group {
                if info.st_gid != group.gid {
                    if chown(path, uid_t.max, group.gid) == 0 {
                        changed.append("group \(group.name) on \(path)")
                    } else {
                        warnings.append("cannot give \(path) to group \(group.name) (\(String(cString: strerror(errno)))): the web user may not write there; "
                                        + "fix: sudo usermod -aG \(group.name) \(Self.userName()), then ship setup again (or sudo chgrp \(group.name) \(path))")
                    }
                }
                // setgid: what either user makes inside keeps the group; group-writable for the web user.
                if info.st_mode & 0o7777 != 0o2775 {
                    if chmod(path, 0o2775) == 0 { changed.append("mode 2775 on \(path)") }
                }
            }
        }
        for upload in request.uploads ?? [] {
            let parts = upload.path.split(separator: "/", omittingEmptySubsequences: false)
            guard !upload.path.hasPrefix("/"), !parts.contains(".."), !parts.contains(""), !parts.contains(".") else {
                throw AgentError("setup: \(upload.path) is not a path below deploy_to/shared")
            }
            try Containment(root: layout.shared, sharedPaths: []).requireRealParents(of: upload.path)
            let path = layout.shared + "/" + upload.path
            var info = stat()
            if lstat(path, &info) == 0 {
                guard info.st_mode & S_IFMT == S_IFREG else {
                    warnings.append("\(path) is there and not a file: left as it is")
                    continue
                }
                let same = files.contents(atPath: path).map { [UInt8]($0) == upload.content } ?? false
                if same {
                    if Int(info.st_mode & 0o7777) != upload.mode, chmod(path, mode_t(upload.mode)) == 0 {
                        changed.append("mode \(String(upload.mode, radix: 8)) on \(path)")
                    }
                    continue
                }
                guard request.overwrite == true else {
                    warnings.append("\(path) differs from the file given: left as it is (--overwrite replaces it)")
                    continue
                }
            }
            try files.createDirectory(atPath: Self.parent(of: path), withIntermediateDirectories: true)
            let temporary = path + ".ship-setup.\(getpid())"
            unlink(temporary)
            let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode_t(upload.mode))
            guard fd >= 0 else { throw AgentError("cannot write \(path): \(String(cString: strerror(errno)))") }
            let written = POSIXIO.writeAll(fd, upload.content)
            fchmod(fd, mode_t(upload.mode))
            if let group, upload.mode & 0o070 != 0 { _ = fchown(fd, uid_t.max, group.gid) }
            fsync(fd)
            close(fd)
            guard written, rename(temporary, path) == 0 else {
                unlink(temporary)
                throw AgentError("cannot write \(path): \(String(cString: strerror(errno)))")
            }
            changed.append("\(info.st_mode == 0 ? "uploaded" : "replaced") \(path) (mode \(String(upload.mode, radix: 8)))")
        }
        var result = AgentResult(ok: true)
        // Where every deployment writes: deploy_to's tree and the shared directories.
        let unwritable = ([layout.deployTo, layout.releases, layout.shared, layout.state] + shared.dirs.map { layout.shared + "/" + $0 })
            .filter { files.fileExists(atPath: $0) && access($0, W_OK) != 0 }
        if !unwritable.isEmpty {
            result.ok = false
            result.message = "\(Self.userName()) cannot write " + unwritable.joined(separator: ", ")
            result.hint = "sudo chown -R \(Self.userName()) \(layout.deployTo)"
        }
        let missing = shared.files.filter { !files.fileExists(atPath: layout.shared + "/" + $0) }
        result.missing = missing.isEmpty ? nil : missing.map { layout.shared + "/" + $0 }
        result.report = changed
        result.warnings = warnings.isEmpty ? nil : warnings
        return result
    }

    /// The user's primary group, from the host's `getent` (the agent makes no NSS calls).
    static func primaryGroup(of user: String) throws -> (name: String, gid: gid_t) {
        let passwd = Helper.run(["getent", "passwd", user])
        let fields = passwd.output.trimmed.split(separator: ":", omittingEmptySubsequences: false)
        guard passwd.status == 0, fields.count > 3, let gid = gid_t(fields[3]) else {
            throw AgentError("the web user \(user) does not exist on this host", hint: "create it, or give --web-user another user")
        }
        let group = Helper.run(["getent", "group", String(gid)])
        let name = group.output.split(separator: ":").first.map(String.init) ?? String(gid)
        return (name, gid)
    }
}
