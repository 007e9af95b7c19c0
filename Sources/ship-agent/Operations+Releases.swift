#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import FoundationEssentials
import Hooks

/// Releases: unpack, link shared paths, switch, discard, prune, state.
extension Operations {
    // MARK: - Releases

    func releaseName() throws -> String {
        guard let name = request.release, HostLayout.validName(name) else { throw AgentError("no valid release name given") }
        return name
    }

    func prepare() throws -> AgentResult {
        let name = try releaseName()
        let sha = try bundleSHA()
        guard let revision = request.revision, let appspec = request.appspec else {
            throw AgentError("prepare: revision and appspec are required")
        }
        try makeDirectories()
        let target = layout.release(name)
        if files.fileExists(atPath: target) {
            guard layout.readRecord(name)?.deploymentId == request.journal?.deploymentId, layout.currentRelease() != name else {
                throw AgentError("release \(name) already exists on this host")
            }
            try remove(target) // a partial attempt of this same deployment
        }
        guard files.fileExists(atPath: layout.bundle(sha)) else { throw AgentError("bundle \(sha) is not on this host") }
        let partial = layout.releases + "/." + name + ".partial"
        try remove(partial)
        try files.createDirectory(atPath: partial, withIntermediateDirectories: true)
        // GNU tar refuses absolute names and '..' members, and extracts symlinks that point
        // outside the directory as placeholders until the end, so nothing is written through them.
        let untar = Helper.run(["tar", "-xzf", layout.bundle(sha), "-C", partial, "--no-same-owner", "--delay-directory-restore"])
        guard untar.status == 0 else {
            try? remove(partial) // best effort: the partial directory is hidden and removed on the next attempt
            if DiskSpace.isFull(output: untar.output) {
                throw AgentError(DiskSpace.message(at: layout.releases, while: "unpacking release \(name)",
                                                   needed: DiskSpace.gzipContentSize(layout.bundle(sha))))
            }
            throw AgentError("unpacking the bundle failed: \(untar.output.trimmed)")
        }
        do {
            try Containment(root: partial, sharedPaths: (request.shared?.dirs ?? []) + (request.shared?.files ?? [])).check()
            try linkShared(into: partial)
        } catch {
            try? remove(partial) // best effort, as above
            throw error
        }
        let record = ReleaseRecord(release: name, revision: revision, deploymentId: request.journal?.deploymentId, appspec: appspec,
                                   bundleSHA256: sha)
        try writeAtomically(try JSONEncoder().encode(record), to: layout.record(name))
        guard rename(partial, target) == 0 else {
            throw AgentError("cannot move the release into place: \(String(cString: strerror(errno)))")
        }
        fsyncDirectory(layout.releases)
        if let entry = request.journal { try appendJournal(entry) }
        var result = AgentResult(ok: true)
        result.currentRelease = layout.currentRelease()
        return result
    }

    func linkShared(into release: String) throws {
        guard let shared = request.shared else { return }
        for dir in shared.dirs {
            try files.createDirectory(atPath: layout.shared + "/" + dir, withIntermediateDirectories: true)
        }
        let containment = Containment(root: release, sharedPaths: [])
        for path in shared.dirs + shared.files {
            let link = release + "/" + path
            try containment.requireRealParents(of: path)
            try remove(link)
            let parent = String(link[..<link.lastIndex(of: "/")!])
            try files.createDirectory(atPath: parent, withIntermediateDirectories: true)
            try files.createSymbolicLink(atPath: link, withDestinationPath: layout.shared + "/" + path)
        }
    }

    func switchCurrent() throws -> AgentResult {
        let name = try releaseName()
        guard files.fileExists(atPath: layout.release(name)), layout.readRecord(name) != nil else {
            throw AgentError("release \(name) is not complete on this host")
        }
        let previous = layout.currentRelease()
        // A release that goes live for the first time is `live` until its run confirms it.
        if layout.readRecord(name)?.state == .prepared { try mark(name, .live) }
        let temporary = layout.deployTo + "/.current.\(getpid())"
        unlink(temporary)
        guard symlink("releases/" + name, temporary) == 0 else {
            throw AgentError("cannot create a symlink in \(layout.deployTo): \(String(cString: strerror(errno)))")
        }
        guard rename(temporary, layout.current) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw AgentError("cannot switch current: \(reason)")
        }
        fsyncDirectory(layout.deployTo)
        if var entry = request.journal {
            entry.release = name
            entry.previousRelease = previous
            entry.revision = layout.readRecord(name)?.revision
            try appendJournal(entry)
        }
        var result = AgentResult(ok: true)
        result.currentRelease = name
        result.currentRevision = layout.readRecord(name)?.revision
        result.previousRelease = previous
        return result
    }

    func discard() throws -> AgentResult {
        let name = try releaseName()
        guard layout.currentRelease() != name else { throw AgentError("release \(name) is current; not removing it") }
        guard files.fileExists(atPath: layout.release(name)) else { return AgentResult(ok: true) }
        try moveToTrash(name)
        var result = AgentResult(ok: true)
        let warnings = emptyTrash()
        result.warnings = warnings.isEmpty ? nil : warnings
        return result
    }

    func state() throws -> AgentResult {
        var result = AgentResult(ok: true)
        result.hostname = Self.hostname()
        result.currentRelease = layout.currentRelease()
        result.currentRevision = layout.currentRevision()
        result.releases = layout.releaseNames()
        result.releaseInfos = releaseInfos(measure: request.measureReleases == true)
        result.lock = readLock()
        result.stopped = stoppedMarker()
        let journal = readJournal()
        result.previousRelease = journal.last { $0.step == "switched" && $0.release == result.currentRelease }?.previousRelease
        result.journal = Array(journal.suffix(request.journalLimit ?? 0))
        return result
    }
}
