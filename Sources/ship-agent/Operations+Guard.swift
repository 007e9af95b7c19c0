#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import FoundationEssentials
import Hooks

/// The host's guard. Before a deployment runs `stop` of the release a host serves, the controller
/// opens one more ssh session running `ship-agent guard`, which writes `.ship/stopped.json` and
/// waits. The controller ends it with a `release` line once the host is settled (switched and
/// validated, started again on its old release, or reported down). If the session ends without
/// that line (the controller was killed, its machine or the connection went away), nobody is left
/// to start the host: the guard waits until no other hook of the deployment runs on the host, then
/// runs `start` and `validate` of the release `current` points at, so no host stays in
/// maintenance mode because its controller vanished. What it did goes to the journal.
extension Operations {
    struct StoppedMarker: Codable {
        var deploymentId: String
        var since: String
    }

    func guardHost() throws -> AgentResult {
        guard let journal = request.journal else { throw AgentError("guard: no deployment given") }
        let deploymentId = journal.deploymentId
        try makeDirectories()
        try markStopped(deploymentId)
        Output.emit(AgentEvent(kind: .ready))
        while let line = Input.readLine() {
            if line == Array("release".utf8) {
                clearStopped(deploymentId)
                return AgentResult(ok: true)
            }
        }
        // The controller is gone: nobody reads what follows.
        let null = open("/dev/null", O_WRONLY | O_CLOEXEC)
        if null >= 0 {
            dup2(null, 1)
            dup2(null, 2)
            close(null)
        }
        let lock = try FileLock(layout.hooksLock, exclusive: true)
        defer { lock.release() }
        // Settled meanwhile (its validate passed), or another deployment's guard took over.
        guard stoppedMarker()?.deploymentId == deploymentId else { return AgentResult(ok: true) }
        guard let current = layout.currentRelease() else {
            clearStopped(deploymentId)
            return AgentResult(ok: true)
        }
        var entry = journal
        entry.time = Self.now()
        entry.step = "guard_restarted"
        entry.release = current
        entry.detail = "the controller was lost; started \(current) again"
        for event in [LifecycleEvent.start, .validate] {
            let result = runHooks(of: current, event: event, environment: request.hookEnvironment ?? [:], deploymentId: deploymentId)
            if !result.ok {
                entry.step = "guard_restart_failed"
                entry.detail = "the controller was lost; starting \(current) again failed: \(result.message ?? "")"
                break
            }
        }
        try? appendJournal(entry)
        clearStopped(deploymentId)
        return AgentResult(ok: true)
    }

    func markStopped(_ deploymentId: String) throws {
        try writeAtomically(try JSONEncoder().encode(StoppedMarker(deploymentId: deploymentId, since: Self.now())), to: layout.stopped)
    }

    func stoppedMarker() -> StoppedMarker? {
        guard let data = files.contents(atPath: layout.stopped) else { return nil }
        return try? JSONDecoder().decode(StoppedMarker.self, from: data)
    }

    /// Removes the marker if this deployment wrote it.
    func clearStopped(_ deploymentId: String) {
        if stoppedMarker()?.deploymentId == deploymentId { unlink(layout.stopped) }
    }

    /// UTC, as the controller writes journal times.
    static func now() -> String {
        var clock = time(nil)
        var parts = tm()
        gmtime_r(&clock, &parts)
        var buffer = [CChar](repeating: 0, count: 32)
        let count = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%SZ", &parts)
        return String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// An advisory lock (flock) on a file, held until released or the process ends.
struct FileLock {
    let fd: Int32

    init(_ path: String, exclusive: Bool) throws {
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw AgentError("cannot open \(path): \(String(cString: strerror(errno)))") }
        while flock(fd, exclusive ? LOCK_EX : LOCK_SH) != 0 {
            guard errno == EINTR else {
                let message = String(cString: strerror(errno))
                close(fd)
                throw AgentError("cannot lock \(path): \(message)")
            }
        }
    }

    func release() {
        close(fd)
    }
}
