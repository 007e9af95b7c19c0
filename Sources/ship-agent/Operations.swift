#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import FoundationEssentials
import Hooks

/// The agent's operations: host-local steps, each leaving the host consistent.
struct Operations {
    let layout: HostLayout
    let request: AgentRequest
    let files = FileManager.default

    func perform() throws -> AgentResult {
        switch request.operation {
        case .preflight: return try preflight()
        case .lock: return try takeLock()
        case .unlock: return try releaseLock()
        case .receiveBundle: return try receiveBundle()
        case .fetch: return try fetchBundle()
        case .prepare: return try prepare()
        case .runHooks: return try runHooks()
        case .exec: return try exec()
        case .logs: return try logs()
        case .setup: return try setup()
        case .switchCurrent: return try switchCurrent()
        case .discard: return try discard()
        case .prune: return try prune()
        case .state: return try state()
        case .backupDatabase: return try backupDatabase()
        case .restoreDatabase: return try restoreDatabase()
        case .backupAssets: return try backupAssets()
        case .restoreAssets: return try restoreAssets()
        case .settle: return try settle()
        case .traffic: return try traffic()
        }
    }

    // MARK: - Preflight and lock

    func preflight() throws -> AgentResult {
        var result = AgentResult(ok: true)
        result.hostname = Self.hostname()
        if request.bundleSHA256 != nil { result.present = files.fileExists(atPath: layout.bundle(try bundleSHA())) }
        let missing = (request.shared?.files ?? []).filter { !files.fileExists(atPath: layout.shared + "/" + $0) }
        result.missing = missing
        if !missing.isEmpty {
            result.ok = false
            result.message = "shared file\(missing.count == 1 ? "" : "s") missing: "
                + missing.map { layout.shared + "/" + $0 }.joined(separator: ", ")
        }
        // Nothing is created here: preflight only looks.
        var existing = layout.deployTo
        while !files.fileExists(atPath: existing), let slash = existing.lastIndex(of: "/"), existing != "/" {
            existing = slash == existing.startIndex ? "/" : String(existing[..<slash])
        }
        guard access(existing, W_OK) == 0 else {
            throw AgentError("\(existing) is not writable by \(Self.userName()); ship cannot create \(layout.deployTo)")
        }
        if let problem = linkProblem(request.links ?? []) ?? permissionProblem(request.appspec?.permissions ?? []) {
            result.ok = false
            result.message = problem.message
            result.hint = problem.hint
            return result
        }
        for user in request.runasUsers ?? [] {
            if let problem = Users.runasProblem(user, agentPath: layout.agent) {
                result.ok = false
                result.message = problem.message
                result.hint = problem.hint
                return result
            }
        }
        result.currentRelease = layout.currentRelease()
        result.currentRevision = layout.currentRevision()
        result.releases = layout.releaseNames()
        result.releaseInfos = releaseInfos()
        result.lock = readLock()
        return result
    }

    func makeDirectories() throws {
        for directory in [layout.deployTo, layout.releases, layout.shared, layout.state, layout.bundles, layout.records, layout.logs] {
            do {
                try files.createDirectory(atPath: directory, withIntermediateDirectories: true)
            } catch {
                throw AgentError("cannot create \(directory) as \(Self.userName()): \(error)")
            }
        }
    }

    func readLock() -> LockInfo? {
        guard let data = files.contents(atPath: layout.lock) else { return nil }
        return (try? JSONDecoder().decode(LockInfo.self, from: data))
            ?? LockInfo(deploymentId: "unknown", holder: "unreadable lock file \(layout.lock)", started: "")
    }

    func takeLock() throws -> AgentResult {
        guard let lock = request.lock else { throw AgentError("lock: no lock holder given") }
        try makeDirectories()
        let fd = open(layout.lock, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        if fd < 0 {
            guard errno == EEXIST else { throw AgentError("cannot create \(layout.lock): \(String(cString: strerror(errno)))") }
            let holder = readLock()
            var result = AgentResult(ok: holder?.deploymentId == lock.deploymentId)
            result.lock = holder
            if !result.ok { result.message = "locked by \(holder?.holder ?? "?") (deployment \(holder?.deploymentId ?? "?"))" }
            return result
        }
        var data = try JSONEncoder().encode(lock)
        data.append(0x0A)
        Output.writeAll(fd, data)
        fsync(fd)
        close(fd)
        var result = AgentResult(ok: true)
        result.lock = lock
        // Read under the lock: another deployment may have run while this one waited, so the
        // controller takes the current release and the release names from here.
        result.releases = layout.releaseNames()
        result.releaseInfos = releaseInfos()
        result.currentRelease = layout.currentRelease()
        result.currentRevision = layout.currentRevision()
        return result
    }

    /// Removes the lock if it is the requester's (or with force); a journal entry sent along (the
    /// deployment's end) is appended first, saving a round trip.
    func releaseLock() throws -> AgentResult {
        guard let holder = readLock() else {
            if let entry = request.journal { try appendJournal(entry) }
            return AgentResult(ok: true, message: "not locked")
        }
        if request.force != true && holder.deploymentId != request.lock?.deploymentId {
            var result = AgentResult(ok: false, message: "the lock belongs to deployment \(holder.deploymentId) of \(holder.holder)")
            result.lock = holder
            return result
        }
        if let entry = request.journal {
            try appendJournal(entry)
            try markFromFinalEntry(entry)
        }
        guard unlink(layout.lock) == 0 || errno == ENOENT else {
            throw AgentError("cannot remove \(layout.lock): \(String(cString: strerror(errno)))")
        }
        var result = AgentResult(ok: true)
        result.lock = holder
        return result
    }

    // MARK: - Bundles

    func bundleSHA() throws -> String {
        guard let sha = request.bundleSHA256, sha.count == 64, sha.allSatisfy(\.isHexDigit) else {
            throw AgentError("no valid bundle SHA-256 given")
        }
        return sha.lowercased()
    }

    func receiveBundle() throws -> AgentResult {
        // In a session the bundle's bytes are followed by the next request: whatever fails
        // before they are read, they are read (and dropped), so the session stays in step.
        var unread = request.payloadBytes
        defer { if let unread { Input.discard(unread) } }
        let sha = try bundleSHA()
        try makeDirectories()
        let temporary = layout.bundle(sha) + ".\(getpid()).partial"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw AgentError("cannot create \(temporary): \(String(cString: strerror(errno)))") }
        unread = nil
        let bytes: Int
        do {
            bytes = try Input.copy(to: fd, in: layout.bundles, limit: request.payloadBytes)
            guard fsync(fd) == 0 else {
                let code = errno
                if DiskSpace.isFull(errno: code) {
                    throw AgentError(DiskSpace.message(at: layout.bundles, while: "receiving the bundle", needed: nil))
                }
                throw AgentError("cannot write \(temporary): \(String(cString: strerror(code)))")
            }
            close(fd)
        } catch {
            close(fd)
            unlink(temporary)
            throw error
        }
        let sum = Helper.run(["sha256sum", temporary])
        let actual = sum.output.split(separator: " ").first.map(String.init) ?? ""
        guard sum.status == 0, actual == sha else {
            unlink(temporary)
            throw AgentError("bundle SHA-256 mismatch after \(bytes) bytes: expected \(sha), got \(actual.isEmpty ? sum.output : actual)")
        }
        chmod(temporary, 0o644)
        guard rename(temporary, layout.bundle(sha)) == 0 else {
            unlink(temporary)
            throw AgentError("cannot store the bundle: \(String(cString: strerror(errno)))")
        }
        var result = AgentResult(ok: true)
        result.present = true
        return result
    }

    /// `fetch`: the bundle from the artifact store, by the host's curl, into the bundle cache.
    /// The link goes to curl on its stdin (`--config -`), not on its command line, where `ps`
    /// would show it to every user of the host; the bytes are kept only if their SHA-256 is the
    /// one the controller gave.
    func fetchBundle() throws -> AgentResult {
        if let object = request.bundleObject {
            let aws = try AWSAccess.resolve(region: object.region)
            return try fetchBundle(from: object.url, signing: aws.signing("s3"))
        }
        guard let url = request.bundleURL, url.hasPrefix("https://") || url.hasPrefix("http://") else {
            throw AgentError("fetch: no link to the bundle was given")
        }
        return try fetchBundle(from: url)
    }

    /// The bundle from `url` into the cache, unless it is there; `signing`: curl config lines
    /// that sign the request (`ship-agent pull`, with the host's own credentials).
    func fetchBundle(from url: String, signing: [String] = []) throws -> AgentResult {
        let sha = try bundleSHA()
        try makeDirectories()
        var result = AgentResult(ok: true)
        result.present = true
        if files.fileExists(atPath: layout.bundle(sha)) { return result }
        guard let curl = Child.findOnPath(["curl"]) else {
            throw AgentError("curl is not installed on this host, so it cannot fetch bundles from the store",
                             hint: "install curl (apt-get install curl); until then ship sends the bundle over ssh")
        }
        let temporary = layout.bundle(sha) + ".\(getpid()).fetching"
        let config = (["url = \(Curl.quoted(url))", "output = \(Curl.quoted(temporary))"] + signing).joined(separator: "\n") + "\n"
        let fetched = Helper.run([curl, "--config", "-", "--fail", "--silent", "--show-error", "--retry", "3", "--connect-timeout", "15",
                                  "--speed-limit", "1", "--speed-time", "60"], input: Array(config.utf8))
        guard fetched.status == 0 else {
            // curl's 23 is a failed write: on a bundle cache, a full disk.
            let full = fetched.status == 23 || DiskSpace.isFull(output: fetched.output)
            unlink(temporary)
            if full { throw AgentError(DiskSpace.message(at: layout.bundles, while: "fetching the bundle", needed: nil)) }
            throw AgentError("cannot fetch the bundle from the store: \(fetched.output.trimmed) (curl exit \(fetched.status))")
        }
        var info = stat()
        let bytes = stat(temporary, &info) == 0 ? Int64(info.st_size) : 0
        let sum = Helper.run(["sha256sum", temporary])
        let actual = sum.output.split(separator: " ").first.map(String.init) ?? ""
        guard sum.status == 0, actual == sha else {
            unlink(temporary)
            throw AgentError("the bundle fetched from the store is not the one published: SHA-256 \(actual.isEmpty ? sum.output.trimmed : actual) "
                             + "after \(bytes) bytes, expected \(sha); refused before anything was unpacked")
        }
        chmod(temporary, 0o644)
        guard rename(temporary, layout.bundle(sha)) == 0 else {
            unlink(temporary)
            throw AgentError("cannot store the bundle: \(String(cString: strerror(errno)))")
        }
        result.fetched = bytes
        return result
    }

    // MARK: - Hooks

    func runHooks() throws -> AgentResult {
        let name = try releaseName()
        guard let event = request.event else { throw AgentError("run-hooks: no event given") }
        try makeDirectories()
        // A guard starting the host again waits for these hooks, and these for it.
        let lock = try FileLock(layout.hooksLock, exclusive: false)
        defer { lock.release() }
        let deploymentId = request.journal?.deploymentId ?? "manual"
        // A host whose release stops is unsettled until a validate passes (its guard watches);
        // a rollback stopping a validated host again unsettles it again.
        if event == .stop { try markStopped(deploymentId) }
        let result = runHooks(of: name, event: event, environment: request.hookEnvironment ?? [:], deploymentId: deploymentId)
        if result.ok && request.settles == true { clearStopped(deploymentId) }
        return result
    }

    /// Runs one event's hooks of a release, emitting their events; stops at the first failure.
    func runHooks(of name: String, event: LifecycleEvent, environment base: [String: String], deploymentId: String) -> AgentResult {
        guard let record = layout.readRecord(name) else {
            return AgentResult(ok: true, message: "release \(name) has no appspec record; no \(event.rawValue) hooks")
        }
        let log = layout.logs + "/\(deploymentId)-\(event.rawValue).log"
        for hook in record.appspec.hooks(for: event) {
            var environment = base
            // A hook always sees the release it belongs to: the old release's stop during a
            // deployment, and its start and validate during a rollback, get their own.
            environment["SHIP_RELEASE"] = name
            environment["SHIP_RELEASE_PATH"] = layout.release(name)
            environment["SHIP_REVISION"] = record.revision
            environment["SHIP_EVENT"] = event.rawValue
            environment["LIFECYCLE_EVENT"] = hook.declaredEvent
            Output.emit(AgentEvent(kind: .hookStarted, hook: hook.summary, event: event))
            // runas naming the agent's own user needs no switch (and no sudo).
            let runas = hook.runas.flatMap { $0 == Users.currentName() ? nil : $0 }
            let outcome = HookRunner.run(.init(command: hook.command, workingDirectory: layout.release(name),
                                               environment: environment, timeout: hook.timeout, runas: runas,
                                               logFile: log, agentPath: layout.agent, mask: secretMask)) { line in
                Output.emit(AgentEvent(kind: .output, line: line, hook: hook.summary, event: event))
            }
            Output.emit(AgentEvent(kind: .hookFinished, hook: hook.summary, event: event, outcome: outcome))
            if let runas, geteuid() != 0 { rememberRunas(runas) }
            if !outcome.succeeded {
                return AgentResult(ok: false, message: "\(event.rawValue) hook `\(hook.summary)` failed: \(outcome.summary)")
            }
        }
        return AgentResult(ok: true)
    }

    /// `ship exec`: the command in `current`, with the hook environment of the release there.
    /// Its output goes to the controller as it comes and to `.ship/logs/<id>-exec.log`.
    func exec() throws -> AgentResult {
        guard let line = request.command, !line.isEmpty else { throw AgentError("exec: no command given") }
        guard let name = layout.currentRelease(), files.fileExists(atPath: layout.release(name)) else {
            var result = AgentResult(ok: false, message: "no release is current on this host")
            result.hint = "deploy first: ship deploy"
            return result
        }
        try makeDirectories()
        let runas = request.runas.flatMap { $0 == Users.currentName() ? nil : $0 }
        if let runas, let problem = Users.runasProblem(runas, agentPath: layout.agent) {
            var result = AgentResult(ok: false, message: problem.message)
            result.hint = problem.hint
            return result
        }
        var environment = request.hookEnvironment ?? [:]
        environment["SHIP_RELEASE"] = name
        environment["SHIP_RELEASE_PATH"] = layout.release(name)
        environment["SHIP_REVISION"] = layout.readRecord(name)?.revision ?? layout.currentRevision() ?? ""
        // `pwd` says current, as after `cd current` (the directory is the release it points at).
        environment["PWD"] = layout.current
        let id = request.journal?.deploymentId ?? "exec"
        let shown = secretMask.apply(line)
        Output.emit(AgentEvent(kind: .hookStarted, hook: shown))
        let outcome = HookRunner.run(.init(command: .shell(line), workingDirectory: layout.current, environment: environment,
                                           timeout: request.timeout ?? 3600, runas: runas,
                                           logFile: layout.logs + "/\(id)-exec.log", agentPath: layout.agent, mask: secretMask)) { output in
            Output.emit(AgentEvent(kind: .output, line: output, hook: shown))
        }
        Output.emit(AgentEvent(kind: .hookFinished, hook: shown, outcome: outcome))
        var result = AgentResult(ok: outcome.succeeded, message: outcome.succeeded ? nil : outcome.summary)
        result.currentRelease = name
        return result
    }

    /// `ship logs`: the deployment's hook logs in lifecycle order (an exec's last), each from
    /// its offset to its last complete line (to its end once the deployment has finished).
    func logs() throws -> AgentResult {
        guard let id = request.logDeployment, !id.isEmpty, id.utf8.allSatisfy({ $0 < 0x80 && (isalnum(Int32($0)) != 0 || $0 == UInt8(ascii: "-")) }) else {
            throw AgentError("logs: no valid deployment id given")
        }
        // An exec (`x…`) keeps no journal: what its log holds is all there is to show.
        let finished = id.hasPrefix("x") || readJournal().contains { $0.deploymentId == id && $0.step == "finished" }
        let prefix = id + "-"
        let names = ((try? files.contentsOfDirectory(atPath: layout.logs)) ?? []).filter { $0.hasPrefix(prefix) && $0.hasSuffix(".log") }
        func rank(_ event: String) -> Int { LifecycleEvent.order.firstIndex { $0.rawValue == event } ?? LifecycleEvent.order.count }
        let events = names.map { String($0.dropFirst(prefix.count).dropLast(".log".count)) }.sorted { (rank($0), $0) < (rank($1), $1) }
        var offsets = request.logOffsets ?? [:]
        for event in events where request.logEvent == nil || request.logEvent == event {
            let fd = open(layout.logs + "/" + prefix + event + ".log", O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { continue }
            defer { close(fd) }
            let start = offsets[event] ?? 0
            guard lseek(fd, off_t(start), SEEK_SET) >= 0 else { continue }
            var bytes: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let count = read(fd, &buffer, buffer.count)
                guard count > 0 else { break }
                bytes += buffer[0..<count]
            }
            // A line still being written waits for the next read, unless nothing more will come.
            let end = finished ? bytes.count : (bytes.lastIndex(of: 0x0A).map { $0 + 1 } ?? 0)
            offsets[event] = start + Int64(end)
            guard end > 0 else { continue }
            for line in bytes[0..<end].split(separator: 0x0A, omittingEmptySubsequences: false).dropLast(bytes[0..<end].last == 0x0A ? 1 : 0) {
                Output.emit(AgentEvent(kind: .output, line: String(decoding: line, as: UTF8.self), hook: event))
            }
        }
        var result = AgentResult(ok: true)
        result.logOffsets = offsets
        result.finished = finished
        result.found = !events.isEmpty
        return result
    }

    /// The request's secret values (`secretNames` of `hookEnvironment`), hidden in hook output.
    var secretMask: SecretMask {
        SecretMask(values: (request.secretNames ?? []).compactMap { request.hookEnvironment?[$0] })
    }

    // MARK: - Files

    func remove(_ path: String) throws {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        let removal = Helper.run(["rm", "-rf", "--", path])
        guard removal.status != 0 else { return }
        // A release another user wrote files into (or was given) goes to the trash whole, which
        // deletes it as those users can, or keeps it out of the way until a prune can.
        guard Self.parent(of: path) == layout.releases else { throw AgentError("cannot remove \(path): \(removal.output)") }
        let name = Permissions.name(of: path) + ".\(getpid()).\(Int(HookRunner.monotonicSeconds() * 1000))"
        try? files.createDirectory(atPath: trash, withIntermediateDirectories: true)
        guard rename(path, trash + "/" + name) == 0 else { throw AgentError("cannot remove \(path): \(removal.output)") }
        _ = deleteFromTrash(name)
    }

    func writeAtomically(_ data: Data, to path: String) throws {
        let temporary = path + ".\(getpid()).tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw AgentError("cannot write \(path): \(String(cString: strerror(errno)))") }
        Output.writeAll(fd, data)
        fsync(fd)
        close(fd)
        guard rename(temporary, path) == 0 else { throw AgentError("cannot write \(path): \(String(cString: strerror(errno)))") }
    }

    func fsyncDirectory(_ path: String) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 {
            fsync(fd)
            close(fd)
        }
    }

    func appendJournal(_ entry: JournalEntry) throws {
        var data = try JSONEncoder().encode(entry)
        data.append(0x0A)
        let fd = open(layout.journal, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw AgentError("cannot write \(layout.journal): \(String(cString: strerror(errno)))") }
        Output.writeAll(fd, data)
        fsync(fd)
        close(fd)
    }

    func readJournal() -> [JournalEntry] {
        guard let data = files.contents(atPath: layout.journal) else { return [] }
        return data.split(separator: 0x0A).compactMap { try? JSONDecoder().decode(JournalEntry.self, from: Data($0)) }
    }

    static func hostname() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        gethostname(&buffer, buffer.count)
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func userName() -> String {
        Users.currentName() ?? "uid \(geteuid())"
    }
}
