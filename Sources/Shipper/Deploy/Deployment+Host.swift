import Crypto
import Foundation
import Hooks

/// The lifecycle of one host: install, switch, hooks.
extension Deployment {
    // MARK: - One host

    struct HostContext: Sendable {
        var deploymentId: String
        /// `deploy` or `rollback`, as the journal records it.
        var kind: String
        var release: String
        var revision: String
        /// The bundle and appspec of a deployment; nil for a rollback.
        var prepared: Prepared?
        var lock: LockInfo
        /// `traffic:` of the environment, for this run.
        var traffic: TrafficControl?
        /// `health_check.from`'s tunnel, for this run.
        var healthTunnel: HealthTunnel?
        /// `artifacts:`, when this run's bundle is in the store: hosts fetch it from there.
        var artifacts: ArtifactStore?
    }

    struct HostOutcome: Sendable {
        var switched = false
        var migrated = false
        var error: HostError?
    }

    func hookEnvironment(_ client: AgentClient, context: HostContext, previous: String?) -> [String: String] {
        var env = hostEnvironment(client)
        env["SHIP_DEPLOYMENT_ID"] = context.deploymentId
        env["SHIP_RELEASE"] = context.release
        env["SHIP_RELEASE_PATH"] = environment.deployTo + "/releases/" + context.release
        env["SHIP_PREVIOUS_RELEASE_PATH"] = previous.map { environment.deployTo + "/releases/" + $0 } ?? ""
        env["SHIP_REVISION"] = context.revision
        env["DEPLOYMENT_ID"] = context.deploymentId
        return env
    }

    /// What every command on a host sees, a hook or `ship exec`'s: the environment's and the
    /// host's `env`, and ship's and CodeDeploy's variables that do not depend on a release.
    func hostEnvironment(_ client: AgentClient) -> [String: String] {
        var env: [String: String] = [:]
        for (name, value) in environment.env { env[name] = value }
        for variable in client.transport.host.env { env[variable.name] = variable.value }
        env.merge(environmentVariables()) { $1 }
        env["SHIP_HOST"] = client.transport.host.description
        env["SHIP_ROLES"] = client.transport.host.roles.joined(separator: ",")
        if let instance = client.transport.host.instanceId { env["SHIP_INSTANCE_ID"] = instance }
        for (name, value) in secrets { env[name] = value }
        return env
    }

    /// ship's and CodeDeploy's variables of the app and environment, the same on every host.
    func environmentVariables() -> [String: String] {
        ["SHIP_APP": config.app, "SHIP_ENV": environment.name, "SHIP_DEPLOY_TO": environment.deployTo,
         "APPLICATION_NAME": config.app, "DEPLOYMENT_GROUP_NAME": environment.name,
         "DEPLOYMENT_GROUP_ID": Deployment.groupId(app: config.app, environment: environment.name)]
    }

    /// How a host installs this deployment's release by itself (`ship-agent pull`), for the
    /// artifact store's record: what each host's agent is sent, with no host's own variables
    /// and no secret (only their names).
    func installSpec(_ prepared: Prepared) -> InstallSpec {
        let runas = Set(LifecycleEvent.order.flatMap { prepared.appspec.hooks(for: $0) }.compactMap(\.runas))
        return InstallSpec(deployTo: environment.deployTo, appspec: prepared.appspec,
                           shared: SharedSpec(dirs: config.shared.dirs, files: config.shared.files),
                           links: prepared.links.isEmpty ? nil : prepared.links, fileExistsBehavior: request.fileExistsBehavior,
                           environment: Dictionary(environment.env.map { ($0.name, $0.value) }) { $1 }.merging(environmentVariables()) { $1 },
                           secretNames: secrets.isEmpty ? nil : secrets.keys.sorted(),
                           keepReleases: environment.keepReleases, runasUsers: runas.isEmpty ? nil : runas.sorted())
    }

    /// CodeDeploy's DEPLOYMENT_GROUP_ID: stable for an app's environment, in UUID form.
    static func groupId(app: String, environment: String) -> String {
        let digest = Array(SHA256.hash(data: Data((app + "\u{0}" + environment).utf8)).prefix(16))
        let hex = digest.map { String(format: "%02x", $0) }.joined()
        let parts = [hex.prefix(8), hex.dropFirst(8).prefix(4), hex.dropFirst(12).prefix(4), hex.dropFirst(16).prefix(4), hex.dropFirst(20)]
        return parts.joined(separator: "-")
    }

    func journalEntry(_ context: HostContext, step: String, kind: String? = nil) -> JournalEntry {
        JournalEntry(time: Event.timestamp(Date()), deploymentId: context.deploymentId, kind: kind ?? context.kind, step: step,
                     release: context.release, revision: context.revision,
                     user: ReleaseName.holder, environment: environment.name)
    }

    struct InstallOutcome: Sendable {
        /// The old release's `stop` ran: unless the host switches, it must be started again.
        var stopped = false
        var error: HostError?
    }

    /// Bundle, unpack, link, `stop` of the release being replaced, `install`. Nothing switches.
    /// `shipment`: what the host is sent to make the release (a delta, the bundle, or nothing).
    func installHost(_ client: AgentClient, previous: String?, shipment: Shipment, context: HostContext) async -> InstallOutcome {
        var outcome = InstallOutcome()
        do throws(HostError) {
            try await installHost(client, previous: previous, shipment: shipment, context: context, stopped: &outcome.stopped)
        } catch {
            outcome.error = error
        }
        return outcome
    }

    private func installHost(_ client: AgentClient, previous: String?, shipment: Shipment, context: HostContext,
                             stopped: inout Bool) async throws(HostError) {
        let host = client.transport.host.description
        var step = "unpack"
        guard let prepared = context.prepared else { return }
        do throws(HostError) {
            try await makeRelease(client, shipment: shipment, prepared: prepared, context: context)
            let environmentVariables = hookEnvironment(client, context: context, previous: previous)
            // CodeDeploy's BeforeBlockTraffic and AfterBlockTraffic, from the release being
            // replaced, around the host leaving the rotation (in their places without traffic:).
            if let previous {
                step = LifecycleEvent.beforeBlockTraffic.rawValue
                try await runHooks(client, release: previous, event: .beforeBlockTraffic, env: environmentVariables, context: context)
            }
            step = "out of rotation"
            try await context.traffic?.takeOut(client.transport.host)
            if let previous {
                step = LifecycleEvent.afterBlockTraffic.rawValue
                try await runHooks(client, release: previous, event: .afterBlockTraffic, env: environmentVariables, context: context)
            }
            if let previous {
                step = "stop"
                // From here on the old release may be down (maintenance mode on): whatever
                // happens, the host ends switched or started again on it, by this run or, if
                // the run is lost, by the agent when its session ends unsettled.
                stopped = true
                do {
                    try await runHooks(client, release: previous, event: .stop, env: environmentVariables, context: context)
                } catch where request.ignoreStopFailures {
                    reporter.report(Event(host: host, .hostStep(step: "stop failed, ignored (--ignore-stop-failures): \(error.message)")))
                }
            }
            step = "install"
            try await runHooks(client, release: context.release, event: .install, env: environmentVariables, context: context)
        } catch {
            let message = error.unreachable
                ? "\(error.message) (host lost before switching: current still \(previous.map { "releases/\($0)" } ?? "absent"); the unfinished release may remain until the next prune)"
                : error.message
            reporter.report(Event(host: host, .hostFailed(step: step, message: message)))
            if !error.unreachable { await discard([client], context: context) }
            // Its release never stopped: it serves as before, so it goes back in rotation.
            if !stopped { await context.traffic?.putBackReporting(client.transport.host) }
            throw HostError(host: host, step: step, message: message, unreachable: error.unreachable, hint: error.hint)
        }
    }

    /// The new release on the host, unpacked as its bundle arrives: from a delta when the host
    /// has a base for it (the full bundle when the agent finds the base changed), else from the
    /// full bundle, sent unless the host's cache has it.
    private func makeRelease(_ client: AgentClient, shipment: Shipment, prepared: Prepared, context: HostContext) async throws(HostError) {
        let host = client.transport.host.description
        var prepare = client.request(.prepare)
        prepare.release = context.release
        prepare.revision = prepared.revision.commit
        prepare.appspec = prepared.appspec
        prepare.shared = SharedSpec(dirs: config.shared.dirs, files: config.shared.files)
        prepare.journal = journalEntry(context, step: "prepared")
        var payload: RevisionBundle?
        if let delta = shipment.delta, let base = shipment.baseRelease {
            prepare.bundleSHA256 = delta.bundle.sha256
            prepare.baseRelease = base
            prepare.unchangedPaths = delta.unchanged
            payload = delta.bundle
            reporter.report(Event(host: host, .hostStep(step: "sending bundle: a delta from release \(base) (\(delta.changedFiles) "
                + "file\(delta.changedFiles == 1 ? "" : "s") changed, \(delta.unchanged.count) copied on the host; \(carried(delta.bundle)))")))
        } else {
            let bundle = try full(prepared, host: host)
            prepare.bundleSHA256 = bundle.sha256
            if !shipment.fullPresent, !(try await fetch(bundle, client, context: context)) {
                payload = bundle
                reporter.report(Event(host: host, .hostStep(step: "sending bundle (\(carried(bundle)))")))
            }
        }
        var result = try await client.call(prepare, bundle: payload?.path)
        if !result.ok && result.deltaRefused == true {
            reporter.report(Event(host: host, .hostStep(step: "\(result.message ?? "delta refused"); sending the full bundle")))
            let bundle = try full(prepared, host: host)
            prepare.bundleSHA256 = bundle.sha256
            prepare.baseRelease = nil
            prepare.unchangedPaths = nil
            payload = shipment.fullPresent ? nil : bundle
            if payload != nil { reporter.report(Event(host: host, .hostStep(step: "sending bundle (\(carried(bundle)))"))) }
            result = try await client.call(prepare, bundle: payload?.path)
        }
        guard result.ok else {
            throw HostError(host: host, step: "unpack", message: result.message ?? "failed", unreachable: false, hint: result.hint)
        }
        if let payload { reporter.report(Event(host: host, .bundleSent(bytes: payload.bytes))) }
        var how = ""
        if let unpacked = result.unpacked {
            how = " (\(unpacked.entries) entries"
                + (unpacked.copied > 0 ? ", \(unpacked.copied) files copied from release \(prepare.baseRelease ?? "?") by \(unpacked.copyMethod ?? "copy")" : "")
                + ", \(unpacked.milliseconds) ms)"
        }
        reporter.report(Event(host: host, .hostStep(step: "release \(context.release) unpacked" + how)))
    }

    /// With `artifacts:`, the host fetches the bundle from the store itself; whether it has it
    /// now. A host that cannot (no curl, no route to the store, a bundle that is not the one
    /// published) is said so, and gets it over ssh instead.
    private func fetch(_ bundle: RevisionBundle, _ client: AgentClient, context: HostContext) async throws(HostError) -> Bool {
        guard let store = context.artifacts else { return false }
        let host = client.transport.host.description
        var request = client.request(.fetch)
        request.bundleSHA256 = bundle.sha256
        if store.config.hostCredentials {
            request.bundleObject = store.object(for: bundle.sha256)
        } else {
            request.bundleURL = store.link(for: bundle.sha256)
        }
        let result = try await client.call(request)
        guard result.ok else {
            reporter.report(Event(host: host, .hostWarning(message: (result.message ?? "cannot fetch the bundle from the store")
                + (result.hint.map { " (\($0))" } ?? "") + "; sending it over ssh")))
            return false
        }
        if let bytes = result.fetched {
            reporter.report(Event(host: host, .hostStep(step: "bundle fetched from \(store.location(bundle.sha256)) by the host ("
                + ByteCountFormatter.string(fromByteCount: bytes, countStyle: .file) + ", SHA-256 verified)")))
        }
        return true
    }

    private func full(_ prepared: Prepared, host: String) throws(HostError) -> RevisionBundle {
        do {
            return try prepared.bundles.full()
        } catch {
            throw HostError(host: host, step: "bundle", message: error.description, unreachable: false, hint: error.hint)
        }
    }

    /// How a bundle travels, for the output: its size and compression.
    private func carried(_ bundle: RevisionBundle) -> String {
        let how = switch environment.compression {
        case .gzip: "gzip"
        case .fast: "gzip -1, compression: fast"
        case .none: "uncompressed, compression: none"
        }
        return ByteCountFormatter.string(fromByteCount: bundle.bytes, countStyle: .file) + ", " + how
    }

    struct ActivationOutcome: Sendable {
        var switched = false
        var error: HostError?
    }

    /// Switch `current`, then `start` and `validate`.
    func activateHost(_ client: AgentClient, context: HostContext) async -> ActivationOutcome {
        let host = client.transport.host.description
        var outcome = ActivationOutcome()
        var step = "switch"
        do throws(HostError) {
            var switchRequest = client.request(.switchCurrent)
            switchRequest.release = context.release
            switchRequest.journal = journalEntry(context, step: "switched")
            if let links = context.prepared?.links, !links.isEmpty { switchRequest.links = links }
            switchRequest.fileExistsBehavior = request.fileExistsBehavior
            let switched = try await client.require(switchRequest)
            outcome.switched = true
            for link in switched.linked ?? [] { reporter.report(Event(host: host, .hostStep(step: "linked \(link) (the revision's files destination)"))) }
            for copy in switched.copied ?? [] { reporter.report(Event(host: host, .hostStep(step: copy + " (the revision's files)"))) }
            reporter.report(Event(host: host, .hostSwitched(release: context.release, previous: switched.previousRelease)))
            let env = hookEnvironment(client, context: context, previous: switched.previousRelease)
            if mayHaveHooks(context.release, .afterInstall, context: context) {
                step = LifecycleEvent.afterInstall.rawValue
                try await runHooks(client, release: context.release, event: .afterInstall, env: env, context: context)
            }
            step = "start"
            try await runHooks(client, release: context.release, event: .start, env: env, context: context)
            step = "validate"
            try await runHooks(client, release: context.release, event: .validate, env: env, context: context, settles: true)
            try await checkAndPutBack(client, release: context.release, env: env, context: context, step: &step)
            reporter.report(Event(host: host, .hostSucceeded(release: context.release)))
        } catch {
            var message = error.message
            if error.unreachable {
                message += outcome.switched
                    ? " (host lost after switching: current is releases/\(context.release))"
                    : " (host lost while switching: current is the old release or releases/\(context.release), both complete; see ship status)"
            }
            outcome.error = HostError(host: host, step: step, message: message, unreachable: error.unreachable)
            reporter.report(Event(host: host, .hostFailed(step: step, message: message)))
            if !outcome.switched && !error.unreachable { await discard([client], context: context) }
        }
        return outcome
    }

    /// Once a host's `validate` passed: the environment's health check, `before_allow_traffic`
    /// (CodeDeploy's BeforeAllowTraffic), back in the balancer's rotation, `after_allow_traffic`.
    /// `step` says which, for a failure (`label` names it: a restart's).
    func checkAndPutBack(_ client: AgentClient, release: String, env: [String: String], context: HostContext, step: inout String,
                         label: (String) -> String = { $0 }) async throws(HostError) {
        let host = client.transport.host
        if let check = environment.healthCheck {
            step = label("health check")
            try await checkHealth(check, host: host, tunnel: context.healthTunnel)
        }
        if mayHaveHooks(release, .beforeAllowTraffic, context: context) {
            step = label(LifecycleEvent.beforeAllowTraffic.rawValue)
            try await runHooks(client, release: release, event: .beforeAllowTraffic, env: env, context: context)
        }
        if let traffic = context.traffic {
            step = label("back in rotation")
            try await traffic.putBack(host)
        }
        if mayHaveHooks(release, .afterAllowTraffic, context: context) {
            step = label(LifecycleEvent.afterAllowTraffic.rawValue)
            try await runHooks(client, release: release, event: .afterAllowTraffic, env: env, context: context)
        }
    }

    /// False when the release is this deployment's and its appspec has no hooks for the event:
    /// the round trip to the host is saved. Another release's appspec is on the host only.
    func mayHaveHooks(_ release: String, _ event: LifecycleEvent, context: HostContext) -> Bool {
        guard release == context.release, let appspec = context.prepared?.appspec else { return true }
        return !appspec.hooks(for: event).isEmpty
    }

    /// Hosts whose old release's `stop` ran but that will not switch: `start` and `validate` of
    /// the release they stay on, with that release's environment, so none is left down. Returns
    /// the hosts where that failed (they are down, and said so).
    func restartStopped(_ clients: [AgentClient], previousByHost: [String: String?], context: HostContext) async -> [HostError] {
        let results = await forEachHost(clients, width: environment.concurrency) { client throws(HostError) in
            let host = client.transport.host.description
            guard let previous = previousByHost[host] ?? nil else { return }
            let env = hookEnvironment(client, context: context, previous: previous)
            var step = "restart (start)"
            do throws(HostError) {
                try await runHooks(client, release: previous, event: .start, env: env, context: context)
                step = "restart (validate)"
                try await runHooks(client, release: previous, event: .validate, env: env, context: context, settles: true)
                try await checkAndPutBack(client, release: previous, env: env, context: context, step: &step) { "restart (\($0))" }
                reporter.report(Event(host: host, .hostRestarted(release: previous)))
            } catch {
                let message = "\(error.message) (its old release \(previous) was stopped and may be down)"
                reporter.report(Event(host: host, .hostFailed(step: step, message: message)))
                throw HostError(host: host, step: step, message: message, unreachable: error.unreachable)
            }
        }
        return results.compactMap { if case .failure(let error) = $0 { error } else { nil } }
    }

    /// Installed hosts that will not switch: their new release is removed, and each is said to
    /// be not switched, with why.
    func abandon(_ clients: [AgentClient], reason: String, context: HostContext) async {
        for client in clients { reporter.report(Event(host: client.transport.host.description, .hostNotSwitched(reason: reason))) }
        await discard(clients, context: context)
    }

    /// Removes this deployment's release from hosts where it never went live.
    func discard(_ clients: [AgentClient], context: HostContext) async {
        _ = await forEachHost(clients, width: environment.concurrency) { client -> Bool in
            var discard = client.request(.discard)
            discard.release = context.release
            // A release that never went live and could not be removed is abandoned: every
            // later prune removes it first, and it never counts as a kept release.
            if let result = try? await client.call(discard) {
                for warning in result.warnings ?? [] {
                    reporter.report(Event(host: client.transport.host.description, .hostWarning(message: warning)))
                }
            }
            return true
        }
    }

    /// `settles`: once these hooks pass, the host is settled and its guard has nothing to do.
    func runHooks(_ client: AgentClient, release: String, event: LifecycleEvent, env: [String: String],
                  context: HostContext, settles: Bool = false) async throws(HostError) {
        let host = client.transport.host.description
        var request = client.request(.runHooks)
        request.release = release
        request.event = event
        if settles { request.settles = true }
        request.hookEnvironment = env
        request.secretNames = secrets.isEmpty ? nil : secrets.keys.sorted()
        request.journal = journalEntry(context, step: "hooks")
        let reporter = self.reporter
        _ = try await client.require(request) { agentEvent in
            switch agentEvent.kind {
            case .hookStarted:
                reporter.report(Event(host: host, .hookStarted(event: agentEvent.event ?? event, hook: agentEvent.hook ?? "")))
            case .output:
                reporter.report(Event(host: host, .hookOutput(event: agentEvent.event, line: agentEvent.line ?? "")))
            case .hookFinished:
                if let outcome = agentEvent.outcome {
                    reporter.report(Event(host: host, .hookFinished(event: agentEvent.event ?? event, hook: agentEvent.hook ?? "", outcome: outcome)))
                }
            case .result, .ready:
                break
            }
        }
    }
}
