import Foundation
import Hooks

/// An environment's artifact store (`artifacts:` in ship.yml, docs/fleets.md): the controller
/// publishes a revision's bundle there once, under its SHA-256, and each host's agent fetches it
/// itself with a presigned link made for it right before, checking the SHA-256 before anything
/// is unpacked. The controller then sends hosts only control traffic, whatever the bundle's size.
struct ArtifactStore: Sendable {
    let config: ArtifactsConfig
    let client: S3Client
    let app: String
    /// When the signing credentials stop working (AWS_CREDENTIAL_EXPIRATION), if known: no link
    /// outlives them.
    let credentialsExpire: Date?

    init(_ config: ArtifactsConfig, app: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws(ShipError) {
        guard let accessKey = environment["AWS_ACCESS_KEY_ID"], !accessKey.isEmpty,
              let secretKey = environment["AWS_SECRET_ACCESS_KEY"], !secretKey.isEmpty else {
            throw ShipError.usage("artifacts.store s3://\(config.bucket) needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment",
                                  hint: "export them where ship runs (in CI, from secrets); AWS_SESSION_TOKEN too for temporary credentials")
        }
        self.config = config
        self.app = app
        client = S3Client(endpoint: config.endpoint ?? "https://s3.\(config.region).amazonaws.com", bucket: config.bucket, region: config.region,
                          accessKey: accessKey, secretKey: secretKey,
                          sessionToken: environment["AWS_SESSION_TOKEN"].flatMap { $0.isEmpty ? nil : $0 })
        let formatter = ISO8601DateFormatter()
        credentialsExpire = environment["AWS_CREDENTIAL_EXPIRATION"].flatMap { formatter.date(from: $0) }
    }

    /// Where a bundle is kept: `<prefix>/bundles/<app>/<sha256>.tar.gz`.
    func key(_ sha256: String) -> String {
        [config.prefix, "bundles", app, sha256 + ".tar.gz"].filter { !$0.isEmpty }.joined(separator: "/")
    }

    func location(_ sha256: String) -> String { client.describe(key(sha256)) }

    /// Puts the bundle in the store unless it is there already (same key, same size: the key is
    /// its content's hash), with a conditional write, so that of two controllers publishing it at
    /// once one writes it and the other writes nothing; whether it uploaded.
    func publish(_ bundle: RevisionBundle) throws(ShipError) -> Bool {
        let key = key(bundle.sha256)
        let present = try client.size(of: key)
        if present == bundle.bytes { return false }
        // Another size under a content hash is a broken object: replaced.
        return try client.upload(key: key, file: bundle.path, ifAbsent: present == nil)
    }

    /// Where the bundle is, for hosts that fetch it with their own credentials (`host_credentials`).
    func object(for sha256: String) -> StoreObject {
        StoreObject(endpoint: client.endpoint, bucket: config.bucket, key: key(sha256), region: config.region)
    }

    /// A link to fetch the bundle with, valid `link_lifetime` seconds from now, and never past
    /// the credentials' own expiry.
    func link(for sha256: String, now: Date = Date()) -> String {
        var lifetime = config.linkLifetime
        if let credentialsExpire { lifetime = max(1, min(lifetime, Int(credentialsExpire.timeIntervalSince(now)))) }
        return client.presignedGET(key: key(sha256), lifetime: lifetime, now: now)
    }
}

/// `ship publish-agent`: the static agent in the artifact store, for instances that install
/// themselves (`ship-agent pull` in user-data, docs/autoscaling.md). Each machine's agent goes to
/// `<prefix>/agent/<version>/ship-agent-linux-<machine>` and to
/// `<prefix>/agent/ship-agent-linux-<machine>`, the newest published, each with a `.sha256` beside
/// it in `sha256sum -c` form, so a user-data script checks what it fetched.
public enum AgentPublisher {
    public struct Published: Sendable, Equatable {
        public var machine: String
        public var version: String
        public var sha256: String
        /// s3:// locations: the versioned one, then the newest one.
        public var locations: [String]
    }

    public static func publish(config: ShipConfig, environment: Environment, agents: AgentCatalog,
                               variables: [String: String] = ProcessInfo.processInfo.environment) throws(ShipError) -> [Published] {
        guard let settings = environment.artifacts else {
            throw ShipError.usage("environment \(environment.name) has no artifacts: store to publish the agent to",
                            hint: "add `artifacts: { store: s3://BUCKET/PREFIX, region: REGION }` to it in ship.yml (docs/fleets.md)")
        }
        let store = try ArtifactStore(settings, app: config.app, environment: variables)
        var binaries = [agents.primary]
        for machine in ["x86_64", "aarch64"] where machine != agents.primary.machine {
            if let other = try? agents.agent(system: "Linux", machine: machine) { binaries.append(other) }
        }
        var published: [Published] = []
        for agent in binaries {
            let name = "ship-agent-linux-" + agent.machine
            let keys = [[settings.prefix, "agent", AgentProtocol.shipVersion, name], [settings.prefix, "agent", name]]
                .map { $0.filter { !$0.isEmpty }.joined(separator: "/") }
            for key in keys {
                try store.client.upload(key: key, file: agent.path)
                try store.client.putObject(key: key + ".sha256", data: Data("\(agent.sha256)  \(name)\n".utf8))
            }
            published.append(Published(machine: agent.machine, version: AgentProtocol.shipVersion, sha256: agent.sha256, locations: keys.map { store.client.describe($0) }))
        }
        return published
    }
}
