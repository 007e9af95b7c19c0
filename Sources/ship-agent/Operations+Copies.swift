#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import FoundationEssentials
import Hooks

/// CodeDeploy `files` entries ship copies rather than links, at CodeDeploy's Install step, which
/// is ship's switch: a single file of the revision goes to `destination/NAME`; a directory of the
/// revision whose destination is a real directory with files of its own (`/etc/nginx/conf.d`) has
/// its files merged in at the same relative paths, as CodeDeploy merges them. What ship installed
/// is recorded in `.ship/copies.json`, with the file each one replaced kept aside, so that
/// every switch (a deployment, its rollback, `ship rollback`) leaves exactly the copies of the
/// release it switches to: its files written, files only an earlier release wanted removed and
/// what they had replaced put back.
extension Operations {
    struct CopyState: Codable {
        struct Entry: Codable {
            /// Where the copy is.
            var target: String
            /// The release whose copy it is.
            var release: String
            /// The file that was there before ship's first copy, kept aside (nil: there was none).
            var original: String?
        }

        var entries: [Entry] = []
    }

    /// A copy a release wants: its file, and where it goes.
    struct PlannedCopy {
        var source: String
        var target: String
    }

    var copyStatePath: String { layout.state + "/copies.json" }
    var originalsDirectory: String { layout.state + "/copies" }

    /// The copies the release's appspec asks for: `files` entries whose source is a regular file
    /// of the release, and the files below a directory source that is merged (`mergesInto`).
    func plannedCopies(_ record: ReleaseRecord) -> (copies: [PlannedCopy], behavior: String) {
        let name = record.release
        var copies: [PlannedCopy] = []
        for mapping in record.appspec.files where mapping.source != "/" {
            let source = layout.release(name) + "/" + mapping.source
            let destination = mapping.destination == "/" ? "" : mapping.destination
            var info = stat()
            guard lstat(source, &info) == 0 else { continue }
            switch info.st_mode & S_IFMT {
            case S_IFREG:
                let base = mapping.source.split(separator: "/").last.map(String.init) ?? mapping.source
                copies.append(PlannedCopy(source: source, target: destination + "/" + base))
            case S_IFDIR where mergesInto(mapping.destination):
                for relative in Self.regularFiles(below: source) {
                    copies.append(PlannedCopy(source: source + "/" + relative, target: destination + "/" + relative))
                }
            default:
                continue
            }
        }
        return (copies, record.appspec.fileExistsBehavior ?? "DISALLOW")
    }

    /// Whether a directory source's destination takes copies rather than ship's link: it is a real
    /// directory (not a link) with files of its own, which a link would hide.
    func mergesInto(_ destination: String) -> Bool {
        var info = stat()
        guard lstat(destination, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else { return false }
        return !((try? files.contentsOfDirectory(atPath: destination)) ?? []).isEmpty
    }

    /// The regular files below a directory, as paths relative to it, in order. Symlinks (shared
    /// paths among them) are not followed or copied.
    static func regularFiles(below root: String) -> [String] {
        var found: [String] = []
        var pending = [""]
        while let relative = pending.popLast() {
            let directory = relative.isEmpty ? root : root + "/" + relative
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { continue }
            for name in names.sorted() {
                let path = relative.isEmpty ? name : relative + "/" + name
                var info = stat()
                guard lstat(root + "/" + path, &info) == 0 else { continue }
                switch info.st_mode & S_IFMT {
                case S_IFREG: found.append(path)
                case S_IFDIR: pending.append(path)
                default: continue
                }
            }
        }
        return found.sorted()
    }

    func readCopyState() -> CopyState {
        guard let data = files.contents(atPath: copyStatePath), let state = try? JSONDecoder().decode(CopyState.self, from: data) else {
            return CopyState()
        }
        return state
    }

    /// Leaves the copies of the record's release in place, and only those. Everything is checked before
    /// anything is written: a file ship did not install where a copy goes fails the switch
    /// under DISALLOW (CodeDeploy's default), as does a directory it cannot write.
    func installCopies(for record: ReleaseRecord) throws -> [String] {
        let name = record.release
        let (copies, appspecBehavior) = plannedCopies(record)
        let behavior = request.fileExistsBehavior ?? appspecBehavior
        var state = readCopyState()
        guard !copies.isEmpty || !state.entries.isEmpty else { return [] }
        let installed = Set(state.entries.map(\.target))
        var retained: Set<String> = []
        for copy in copies where !installed.contains(copy.target) {
            var info = stat()
            if lstat(copy.target, &info) == 0 {
                guard info.st_mode & S_IFMT != S_IFDIR else {
                    throw AgentError("\(copy.target) is a directory: the revision's file cannot be copied there")
                }
                switch behavior {
                case "OVERWRITE": break
                case "RETAIN": retained.insert(copy.target)
                default:
                    throw AgentError("\(copy.target) exists and ship did not install it: file_exists_behavior is DISALLOW (CodeDeploy's default)",
                                     hint: "set file_exists_behavior: OVERWRITE (ship keeps the file aside and puts it back on rollback) or RETAIN, "
                                         + "or remove the file")
                }
            }
            let parent = Self.parent(of: copy.target)
            var existing = parent
            while !files.fileExists(atPath: existing), existing != "/" { existing = Self.parent(of: existing) }
            guard access(existing, W_OK) == 0 else {
                throw AgentError("\(existing) is not writable by \(Self.userName()): ship cannot copy \(copy.target)",
                                 hint: "deploy as a user that may write there, or let \(Self.userName()) write \(parent)")
            }
        }
        var report: [String] = []
        try makeDirectories()
        // The record is written as it stands whatever happens below, so that a write failing
        // partway (a full disk) still leaves every copy and kept original known to the next switch.
        do {
            // Copies no longer wanted: what they replaced comes back, or they go.
            let wanted = Set(copies.map(\.target))
            for entry in state.entries where !wanted.contains(entry.target) {
                if let original = entry.original {
                    try moveBack(original, to: entry.target)
                    report.append("restored \(entry.target)")
                } else {
                    unlink(entry.target)
                    report.append("removed \(entry.target)")
                }
                state.entries.removeAll { $0.target == entry.target }
            }
            for copy in copies where !retained.contains(copy.target) {
                var entry = state.entries.first { $0.target == copy.target }
                    ?? CopyState.Entry(target: copy.target, release: name, original: nil)
                if !installed.contains(copy.target), files.fileExists(atPath: copy.target) {
                    entry.original = try keepAside(copy.target)
                    // Known before the copy goes over it, so the original is never lost track of.
                    state.entries.removeAll { $0.target == copy.target }
                    state.entries.append(entry)
                }
                try writeCopy(copy)
                entry.release = name
                state.entries.removeAll { $0.target == copy.target }
                state.entries.append(entry)
                report.append("copied \(copy.target)")
            }
        } catch {
            try? writeAtomically(try JSONEncoder().encode(state), to: copyStatePath)
            throw error
        }
        try writeAtomically(try JSONEncoder().encode(state), to: copyStatePath)
        return report
    }

    /// The file's content, mode kept, written beside it and renamed over it.
    private func writeCopy(_ copy: PlannedCopy) throws {
        try files.createDirectory(atPath: Self.parent(of: copy.target), withIntermediateDirectories: true)
        var info = stat()
        let input = open(copy.source, O_RDONLY | O_CLOEXEC)
        guard input >= 0, fstat(input, &info) == 0 else { throw AgentError("cannot read \(copy.source): \(String(cString: strerror(errno)))") }
        defer { close(input) }
        let temporary = Self.parent(of: copy.target) + "/.ship-copy.\(getpid())"
        unlink(temporary)
        let output = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard output >= 0 else { throw AgentError("cannot write \(copy.target): \(String(cString: strerror(errno)))") }
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = read(input, &buffer, buffer.count)
            guard count >= 0 else { break }
            if count == 0 { break }
            guard POSIXIO.writeAll(output, Array(buffer[0..<count])) else {
                let reason = String(cString: strerror(errno))
                close(output)
                unlink(temporary)
                throw AgentError("cannot write \(copy.target): \(reason)")
            }
        }
        // Owner, group and mode as the release has them (the appspec's permissions applied there).
        if fchown(output, info.st_uid, info.st_gid) != 0 && (geteuid() == 0 || info.st_uid != geteuid()) {
            let reason = String(cString: strerror(errno))
            close(output)
            unlink(temporary)
            throw AgentError("cannot give \(copy.target) the owner the release has: \(reason)")
        }
        fchmod(output, info.st_mode & 0o7777)
        fsync(output)
        close(output)
        guard rename(temporary, copy.target) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw AgentError("cannot put \(copy.target) in place: \(reason)")
        }
    }

    /// Keeps the file a copy replaces under `.ship/copies/`; returns where. A hard link where the
    /// filesystem and the kernel allow it (the original itself, owner and all, and the target is
    /// never missing); else a copy with what `cp -p` can keep.
    private func keepAside(_ target: String) throws -> String {
        try files.createDirectory(atPath: originalsDirectory, withIntermediateDirectories: true)
        let kept = originalsDirectory + "/" + target.replacing("/", with: "%")
        unlink(kept)
        if link(target, kept) == 0 { return kept }
        let copied = Helper.run(["cp", "-p", "--", target, kept])
        guard copied.status == 0 else { throw AgentError("cannot keep \(target) aside before copying over it: \(copied.output)") }
        return kept
    }

    /// Puts a kept original back over the copy, in one rename (beside the target first when it
    /// was kept on another filesystem).
    private func moveBack(_ kept: String, to target: String) throws {
        if rename(kept, target) == 0 { return }
        let temporary = Self.parent(of: target) + "/.ship-copy.\(getpid())"
        unlink(temporary)
        let copied = Helper.run(["cp", "-p", "--", kept, temporary])
        guard copied.status == 0, rename(temporary, target) == 0 else {
            unlink(temporary)
            throw AgentError("cannot put back \(target): \(copied.status == 0 ? String(cString: strerror(errno)) : copied.output)")
        }
        unlink(kept)
    }
}
