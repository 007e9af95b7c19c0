#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CSpawn
import FoundationEssentials
import Hooks

/// Release states and pruning. A release is pruned by moving it out of `releases/` into
/// `.ship/trash/` (one rename, on the same filesystem) and deleting it there, so a release is
/// either whole in `releases/` or gone from it: never half-deleted, listed or targeted. What
/// cannot be deleted (files the web server's user owns) stays in the trash, is reported as a
/// warning, and is retried by every later prune.
extension Operations {
    var trash: String { layout.state + "/trash" }

    /// Every release with its state as it stands now, oldest first.
    func releaseInfos(measure: Bool = false) -> [ReleaseInfo] {
        let current = layout.currentRelease()
        let lockHolder = readLock()?.deploymentId
        return layout.releaseNames().map { name in
            let record = layout.readRecord(name)
            var state: ReleaseState
            switch record?.state {
            case nil: state = record == nil ? .abandoned : .good // records before release states were of good releases
            case .prepared?: state = name == current ? .live : (record?.deploymentId == lockHolder ? .prepared : .abandoned)
            case .live?: state = name == current ? .live : .unverified
            case let other?: state = other
            }
            var info = ReleaseInfo(release: name, revision: record?.revision, state: state,
                                   bytes: measure ? Self.diskUsage(layout.release(name)) : nil)
            if record?.sealed != nil { info.deltaBase = true }
            return info
        }
    }

    /// Records a release's new state (its record rewritten atomically); a missing record is left alone.
    func mark(_ name: String, _ state: ReleaseState) throws {
        guard HostLayout.validName(name), var record = layout.readRecord(name), record.state != state else { return }
        record.state = state
        try writeAtomically(try JSONEncoder().encode(record), to: layout.record(name))
    }

    /// What a run's final journal entry says of this host's release: a deployment that finished
    /// with this host validated makes its release good; one that failed here makes it failed;
    /// a successful rollback confirms the release it went to.
    func markFromFinalEntry(_ entry: JournalEntry) throws {
        guard entry.step == "finished", let release = entry.release, let outcome = entry.hostStatus else { return }
        switch (entry.kind, outcome) {
        case ("deploy", "succeeded"), ("rollback", "succeeded"), ("pull", "succeeded"): try mark(release, .good)
        case ("deploy", "failed"), ("deploy", "rolled_back"), ("pull", "failed"): try mark(release, .failed)
        default: break
        }
    }

    func prune() throws -> AgentResult {
        let keep = max(1, request.keepReleases ?? 5)
        let current = layout.currentRelease()
        let protected = Set((request.protectedReleases ?? []) + (current.map { [$0] } ?? []))
        let infos = releaseInfos()
        // Failed and abandoned releases never count toward keep_releases and go first; of the
        // others, the newest `keep` stay.
        let counted = infos.filter { $0.state.counts }.map(\.release)
        let kept = Set(counted.suffix(keep)).union(protected).union(infos.filter { $0.state == .prepared }.map(\.release))
        var pruned: [String] = []
        var warnings: [String] = []
        for info in infos where !kept.contains(info.release) {
            do {
                try moveToTrash(info.release)
                pruned.append(info.release)
            } catch let error as AgentError {
                warnings.append(error.message)
            }
        }
        warnings += emptyTrash()
        // Bundles and records no remaining release needs go too.
        let remaining = layout.releaseNames()
        let neededBundles = Set(remaining.compactMap { layout.readRecord($0)?.bundleSHA256 })
        for file in (try? files.contentsOfDirectory(atPath: layout.bundles)) ?? [] where file.hasSuffix(".tar.gz") {
            let sha = String(file.dropLast(".tar.gz".count))
            if !neededBundles.contains(sha) { unlink(layout.bundles + "/" + file) }
        }
        for file in (try? files.contentsOfDirectory(atPath: layout.records)) ?? [] where file.hasSuffix(".json") {
            if !remaining.contains(String(file.dropLast(".json".count))) { unlink(layout.records + "/" + file) }
        }
        var result = AgentResult(ok: true)
        result.pruned = pruned
        result.releases = remaining
        result.warnings = warnings.isEmpty ? nil : warnings
        return result
    }

    /// Takes a release out of `releases/` in one rename; its record goes with it.
    func moveToTrash(_ name: String) throws {
        guard HostLayout.validName(name), name != layout.currentRelease() else { return }
        do {
            try files.createDirectory(atPath: trash, withIntermediateDirectories: true)
        } catch {
            throw AgentError("cannot create \(trash): \(error)")
        }
        let destination = trash + "/\(name).\(getpid())"
        guard rename(layout.release(name), destination) == 0 else {
            throw AgentError("cannot move releases/\(name) to the trash: \(String(cString: strerror(errno)))")
        }
        unlink(layout.record(name))
        fsyncDirectory(layout.releases)
    }

    /// Deletes what the trash holds; returns a warning per entry that could not be deleted.
    func emptyTrash() -> [String] {
        ((try? files.contentsOfDirectory(atPath: trash)) ?? []).sorted().compactMap { deleteFromTrash($0) }
    }

    /// Deletes `.ship/trash/NAME`; a warning when some of it stays. What the agent's user cannot
    /// delete, files another user wrote (PHP's caches, as www-data), is deleted as that user
    /// through the runas sudoers line (the directories each one owns emptied in turn), or by the
    /// root helper that gave files away; only what none of them may delete stays, to be retried
    /// by every later prune.
    func deleteFromTrash(_ name: String) -> String? {
        let path = trash + "/" + name
        var removal = Helper.run(["rm", "-rf", "--", path])
        guard removal.status != 0 else { return nil }
        // Make what can be made writable writable (the deploy user's own files), then retry.
        _ = Helper.run(["chmod", "-R", "u+rwX", "--", path])
        removal = Helper.run(["rm", "-rf", "--", path])
        guard removal.status != 0 else { return nil }
        if geteuid() != 0 {
            // Each owner of what is left deletes what it may, then the agent's user what those
            // emptied; nested directories of different owners take a round each.
            var left = Self.owners(below: path)
            for _ in 0..<4 {
                // Only users hooks have run as through sudo: asking sudo about any other would
                // be refused, and logged (or mailed to root) as an incident.
                let runas = Set(rememberedRunas())
                for uid in left.owners.subtracting([geteuid()]).sorted() {
                    guard let user = Users.name(of: uid), runas.contains(user) else { continue }
                    let spec = ExecSpec(arguments: ["/bin/rm", "-rf", "--", path], directory: "/",
                                        environment: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin"])
                    // rm refuses what this user may not delete either; what it deleted shows below.
                    _ = Helper.run(["sudo", "-n", "-u", user, "--", layout.agent, "exec-hook"], input: spec.encoded)
                }
                removal = Helper.run(["rm", "-rf", "--", path])
                guard removal.status != 0 else { return nil }
                let now = Self.owners(below: path)
                if now.entries == left.entries { break }
                left = now
            }
            if removeThroughHelper(name) { return nil }
        }
        let lines = removal.output.split(separator: "\n")
        let first = lines.first.map(String.init) ?? "exit \(removal.status)"
        return "cannot delete \(path) as \(Self.userName()): \(lines.count) entr\(lines.count == 1 ? "y" : "ies") refused, e.g. \(first); "
            + "files another user (such as www-data) wrote need that user (the runas sudoers line) or root to remove them; every later prune retries"
    }

    var runasFile: String { layout.state + "/runas" }

    /// The users hooks have run as through sudo on this host (one per line).
    func rememberedRunas() -> [String] {
        guard let data = files.contents(atPath: runasFile) else { return [] }
        return String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    func rememberRunas(_ user: String) {
        let known = rememberedRunas()
        guard !known.contains(user) else { return }
        try? writeAtomically(Data((known + [user]).map { $0 + "\n" }.joined().utf8), to: runasFile)
    }

    /// The owners of everything below a path (itself included), and how many entries there are,
    /// without following symlinks.
    static func owners(below root: String) -> (owners: Set<uid_t>, entries: Int) {
        var found: Set<uid_t> = []
        var entries = 0
        var pending = [root]
        while let path = pending.popLast() {
            var info = stat()
            guard lstat(path, &info) == 0 else { continue }
            found.insert(info.st_uid)
            entries += 1
            guard info.st_mode & S_IFMT == S_IFDIR, let stream = opendir(path) else { continue }
            while let entry = readdir(stream) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                if name != "." && name != ".." { pending.append(path + "/" + name) }
            }
            closedir(stream)
        }
        return (found, entries)
    }

    /// Bytes a directory tree occupies (allocated blocks), without following symlinks.
    static func diskUsage(_ root: String) -> Int64 {
        var total: Int64 = 0
        var pending = [root]
        while let path = pending.popLast() {
            var info = stat()
            guard lstat(path, &info) == 0 else { continue }
            total += Int64(info.st_blocks) * 512
            guard info.st_mode & S_IFMT == S_IFDIR, let stream = opendir(path) else { continue }
            while let entry = readdir(stream) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                if name != "." && name != ".." { pending.append(path + "/" + name) }
            }
            closedir(stream)
        }
        return total
    }
}
