#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import FoundationEssentials
import Hooks

/// `ship-agent pull`: a host brings itself to its environment's current release, from the
/// artifact store, with no controller (docs/autoscaling.md): a new instance's user-data or an
/// Auto Scaling launch lifecycle hook runs it. It reads `envs/<app>/<env>/current.json`, fetches
/// the bundle (signed with the host's own credentials, its SHA-256 checked), and installs the
/// release as a deployment does on one host (stop of the release it replaces, install, switch,
/// after_install, start, validate, the allow-traffic hooks; never migrate: the database is on that
/// release already), under the host's deploy lock. Then, when given a lifecycle hook, it completes
/// it: CONTINUE, or ABANDON when the release could not be installed. A deployment that finished
/// meanwhile is followed before the instance goes in service.
enum Pull {
    struct Options {
        var bucket = ""
        var prefix = ""
        var app = ""
        var environment = ""
        var region: String?
        var endpoint: String?
        var roles: [String] = []
        var lifecycleHook: String?
        var autoScalingGroup: String?
        var instanceId: String?
        /// Seconds to wait for a deployment's lock on this host.
        var lockWait = 600
    }

    static let usage = """
        usage: ship-agent pull --store s3://BUCKET[/PREFIX] --app APP --env ENV [--region REGION] [--endpoint URL]
                               [--roles ROLE[,ROLE...]] [--lock-wait SECONDS]
                               [--lifecycle-hook NAME --auto-scaling-group NAME [--instance-id ID]]
        """

    enum Outcome {
        case installed(String)
        case upToDate(String)
        case nothingRecorded
    }

    static func run(_ arguments: [String]) -> Never {
        let options: Options
        do {
            options = try parse(arguments)
        } catch let error as AgentError {
            Output.fail(error.message + "\n" + usage, exitCode: 2)
        } catch {
            Output.fail("\(error)", exitCode: 2)
        }
        let aws: AWSAccess
        do {
            aws = try AWSAccess.resolve(region: options.region)
        } catch let error as AgentError {
            fail(error)
        } catch {
            fail(AgentError("\(error)"))
        }
        let puller = Puller(options: options, aws: aws)
        say("pull \(options.app) \(options.environment) from s3://\(options.bucket)\(options.prefix.isEmpty ? "" : "/" + options.prefix) "
            + "(region \(aws.region), credentials: \(aws.credentials.source))")
        var failure: AgentError?
        // Hook output and steps as lines, not the protocol's JSON.
        Output.sink = { event in HostPull.show(event) }
        do {
            switch try puller.pull() {
            case .installed(let release): say("done: release \(release) is live on this host (migrate not run: the database is on it already)")
            case .upToDate(let release): say("done: this host is on release \(release) already; nothing changed")
            case .nothingRecorded: say("done: \(puller.store.describe(puller.store.currentKey)) does not exist yet (no deployment with artifacts: so far); nothing to install")
            }
        } catch let error as AgentError {
            failure = error
        } catch {
            failure = AgentError("\(error)")
        }
        if options.lifecycleHook != nil {
            do {
                try puller.completeLifecycle(failure == nil ? "CONTINUE" : "ABANDON")
            } catch let error as AgentError {
                if failure == nil { failure = error } else { sayError(error.message) }
            } catch {
                if failure == nil { failure = AgentError("\(error)") }
            }
        }
        if let failure { fail(failure) }
        exit(0)
    }

    static func parse(_ arguments: [String]) throws -> Options {
        var options = Options()
        var store: String?
        var index = 0
        func value(_ name: String) throws -> String {
            index += 1
            guard index < arguments.count, !arguments[index].hasPrefix("--") else { throw AgentError("\(name) needs a value") }
            return arguments[index]
        }
        func name(_ text: String, _ what: String) throws -> String {
            guard HostLayout.validName(text) else { throw AgentError("\(what) '\(text)' is not a name ship gives (letters, digits, '.', '_', '-')") }
            return text
        }
        while index < arguments.count {
            let argument = arguments[index]
            switch argument {
            case "--store": store = try value(argument)
            case "--app": options.app = try name(try value(argument), "--app")
            case "--env": options.environment = try name(try value(argument), "--env")
            case "--region": options.region = try value(argument)
            case "--endpoint": options.endpoint = try value(argument)
            case "--roles": options.roles = try value(argument).split(separator: ",").map(String.init)
            case "--lifecycle-hook": options.lifecycleHook = try value(argument)
            case "--auto-scaling-group": options.autoScalingGroup = try value(argument)
            case "--instance-id": options.instanceId = try value(argument)
            case "--lock-wait":
                let text = try value(argument)
                guard let seconds = Int(text), seconds >= 0 else { throw AgentError("--lock-wait takes seconds, not '\(text)'") }
                options.lockWait = seconds
            default: throw AgentError("unknown argument '\(argument)'")
            }
            index += 1
        }
        guard let store, store.hasPrefix("s3://") else { throw AgentError("--store s3://BUCKET[/PREFIX] is required") }
        let path = store.dropFirst("s3://".count).split(separator: "/", omittingEmptySubsequences: true)
        guard let bucket = path.first else { throw AgentError("--store \(store) names no bucket") }
        options.bucket = String(bucket)
        options.prefix = path.dropFirst().joined(separator: "/")
        guard !options.app.isEmpty, !options.environment.isEmpty else { throw AgentError("--app and --env are required") }
        guard (options.lifecycleHook == nil) == (options.autoScalingGroup == nil) else {
            throw AgentError("--lifecycle-hook and --auto-scaling-group go together")
        }
        if let endpoint = options.endpoint, !(endpoint.hasPrefix("https://") || endpoint.hasPrefix("http://")) {
            throw AgentError("--endpoint must be an http(s) URL, not '\(endpoint)'")
        }
        return options
    }

    static func say(_ line: String) {
        Output.writeAll(1, Data((line + "\n").utf8))
    }

    static func sayError(_ line: String) {
        Output.writeAll(2, Data(("ship-agent pull: " + line + "\n").utf8))
    }

    static func fail(_ error: AgentError) -> Never {
        sayError(error.message)
        if let hint = error.hint { Output.writeAll(2, Data(("  hint: " + hint + "\n").utf8)) }
        exit(1)
    }
}

/// The store as `ship-agent pull` reads it: path-style URLs as the controller's S3 client makes.
struct PullStore {
    let aws: AWSAccess
    let endpoint: String
    let bucket: String
    let prefix: String
    let app: String
    let environment: String

    var currentKey: String { [prefix, "envs", app, environment, "current.json"].filter { !$0.isEmpty }.joined(separator: "/") }

    func url(_ key: String) -> String {
        StoreObject(endpoint: endpoint, bucket: bucket, key: key, region: aws.region).url
    }

    func describe(_ key: String) -> String { "s3://\(bucket)/\(key)" }

    /// current.json, or nil when no deployment wrote it yet.
    func current() throws -> EnvironmentRecord? {
        let answer = aws.send("GET", url(currentKey), service: "s3")
        if answer.status == 404 { return nil }
        guard answer.status == 200 else {
            throw AgentError("cannot read \(describe(currentKey)): " + Self.problem(answer),
                             hint: answer.status == 403 ? "the credentials (\(aws.credentials.source)) need s3:GetObject on \(describe(prefix.isEmpty ? "*" : prefix + "/*"))" : nil)
        }
        guard let record = try? JSONDecoder().decode(EnvironmentRecord.self, from: Data(answer.body.utf8)) else {
            throw AgentError("\(describe(currentKey)) is not a record ship wrote")
        }
        return record
    }

    /// What an answer that is not a success says: S3's and Auto Scaling's XML `<Message>`, else
    /// the status (or curl's error).
    static func problem(_ answer: Curl.Response) -> String {
        guard answer.status > 0 else { return answer.body }
        if let start = answer.body.firstRange(of: "<Message>"), let end = answer.body[start.upperBound...].firstRange(of: "</Message>") {
            return "HTTP \(answer.status): " + answer.body[start.upperBound..<end.lowerBound]
        }
        return "HTTP \(answer.status)"
    }
}

struct Puller {
    let options: Pull.Options
    let aws: AWSAccess
    let store: PullStore
    let environment = ProcessInfo.processInfo.environment

    init(options: Pull.Options, aws: AWSAccess) {
        self.options = options
        self.aws = aws
        let endpoint = options.endpoint ?? environment["AWS_ENDPOINT_URL_S3"].nonEmpty ?? environment["AWS_ENDPOINT_URL"].nonEmpty
            ?? "https://s3.\(aws.region).amazonaws.com"
        store = PullStore(aws: aws, endpoint: endpoint, bucket: options.bucket, prefix: options.prefix, app: options.app,
                          environment: options.environment)
    }

    func pull() throws -> Pull.Outcome {
        var outcome = Pull.Outcome.nothingRecorded
        var prepared: String?
        // A deployment that finished while this host installed moved current.json on: the host
        // follows it before it goes in service (a few times at most).
        for attempt in 0..<5 {
            let read: EnvironmentRecord?
            do {
                read = try store.current()
            } catch let error as AgentError where attempt > 0 {
                // The host is on the release the store named when the pull began.
                Pull.say("warning: cannot read the store again to check for a newer release: \(error.message)")
                return outcome
            }
            guard let record = read else { return outcome }
            guard record.app == options.app, record.environment == options.environment else {
                throw AgentError("\(store.describe(store.currentKey)) is the record of \(record.app) \(record.environment)")
            }
            guard let install = record.install else {
                throw AgentError("\(store.describe(store.currentKey)) (release \(record.release)) was written by a ship that did not record how to install it",
                                 hint: "deploy once more with this version of ship, then pull")
            }
            if case .upToDate(let release) = outcome, release == record.release { return outcome }
            if case .installed(let release) = outcome, release == record.release { return outcome }
            Pull.say("release \(record.release) (revision \(record.revision.prefix(12))) is current in the store, since \(record.time)")
            let host = try HostPull(puller: self, record: record, spec: install)
            if prepared != install.deployTo {
                try host.checkUser()
                // The agent hooks switch users with (runas, through the sudoers line) is this one.
                try host.installSelf()
                prepared = install.deployTo
            }
            outcome = try host.run()
        }
        return outcome
    }

    /// CompleteLifecycleAction of the Auto Scaling API, signed with SigV4; retried when no
    /// answer or a server error comes.
    func completeLifecycle(_ result: String) throws {
        guard let hook = options.lifecycleHook, let group = options.autoScalingGroup else { return }
        guard let instance = options.instanceId ?? aws.instanceId else {
            throw AgentError("cannot complete lifecycle hook \(hook): this instance's id is unknown", hint: "pass --instance-id")
        }
        var endpoint = environment["AWS_ENDPOINT_URL_AUTO_SCALING"].nonEmpty ?? environment["AWS_ENDPOINT_URL"].nonEmpty
            ?? "https://autoscaling.\(aws.region).amazonaws.com"
        while endpoint.hasSuffix("/") { endpoint.removeLast() }
        let form = [("Action", "CompleteLifecycleAction"), ("Version", "2011-01-01"), ("AutoScalingGroupName", group),
                    ("LifecycleHookName", hook), ("InstanceId", instance), ("LifecycleActionResult", result)]
            .map { "\($0.0)=\(URIEncoding.encoded($0.1))" }.joined(separator: "&")
        var answer = Curl.Response(status: 0, body: "")
        for attempt in 0..<4 {
            if attempt > 0 { sleep(UInt32(1 << attempt)) }
            answer = aws.send("POST", endpoint + "/", service: "autoscaling", form: form)
            if answer.status > 0 && answer.status < 500 { break }
        }
        guard answer.status == 200 else {
            throw AgentError("cannot complete lifecycle hook \(hook) of \(group) with \(result): " + PullStore.problem(answer),
                             hint: answer.status == 403 ? "the credentials (\(aws.credentials.source)) need autoscaling:CompleteLifecycleAction" : nil)
        }
        Pull.say("lifecycle hook \(hook) of \(group) completed for \(instance): \(result)")
    }
}

/// One release installed on this host by `ship-agent pull`, step by step as the controller has
/// the agent do it.
struct HostPull {
    let puller: Puller
    let record: EnvironmentRecord
    let spec: InstallSpec
    let layout: HostLayout
    let deploymentId: String
    let holder: String

    init(puller: Puller, record: EnvironmentRecord, spec: InstallSpec) throws {
        // The record comes from the store: a deploy_to ship would not write is refused.
        guard spec.deployTo.hasPrefix("/"), spec.deployTo != "/",
              !spec.deployTo.split(separator: "/").contains(where: { $0 == ".." || $0 == "." }) else {
            throw AgentError("the store's record of release \(record.release) names deploy_to '\(spec.deployTo)', which is not an absolute path ship would use")
        }
        self.puller = puller
        self.record = record
        self.spec = spec
        layout = HostLayout(deployTo: spec.deployTo)
        deploymentId = "pull-" + Operations.now("%Y%m%d%H%M%S") + "-\(getpid())"
        holder = "\(Operations.userName())@\(Operations.hostname())"
    }

    func request(_ operation: AgentOperation, _ configure: (inout AgentRequest) -> Void = { _ in }) -> AgentRequest {
        var request = AgentRequest(operation: operation, deployTo: spec.deployTo)
        configure(&request)
        return request
    }

    /// Runs an operation here; its result, a failure thrown.
    @discardableResult
    func perform(_ request: AgentRequest, step: String) throws -> AgentResult {
        let result = Operations(layout: layout, request: request).result()
        guard result.ok else { throw AgentError("\(step): " + (result.message ?? "failed"), hint: result.hint) }
        return result
    }

    func journal(_ step: String) -> JournalEntry {
        JournalEntry(time: Operations.now(), deploymentId: deploymentId, kind: "pull", step: step, release: record.release,
                     revision: record.revision, user: holder, environment: record.environment)
    }

    func run() throws -> Pull.Outcome {
        let preflight = try perform(request(.preflight) {
            $0.shared = spec.shared
            $0.runasUsers = spec.runasUsers
            $0.links = spec.links
            if spec.appspec.permissions?.isEmpty == false { $0.appspec = spec.appspec }
        }, step: "preflight")
        if let upToDate = unchanged(preflight) { return upToDate }
        let lock = LockInfo(deploymentId: deploymentId, holder: holder, started: Operations.now(), pid: getpid())
        let locked = try takeLock(lock)
        var finished = journal("finished")
        finished.status = "failed"
        finished.hostStatus = "failed"
        defer {
            let unlock = request(.unlock) {
                $0.lock = lock
                $0.journal = finished
            }
            _ = Operations(layout: layout, request: unlock).result()
        }
        if let upToDate = unchanged(locked) {
            finished.status = "succeeded"
            finished.hostStatus = nil
            finished.detail = "already on release \(record.release)"
            return upToDate
        }
        if locked.currentRelease == record.release {
            // Live but never confirmed (an earlier pull's validate failed, a run was cut short):
            // its hooks from the switch on run again.
            Pull.say("release \(record.release) is current here but was not validated: running its hooks from the switch on")
            try activate(env: hookEnvironment(previous: nil))
        } else {
            try install(previous: locked.currentRelease)
        }
        finished.status = "succeeded"
        finished.hostStatus = "succeeded"
        return .installed(record.release)
    }

    /// Up to date: current is the record's release, or a newer one a deployment made good here.
    func unchanged(_ state: AgentResult) -> Pull.Outcome? {
        guard let current = state.currentRelease,
              state.releaseInfos?.first(where: { $0.release == current })?.state == .good else { return nil }
        if current == record.release { return .upToDate(current) }
        if current > record.release {
            Pull.say("this host's release \(current) is newer than the store's and good: left as it is")
            return .upToDate(current)
        }
        return nil
    }

    /// Root pulls into a deploy_to that belongs to the deploy user would leave it files it
    /// cannot change: the pull runs as that user.
    func checkUser() throws {
        var info = stat()
        guard geteuid() == 0, stat(spec.deployTo, &info) == 0, info.st_uid != 0 else { return }
        let owner = Users.name(of: info.st_uid) ?? "uid \(info.st_uid)"
        throw AgentError("\(spec.deployTo) belongs to \(owner), and this pull runs as root",
                         hint: "run it as \(owner): runuser -u \(owner) -- \(CommandLine.arguments.joined(separator: " "))")
    }

    /// Puts this agent at `.ship/bin/ship-agent` unless the same is there.
    func installSelf() throws {
        let me = "/proc/self/exe"
        var mySize = stat(), theirs = stat()
        let sameSize = stat(me, &mySize) == 0 && stat(layout.agent, &theirs) == 0 && mySize.st_size == theirs.st_size
        guard let mine = FileManager.default.contents(atPath: me) else { throw AgentError("cannot read \(me)") }
        if sameSize, FileManager.default.contents(atPath: layout.agent) == mine { return }
        let directory = String(layout.agent[..<layout.agent.lastIndex(of: "/")!])
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw AgentError("cannot create \(directory) as \(Operations.userName()): \(error)")
        }
        let temporary = directory + "/.ship-agent.\(getpid()).tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o755)
        guard fd >= 0 else { throw AgentError("cannot write \(temporary): \(String(cString: strerror(errno)))") }
        let written = mine.withUnsafeBytes { POSIXIO.writeAll(fd, $0) }
        close(fd)
        guard written, chmod(temporary, 0o755) == 0, rename(temporary, layout.agent) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw AgentError("cannot install the agent at \(layout.agent): \(reason)")
        }
    }

    /// The host's deploy lock; a deployment holding it is waited for (`--lock-wait`).
    func takeLock(_ lock: LockInfo) throws -> AgentResult {
        let started = HookRunner.monotonicSeconds()
        var said = false
        while true {
            let result = Operations(layout: layout, request: request(.lock) { $0.lock = lock }).result()
            if result.ok { return result }
            guard let holder = result.lock else { throw AgentError("lock: " + (result.message ?? "failed")) }
            if isStale(holder) {
                // A pull on this host that is no longer running (killed, the instance rebooted)
                // leaves its lock: this one takes it over, and says so.
                _ = Operations(layout: layout, request: request(.unlock) { $0.force = true }).result()
                Pull.say("removed the lock of \(holder.holder)'s pull \(holder.deploymentId), which is no longer running (pid \(holder.pid.map(String.init) ?? "?"))")
                continue
            }
            if HookRunner.monotonicSeconds() - started >= Double(puller.options.lockWait) {
                throw AgentError("this host is locked by \(holder.holder) (deployment \(holder.deploymentId), since \(holder.started))",
                                 hint: "if that deployment is over, `ship unlock \(record.environment)` from the controller clears the lock")
            }
            if !said {
                Pull.say("waiting for the lock of \(holder.holder) (deployment \(holder.deploymentId)) on this host")
                said = true
            }
            sleep(2)
        }
    }

    /// A lock of a pull by this user on this host whose process is gone (or is another program).
    func isStale(_ holder: LockInfo) -> Bool {
        guard holder.deploymentId.hasPrefix("pull-"), holder.holder == self.holder, let pid = holder.pid else { return false }
        guard kill(pid, 0) == 0 || errno == EPERM else { return true }
        let command = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline").map { String(decoding: $0, as: UTF8.self) } ?? ""
        return !(command.contains("ship-agent") && command.contains("pull"))
    }

    /// What the controller gives a host's hooks, without the host's own entries of ship.yml.
    func hookEnvironment(previous: String?) -> [String: String] {
        var env = spec.environment
        env["SHIP_HOST"] = Operations.hostname()
        env["SHIP_ROLES"] = puller.options.roles.joined(separator: ",")
        if let instance = puller.options.instanceId ?? puller.aws.instanceId { env["SHIP_INSTANCE_ID"] = instance }
        env["SHIP_DEPLOYMENT_ID"] = deploymentId
        env["DEPLOYMENT_ID"] = deploymentId
        env["SHIP_RELEASE"] = record.release
        env["SHIP_RELEASE_PATH"] = layout.release(record.release)
        env["SHIP_PREVIOUS_RELEASE_PATH"] = previous.map { layout.release($0) } ?? ""
        env["SHIP_REVISION"] = record.revision
        for name in spec.secretNames ?? [] {
            if let value = puller.environment[name] { env[name] = value }
        }
        return env
    }

    func hooks(_ release: String, _ event: LifecycleEvent, _ env: [String: String], settles: Bool = false) throws {
        try perform(request(.runHooks) {
            $0.release = release
            $0.event = event
            $0.hookEnvironment = env
            $0.secretNames = spec.secretNames
            $0.settles = settles ? true : nil
            $0.journal = journal("hooks")
        }, step: event.rawValue)
    }

    func install(previous: String?) throws {
        let missing = (spec.secretNames ?? []).filter { puller.environment[$0] == nil }
        if !missing.isEmpty {
            Pull.say("warning: secret\(missing.count == 1 ? "" : "s") \(missing.joined(separator: ", ")) not in this process's environment: "
                     + "the hooks run without \(missing.count == 1 ? "it" : "them")")
        }
        let fetched = try Operations(layout: layout, request: request(.fetch) { $0.bundleSHA256 = record.sha256 })
            .fetchBundle(from: puller.store.url(record.bundle), signing: puller.aws.signing("s3"))
        if let bytes = fetched.fetched {
            Pull.say("bundle fetched from \(puller.store.describe(record.bundle)) (\(bytes) bytes, SHA-256 verified)")
        }
        // A release of this name that is not live is a pull's or a deployment's left unfinished.
        if FileManager.default.fileExists(atPath: layout.release(record.release)) {
            try perform(request(.discard) { $0.release = record.release }, step: "discard")
        }
        let env = hookEnvironment(previous: previous)
        let prepared = try perform(request(.prepare) {
            $0.release = record.release
            $0.revision = record.revision
            $0.appspec = spec.appspec
            $0.shared = spec.shared
            $0.bundleSHA256 = record.sha256
            $0.journal = journal("prepared")
        }, step: "unpack")
        Pull.say("release \(record.release) unpacked" + (prepared.unpacked.map { " (\($0.entries) entries, \($0.milliseconds) ms)" } ?? ""))
        var stopped = false
        var switched = false
        do {
            if let previous {
                try hooks(previous, .beforeBlockTraffic, env)
                try hooks(previous, .afterBlockTraffic, env)
                stopped = true
                try hooks(previous, .stop, env)
            }
            try hooks(record.release, .install, env)
            let switchResult = try perform(request(.switchCurrent) {
                $0.release = record.release
                $0.links = spec.links
                $0.fileExistsBehavior = spec.fileExistsBehavior
                $0.journal = journal("switched")
            }, step: "switch")
            switched = true
            Pull.say("current is release \(record.release)" + (switchResult.previousRelease.map { " (was \($0))" } ?? ""))
            try activate(env: env)
        } catch let error as AgentError {
            Pull.sayError(error.message)
            recover(previous: previous, stopped: stopped, switched: switched)
            throw AgentError("release \(record.release) was not installed: " + error.message, hint: error.hint)
        }
        let prune = Operations(layout: layout, request: request(.prune) {
            $0.keepReleases = spec.keepReleases
            $0.protectedReleases = previous.map { [$0] } ?? []
        }).result()
        if let pruned = prune.pruned, !pruned.isEmpty { Pull.say("pruned \(pruned.joined(separator: ", "))") }
        for warning in prune.warnings ?? [] { Pull.say("warning: " + warning) }
    }

    /// The hooks after the switch.
    func activate(env: [String: String]) throws {
        for event in [LifecycleEvent.afterInstall, .start, .validate, .beforeAllowTraffic, .afterAllowTraffic] {
            try hooks(record.release, event, env, settles: event == .validate)
        }
    }

    /// After a failure: a release that never went live is removed; the release it was to replace
    /// is current again and started when it was stopped, so the host serves as before.
    func recover(previous: String?, stopped: Bool, switched: Bool) {
        if switched, let previous {
            let back = Operations(layout: layout, request: request(.switchCurrent) {
                $0.release = previous
                $0.links = spec.links
                $0.journal = journal("switched")
            }).result()
            guard back.ok else {
                Pull.sayError("cannot switch back to release \(previous): \(back.message ?? "failed")")
                return
            }
            Pull.say("current is release \(previous) again")
        }
        if !switched || previous != nil {
            _ = Operations(layout: layout, request: request(.discard) { $0.release = record.release }).result()
        }
        guard stopped, let previous else { return }
        // run-hooks gives each hook its own release's SHIP_RELEASE, path and revision.
        let env = hookEnvironment(previous: nil)
        do {
            try hooks(previous, .start, env)
            try hooks(previous, .validate, env, settles: true)
            Pull.say("release \(previous) started again")
        } catch {
            Pull.sayError("release \(previous) could not be started again: \((error as? AgentError)?.message ?? "\(error)")")
        }
    }

    /// Hook events as lines of the pull's output.
    static func show(_ event: AgentEvent) {
        let name = event.event?.rawValue ?? "hook"
        switch event.kind {
        case .hookStarted: Pull.say("\(name): \(event.hook ?? "")")
        case .output: Pull.say("  | " + (event.line ?? ""))
        case .hookFinished:
            guard let outcome = event.outcome else { return }
            Pull.say("\(name): \(event.hook ?? "") " + (outcome.succeeded ? "ok" : "failed: " + outcome.summary)
                     + " (\(Int(outcome.duration * 1000)) ms)")
        case .ready, .result: break
        }
    }
}
