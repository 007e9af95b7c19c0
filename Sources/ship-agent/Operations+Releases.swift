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
        let started = HookRunner.monotonicSeconds()
        // A bundle's bytes may follow the request: whatever fails before they are read, they are
        // read (and dropped), so a session stays in step.
        var unread = request.payloadBytes
        defer { if let unread { Input.discard(unread) } }
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
        // A delta needs its base as it was sealed; one without (gone, or made before seals) is
        // refused at once and the controller sends the full bundle.
        var base: (name: String, sealed: FileTime)?
        if let baseName = request.baseRelease {
            guard HostLayout.validName(baseName), let sealed = layout.readRecord(baseName)?.sealed,
                  files.fileExists(atPath: layout.release(baseName)) else {
                return refusedDelta("the base release \(baseName) is not on this host as it was unpacked")
            }
            base = (baseName, sealed)
        }
        let source: StreamingUnpack.Source
        if let bytes = request.payloadBytes {
            source = .received(bytes: bytes, sha256: sha, storeAt: base == nil ? layout.bundle(sha) : nil)
        } else {
            guard files.fileExists(atPath: layout.bundle(sha)) else { throw AgentError("bundle \(sha) is not on this host") }
            source = .cached(path: layout.bundle(sha), sha256: sha)
        }
        let partial = layout.releases + "/." + name + ".partial"
        try remove(partial)
        try files.createDirectory(atPath: partial, withIntermediateDirectories: true)
        let sharedPaths = (request.shared?.dirs ?? []) + (request.shared?.files ?? [])
        var summary = UnpackSummary(entries: 0, received: 0, copied: 0, copyMethod: nil, milliseconds: 0)
        var permissionsApplied = 0
        do {
            unread = nil
            let unpacked = try StreamingUnpack(source: source, destination: partial, workDirectory: layout.bundles,
                                               activity: "unpacking release \(name)", spaceDirectory: layout.releases).run()
            summary.entries = unpacked.scanner.entries
            summary.received = unpacked.received
            if let base {
                let copied = try DeltaBuild(base: layout.release(base.name), destination: partial, sealed: base.sealed,
                                            mtime: unpacked.scanner.revisionTime ?? 0,
                                            sharedPaths: sharedPaths.map { $0.split(separator: "/").map(String.init) })
                    .copy(request.unchangedPaths ?? [])
                summary.copied = copied.copied
                summary.copyMethod = copied.method
            }
            try Containment(root: partial, sharedPaths: sharedPaths).check(links: unpacked.scanner.symlinks)
            try linkShared(into: partial)
            if let permissions = appspec.permissions, !permissions.isEmpty {
                let applied: Permissions.Applied
                do {
                    var setter = Permissions(release: partial, entries: permissions, files: appspec.files)
                    setter.mergesInto = { self.mergesInto($0) }
                    applied = try setter.apply()
                } catch {
                    throw AgentError(error.message)
                }
                permissionsApplied = applied.changed
                // Last: once given away, the agent's user can no longer change these paths.
                try giveThroughHelper(applied.toGive)
            }
        } catch let changed as BaseChanged {
            try? remove(partial)
            return refusedDelta(changed.message)
        } catch is DeltaBuild.DiskFull {
            try? remove(partial)
            throw AgentError(DiskSpace.message(at: layout.releases, while: "copying release \(name) from \(base?.name ?? "")", needed: nil))
        } catch {
            try? remove(partial) // best effort: the partial directory is hidden and removed on the next attempt
            throw error
        }
        var record = ReleaseRecord(release: name, revision: revision, deploymentId: request.journal?.deploymentId, appspec: appspec,
                                   bundleSHA256: base == nil ? sha : nil)
        // Modes the appspec changed would come along in a delta's copies: such a release is no base.
        record.sealed = permissionsApplied > 0 ? nil : try seal()
        record.base = base?.name
        try writeAtomically(try JSONEncoder().encode(record), to: layout.record(name))
        guard rename(partial, target) == 0 else {
            throw AgentError("cannot move the release into place: \(String(cString: strerror(errno)))")
        }
        fsyncDirectory(layout.releases)
        if let entry = request.journal { try appendJournal(entry) }
        var result = AgentResult(ok: true)
        result.currentRelease = layout.currentRelease()
        summary.milliseconds = Int((HookRunner.monotonicSeconds() - started) * 1000)
        result.unpacked = summary
        return result
    }

    private func refusedDelta(_ why: String) -> AgentResult {
        var result = AgentResult(ok: false, message: "delta refused: " + why)
        result.deltaRefused = true
        return result
    }

    /// The release's seal: a time no earlier than any change to its files so far, and earlier than
    /// any change to come. Inode times come from the kernel's coarse clock, so the seal is a
    /// fresh file's ctime, and the agent waits (a few milliseconds at most) until that clock
    /// has moved past it: a file changed from now on has a later ctime.
    func seal() throws -> FileTime {
        let probe = layout.records + "/.seal.\(getpid())"
        let fd = open(probe, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw AgentError("cannot write \(probe): \(String(cString: strerror(errno)))") }
        defer {
            close(fd)
            unlink(probe)
        }
        func changeTime() -> FileTime {
            var info = stat()
            fstat(fd, &info)
            return FileTime(seconds: Int64(info.st_ctim.tv_sec), nanoseconds: Int64(info.st_ctim.tv_nsec))
        }
        let sealed = changeTime()
        let deadline = HookRunner.monotonicSeconds() + 1
        while HookRunner.monotonicSeconds() < deadline {
            var pause = timespec(tv_sec: 0, tv_nsec: 500_000)
            nanosleep(&pause, nil)
            fchmod(fd, 0o600) // a metadata change: the probe's ctime is the clock's now
            if changeTime() > sealed { return sealed }
        }
        throw AgentError("the file times of \(layout.records) do not advance; cannot seal the release")
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
        guard files.fileExists(atPath: layout.release(name)), let record = layout.readRecord(name) else {
            throw AgentError("release \(name) is not complete on this host")
        }
        let previous = layout.currentRelease()
        // The destinations first: they point at `current`, whichever release it is.
        let linked = try ensureLinks(request.links ?? [])
        // CodeDeploy's Install step: the release's file copies in place, another's undone.
        let copied: [String]
        do {
            copied = try installCopies(for: record)
        } catch {
            // current has not moved: the copies go back to those of the release it points at.
            if let previous, previous != name, let live = layout.readRecord(previous) { _ = try? installCopies(for: live) }
            throw error
        }
        // A release that goes live for the first time is `live` until its run confirms it.
        if record.state == .prepared { try mark(name, .live) }
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
            entry.revision = record.revision
            try appendJournal(entry)
        }
        var result = AgentResult(ok: true)
        result.currentRelease = name
        result.currentRevision = record.revision
        result.previousRelease = previous
        result.linked = linked.isEmpty ? nil : linked
        result.copied = copied.isEmpty ? nil : copied
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
