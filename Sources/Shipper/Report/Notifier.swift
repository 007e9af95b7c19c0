import Foundation

/// `notify:` webhooks: a reporter in front of another that POSTs JSON to each webhook for
/// deployments started and finished, `ship rollback` finished and failed backups. The JSON has
/// the event's fields and a Slack-compatible `text`. A webhook that fails is said
/// (`notify_failed`) and never fails the command; `flush()` waits for the posts in flight.
public final class Notifier: Reporter, @unchecked Sendable {
    let inner: any Reporter
    let app: String
    let environment: String
    let targets: [NotifyTarget]
    let variables: [String: String]
    private let lock = NSLock()
    private var posts: [Task<Void, Never>] = []
    private var revision: String?

    public init(config: ShipConfig, environment: Environment, reporter: any Reporter,
                variables: [String: String] = ProcessInfo.processInfo.environment) {
        inner = reporter
        app = config.app
        self.environment = environment.name
        targets = environment.notify
        self.variables = variables
    }

    public func report(_ event: Event) {
        inner.report(event)
        switch event.kind {
        case .deploymentStarted(let id, _, let revision, let release, let hosts):
            lock.withLock { self.revision = revision }
            post(.deploymentStarted, ["deployment_id": id, "revision": revision, "release": release, "hosts": hosts],
                 text: "\(app) \(environment): deploying \(revision.prefix(12)) to \(hosts.count) host\(hosts.count == 1 ? "" : "s") (deployment \(id))")
        case .deploymentFinished(let status, let release, let id, let message):
            let revision = lock.withLock { self.revision }
            var fields: [String: Any] = ["deployment_id": id, "status": status, "release": release]
            if let revision { fields["revision"] = revision }
            if let message { fields["message"] = message }
            post(.deploymentFinished, fields, text: "\(app) \(environment): deployment \(id)"
                + (revision.map { " of \($0.prefix(12))" } ?? "") + " \(status.replacingOccurrences(of: "_", with: " "))"
                + (message.map { ": \($0)" } ?? ""))
        case .rollbackFinished(let status, let release, let id, let message):
            var fields: [String: Any] = ["deployment_id": id, "status": status, "release": release]
            if let message { fields["message"] = message }
            post(.rollbackFinished, fields, text: "\(app) \(environment): rollback to \(release) \(status)" + (message.map { ": \($0)" } ?? ""))
        default:
            break
        }
    }

    /// A backup that failed (`ship backup db|assets`).
    public func backupFailed(kind: String, message: String) {
        post(.backupFailed, ["kind": kind, "status": "failed", "message": message],
             text: "\(app) \(environment): \(kind) backup failed: \(message)")
    }

    /// Waits until every webhook was told (each post has its own time limit).
    public func flush() async {
        let pending = lock.withLock { posts }
        for post in pending { await post.value }
    }

    private func post(_ event: NotifyTarget.Event, _ fields: [String: Any], text: String) {
        var object = fields
        object["event"] = event.rawValue
        object["app"] = app
        object["environment"] = environment
        object["user"] = ReleaseName.holder
        object["time"] = Event.timestamp(Date())
        object["text"] = text
        guard let body = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return }
        for target in targets where target.wants(event) {
            let url: String
            switch target.webhook {
            case .url(let written): url = written
            case .environment(let name):
                guard let value = variables[name], !value.isEmpty else {
                    inner.report(Event(.notifyFailed(webhook: "$\(name)", event: event.rawValue, message: "\(name) is not set")))
                    continue
                }
                url = value
            }
            let request = HTTPRequest(method: "POST", url: url, headers: ["Content-Type: application/json"], body: body, timeout: 10)
            let inner = self.inner
            // In order: a webhook hears of a deployment's start before its end.
            let previous = lock.withLock { posts.last }
            let task = Task {
                await previous?.value
                let failure: String? = switch await request.send() {
                case .success(let response) where (200..<300).contains(response.status): nil
                case .success(let response): "status \(response.status)"
                case .failure(let error): error.message
                }
                if let failure {
                    inner.report(Event(.notifyFailed(webhook: HTTPRequest.redacted(url), event: event.rawValue, message: failure)))
                }
            }
            lock.withLock { posts.append(task) }
        }
    }
}
