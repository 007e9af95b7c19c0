#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
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
        case ("deploy", "succeeded"), ("rollback", "succeeded"): try mark(release, .good)
        case ("deploy", "failed"), ("deploy", "rolled_back"): try mark(release, .failed)
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
        var warnings: [String] = []
        for name in ((try? files.contentsOfDirectory(atPath: trash)) ?? []).sorted() {
            let path = trash + "/" + name
            let removal = Helper.run(["rm", "-rf", "--", path])
            guard removal.status != 0 else { continue }
            // Make what can be made writable writable (the deploy user's own files), then retry.
            _ = Helper.run(["chmod", "-R", "u+rwX", "--", path])
            let retry = Helper.run(["rm", "-rf", "--", path])
            guard retry.status != 0 else { continue }
            let lines = retry.output.split(separator: "\n")
            let first = lines.first.map(String.init) ?? "exit \(retry.status)"
            warnings.append("cannot delete \(path) as \(Self.userName()): \(lines.count) entr\(lines.count == 1 ? "y" : "ies") refused, e.g. \(first); "
                + "files another user (such as www-data) wrote need that user or root to remove them; every later prune retries")
        }
        return warnings
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
