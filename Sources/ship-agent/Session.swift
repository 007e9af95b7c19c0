#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import FoundationEssentials
import Hooks

/// `ship-agent serve`: one session for a whole deployment. Requests arrive one JSON line at a
/// time on stdin (a bundle's bytes right after its request, `payloadBytes` long); each is answered
/// with its events and its result on stdout, as a one-shot `ship-agent OP` would.
///
/// The session also keeps watch over the host. A deployment that runs `stop` of the release the
/// host serves leaves `.ship/stopped.json` until a `validate` passes (`settles`) or the controller
/// says `settle`. If stdin ends while that marker is still this session's deployment's (ship was
/// killed, its machine or the connection went away, a second Ctrl-C), nobody is left to start the
/// host: the agent waits until no other hook runs on the host (`.ship/hooks.lock`), then runs
/// `start` and `validate` of the release `current` points at, and journals what it did.
enum Session {
    static func serve() -> Never {
        var watched: (layout: HostLayout, request: AgentRequest)?
        while let line = Input.readLine() {
            guard let request = try? JSONDecoder().decode(AgentRequest.self, from: Data(line)) else {
                reply(AgentResult(ok: false, message: "malformed request in session"))
                break
            }
            guard request.protocolVersion == AgentProtocol.version else {
                reply(AgentResult(ok: false, message: "protocol version \(request.protocolVersion) requested; this agent speaks \(AgentProtocol.version)"))
                break
            }
            guard request.operation.servedInSession, request.deployTo.hasPrefix("/") else {
                reply(AgentResult(ok: false, message: "\(request.operation.rawValue) is not served in a session"))
                continue
            }
            let layout = HostLayout(deployTo: request.deployTo)
            let result = Operations(layout: layout, request: request).result()
            if request.operation == .runHooks, request.event == .stop, request.journal != nil { watched = (layout, request) }
            if request.operation == .settle { watched = nil }
            reply(result)
        }
        // The controller is gone (or done, and said `settle`).
        if let watched {
            let null = open("/dev/null", O_WRONLY | O_CLOEXEC)
            if null >= 0 {
                dup2(null, 1)
                dup2(null, 2)
                close(null)
            }
            Operations(layout: watched.layout, request: watched.request).startAgainIfUnsettled()
        }
        exit(0)
    }

    static func reply(_ result: AgentResult) {
        Output.emit(AgentEvent(kind: .result, result: result))
    }
}

extension Operations {
    /// The operation's result, a thrown error turned into a failed one.
    func result() -> AgentResult {
        do {
            return try perform()
        } catch let error as AgentError {
            var result = AgentResult(ok: false, message: error.message)
            result.hint = error.hint
            return result
        } catch {
            return AgentResult(ok: false, message: "\(error)")
        }
    }

    /// `settle`: the controller is done with this host for the deployment.
    func settle() throws -> AgentResult {
        guard let deploymentId = request.journal?.deploymentId else { throw AgentError("settle: no deployment given") }
        clearStopped(deploymentId)
        return AgentResult(ok: true)
    }

    /// After the controller was lost: `start` and `validate` of `current`, if the stop this
    /// request's deployment ran is still unsettled, once no other hook runs on the host.
    func startAgainIfUnsettled() {
        guard let journal = request.journal, let lock = try? FileLock(layout.hooksLock, exclusive: true) else { return }
        defer { lock.release() }
        let deploymentId = journal.deploymentId
        // Settled meanwhile (its validate passed), or another deployment's stop since.
        guard stoppedMarker()?.deploymentId == deploymentId else { return }
        guard let current = layout.currentRelease() else {
            clearStopped(deploymentId)
            return
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
        if entry.step == "guard_restarted" {
            clearStopped(deploymentId)
        } else {
            // Still down: `ship status` says so until a deployment or a rollback settles the host.
            try? writeAtomically(try JSONEncoder().encode(StoppedState(deploymentId: deploymentId, since: Self.now(), restartFailed: true)),
                                 to: layout.stopped)
        }
    }

    func markStopped(_ deploymentId: String) throws {
        try writeAtomically(try JSONEncoder().encode(StoppedState(deploymentId: deploymentId, since: Self.now())), to: layout.stopped)
    }

    func stoppedMarker() -> StoppedState? {
        guard let data = files.contents(atPath: layout.stopped) else { return nil }
        return try? JSONDecoder().decode(StoppedState.self, from: data)
    }

    /// Removes the marker if this deployment wrote it.
    func clearStopped(_ deploymentId: String) {
        if stoppedMarker()?.deploymentId == deploymentId { unlink(layout.stopped) }
    }

    /// UTC, as the controller writes journal times (or in another strftime `format`).
    static func now(_ format: String = "%Y-%m-%dT%H:%M:%SZ") -> String {
        var clock = time(nil)
        var parts = tm()
        gmtime_r(&clock, &parts)
        var buffer = [CChar](repeating: 0, count: 32)
        let count = strftime(&buffer, buffer.count, format, &parts)
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
