import Foundation
import Hooks

/// What happened during a deployment, emitted by the orchestrator and rendered by a reporter
/// (plain lines, JSON lines). One source of truth for the output, the journal and history.
public struct Event: Sendable {
    public enum Kind: Sendable {
        case deploymentStarted(deploymentId: String, environment: String, revision: String, release: String, hosts: [String])
        case lockWaiting(holder: LockInfo)
        case batchStarted(number: Int, of: Int, hosts: [String])
        case hostStep(step: String)
        case bundleSent(bytes: Int64)
        /// The pre-migrate database backup is in the store.
        case backupTaken(id: String, bytes: Int64, sha256: String)
        case hookStarted(event: LifecycleEvent, hook: String)
        case hookOutput(event: LifecycleEvent?, line: String)
        case hookFinished(event: LifecycleEvent, hook: String, outcome: HookOutcome)
        case hostSwitched(release: String, previous: String?)
        case hostSucceeded(release: String)
        case hostFailed(step: String, message: String)
        case hostRolledBack(release: String?)
        /// The host's old release was stopped but the host did not switch: its `start` and
        /// `validate` ran again, so it serves its own release.
        case hostRestarted(release: String)
        /// The host installed the new release but the deployment stopped before switching it
        /// (interrupt, migrate failed, too many failures); the release was removed.
        case hostNotSwitched(reason: String)
        /// Something went wrong that does not fail the host (a release that could not be deleted).
        case hostWarning(message: String)
        case deploymentFinished(status: String, release: String, deploymentId: String, message: String?)
        case rollbackFinished(status: String, release: String, deploymentId: String, message: String?)
        /// `ship sync` found every host on the environment's release: nothing ran, no lock was taken.
        case syncUnchanged(release: String, revision: String, message: String)
        /// A `notify:` webhook could not be told (never fails the command); `webhook` is redacted.
        case notifyFailed(webhook: String, event: String, message: String)
        /// `ship exec`: the command starts on these hosts.
        case execStarted(id: String, environment: String, command: String, hosts: [String])
        case execOutput(line: String)
        /// The command ended on a host.
        case execHostFinished(outcome: HookOutcome)
        case execFinished(id: String, status: String, succeeded: [String], failed: [String], message: String?)
        /// What a deployment or rollback would do (`--dry-run`), or is about to do (a real run on a terminal).
        case plan(DeploymentPlan)
    }

    public var time: Date
    public var host: String?
    public var kind: Kind

    public init(host: String? = nil, _ kind: Kind, time: Date = Date()) {
        self.time = time
        self.host = host
        self.kind = kind
    }

    /// The event's name in JSON lines.
    public var name: String {
        switch kind {
        case .deploymentStarted: "deployment_started"
        case .lockWaiting: "lock_waiting"
        case .batchStarted: "batch_started"
        case .hostStep: "host_step"
        case .bundleSent: "bundle_sent"
        case .backupTaken: "backup_taken"
        case .hookStarted: "hook_started"
        case .hookOutput: "hook_output"
        case .hookFinished: "hook_finished"
        case .hostSwitched: "host_switched"
        case .hostSucceeded: "host_succeeded"
        case .hostFailed: "host_failed"
        case .hostRolledBack: "host_rolled_back"
        case .hostRestarted: "host_restarted"
        case .hostNotSwitched: "host_not_switched"
        case .hostWarning: "host_warning"
        case .deploymentFinished: "deployment_finished"
        case .rollbackFinished: "rollback_finished"
        case .notifyFailed: "notify_failed"
        case .syncUnchanged: "sync_finished"
        case .execStarted: "exec_started"
        case .execOutput: "exec_output"
        case .execHostFinished: "exec_host_finished"
        case .execFinished: "exec_finished"
        case .plan: "plan"
        }
    }

    /// The JSON object of CONTRACT.md section 5: `event`, `time`, `host` for host events,
    /// `hook` and `status` for hook events.
    public var jsonObject: [String: Any] {
        var object: [String: Any] = ["event": name, "time": Event.timestamp(time)]
        if let host { object["host"] = host }
        switch kind {
        case .deploymentStarted(let id, let environment, let revision, let release, let hosts):
            object["deployment_id"] = id
            object["environment"] = environment
            object["revision"] = revision
            object["release"] = release
            object["hosts"] = hosts
        case .lockWaiting(let holder):
            object["holder"] = holder.holder
            object["deployment_id"] = holder.deploymentId
        case .batchStarted(let number, let total, let hosts):
            object["batch"] = number
            object["batches"] = total
            object["hosts"] = hosts
        case .hostStep(let step):
            object["step"] = step
        case .bundleSent(let bytes):
            object["bytes"] = bytes
        case .backupTaken(let id, let bytes, let sha256):
            object["id"] = id
            object["bytes"] = bytes
            object["sha256"] = sha256
        case .hookStarted(let event, let hook):
            object["hook"] = event.rawValue
            object["command"] = hook
            object["status"] = "started"
        case .hookOutput(let event, let line):
            if let event { object["hook"] = event.rawValue }
            object["status"] = "running"
            object["line"] = line
        case .hookFinished(let event, let hook, let outcome):
            object["hook"] = event.rawValue
            object["command"] = hook
            object["status"] = outcome.succeeded ? "succeeded" : (outcome.timedOut ? "timed_out" : "failed")
            object["duration"] = (outcome.duration * 1000).rounded() / 1000
            if let code = outcome.exitStatus { object["exit_status"] = Int(code) }
        case .hostSwitched(let release, let previous):
            object["release"] = release
            object["previous_release"] = previous ?? NSNull()
        case .hostSucceeded(let release):
            object["release"] = release
        case .hostFailed(let step, let message):
            object["step"] = step
            object["message"] = message
        case .hostRolledBack(let release):
            object["release"] = release ?? NSNull()
        case .hostRestarted(let release):
            object["release"] = release
        case .hostNotSwitched(let reason):
            object["reason"] = reason
        case .hostWarning(let message):
            object["message"] = message
        case .deploymentFinished(let status, let release, let id, let message),
             .rollbackFinished(let status, let release, let id, let message):
            object["status"] = status
            object["release"] = release
            object["deployment_id"] = id
            if let message { object["message"] = message }
        case .syncUnchanged(let release, let revision, let message):
            object["status"] = "unchanged"
            object["release"] = release
            object["revision"] = revision
            object["message"] = message
        case .notifyFailed(let webhook, let notified, let message):
            object["webhook"] = webhook
            object["notified"] = notified
            object["message"] = message
        case .execStarted(let id, let environment, let command, let hosts):
            object["exec_id"] = id
            object["environment"] = environment
            object["command"] = command
            object["hosts"] = hosts
        case .execOutput(let line):
            object["line"] = line
        case .execHostFinished(let outcome):
            object["status"] = outcome.succeeded ? "succeeded" : (outcome.timedOut ? "timed_out" : "failed")
            object["duration"] = (outcome.duration * 1000).rounded() / 1000
            if let code = outcome.exitStatus { object["exit_status"] = Int(code) }
        case .execFinished(let id, let status, let succeeded, let failed, let message):
            object["exec_id"] = id
            object["status"] = status
            object["succeeded"] = succeeded
            object["failed"] = failed
            if let message { object["message"] = message }
        case .plan(let plan):
            for (key, value) in plan.json { object[key] = value }
            object["lines"] = plan.lines()
        }
        return object
    }

    /// The human line, without timestamp and host prefix.
    public var text: String {
        switch kind {
        case .deploymentStarted(let id, let environment, let revision, let release, let hosts):
            "deploying \(revision.prefix(12)) to \(environment) (\(hosts.count) host\(hosts.count == 1 ? "" : "s")) as release \(release), deployment \(id)"
        case .lockWaiting(let holder):
            "waiting for the lock held by \(holder.holder) (deployment \(holder.deploymentId), since \(holder.started))"
        case .batchStarted(let number, let total, let hosts):
            "batch \(number)/\(total): \(hosts.joined(separator: ", "))"
        case .hostStep(let step): step
        case .bundleSent(let bytes): "bundle sent (\(ByteCountFormatter.string(fromByteCount: bytes, countStyle: .file)))"
        case .backupTaken(let id, let bytes, _):
            "database backup \(id) taken before migrate (\(ByteCountFormatter.string(fromByteCount: bytes, countStyle: .file)))"
        case .hookStarted(let event, let hook): "\(event.rawValue): \(hook)"
        case .hookOutput(_, let line): "  " + line
        case .hookFinished(let event, _, let outcome):
            "\(event.rawValue): \(outcome.summary) (\(String(format: "%.1f", outcome.duration))s)"
        case .hostSwitched(let release, let previous):
            "current -> \(release)" + (previous.map { " (was \($0))" } ?? "")
        case .hostSucceeded(let release): "done: \(release)"
        case .hostFailed(let step, let message): "FAILED at \(step): \(message)"
        case .hostRolledBack(let release): "rolled back to \(release ?? "nothing")"
        case .hostRestarted(let release): "restarted on its own release \(release) (its stop had run)"
        case .hostNotSwitched(let reason): "not switched: \(reason); the new release was removed"
        case .hostWarning(let message): "warning: \(message)"
        case .deploymentFinished(let status, let release, let id, let message):
            "deployment \(id) \(status.replacingOccurrences(of: "_", with: " ")): release \(release)" + (message.map { ": \($0)" } ?? "")
        case .rollbackFinished(let status, let release, let id, let message):
            "rollback \(id) \(status): release \(release)" + (message.map { ": \($0)" } ?? "")
        case .syncUnchanged(_, _, let message): message
        case .notifyFailed(let webhook, let notified, let message):
            "warning: notify: \(notified) not delivered to \(webhook): \(message)"
        case .execStarted(let id, let environment, let command, let hosts):
            "running `\(command)` on \(hosts.count == 1 ? hosts[0] : "\(hosts.count) hosts") of \(environment) (exec \(id))"
        case .execOutput(let line): line
        case .execHostFinished(let outcome): "\(outcome.summary) (\(String(format: "%.1f", outcome.duration))s)"
        case .execFinished(let id, let status, let succeeded, let failed, let message):
            "exec \(id) \(status): " + (succeeded.isEmpty ? "" : "ok on \(succeeded.joined(separator: ", "))")
                + (failed.isEmpty ? "" : (succeeded.isEmpty ? "" : "; ") + "failed on \(failed.joined(separator: ", "))")
                + (succeeded.isEmpty && failed.isEmpty ? (message ?? "nothing ran") : "")
        case .plan(let plan): (plan.dryRun ? plan.lines() : plan.lines(hostLimit: 8, appspecLimit: 8)).joined(separator: "\n")
        }
    }

    public static func timestamp(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: date)
    }
}

/// Turns events into output.
public protocol Reporter: Sendable {
    func report(_ event: Event)
}

/// Timestamped plain lines, each prefixed by its host, and a summary at the end: for pipes,
/// CI (`CI=true`) and logs. No escape codes, never a prompt.
public final class PlainReporter: Reporter, @unchecked Sendable {
    private let lock = NSLock()
    private let handle: FileHandle
    private var progress = Progress()

    public init(handle: FileHandle = .standardOutput) {
        self.handle = handle
    }

    public func report(_ event: Event) {
        // A run's opening plan is for a terminal (and JSON); plain logs keep their lines.
        if case .plan(let plan) = event.kind, !plan.dryRun { return }
        let formatter = DateFormatter()
        formatter.dateFormat = "HH:mm:ss"
        var line = formatter.string(from: event.time) + " "
        if let host = event.host { line += host + " | " }
        line += event.text + "\n"
        lock.withLock {
            progress.apply(event)
            handle.writeQuietly(Data(line.utf8))
            switch event.kind {
            case .deploymentFinished(let status, _, _, _), .rollbackFinished(let status, _, _, _):
                let summary = progress.summary(status: status.replacingOccurrences(of: "_", with: " "), now: event.time)
                handle.writeQuietly(Data((summary.joined(separator: "\n") + "\n").utf8))
            default:
                break
            }
        }
    }
}

/// One JSON object per line (`--json`).
public final class JSONLinesReporter: Reporter, @unchecked Sendable {
    private let lock = NSLock()
    private let handle: FileHandle

    public init(handle: FileHandle = .standardOutput) {
        self.handle = handle
    }

    public func report(_ event: Event) {
        guard var data = try? JSONSerialization.data(withJSONObject: event.jsonObject, options: [.sortedKeys, .withoutEscapingSlashes]) else { return }
        data.append(0x0A)
        lock.withLock { handle.writeQuietly(data) }
    }
}
