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
    /// its content's hash); whether it uploaded.
    func publish(_ bundle: RevisionBundle) throws(ShipError) -> Bool {
        let key = key(bundle.sha256)
        if try client.size(of: key) == bundle.bytes { return false }
        try client.upload(key: key, file: bundle.path)
        return true
    }

    /// A link to fetch the bundle with, valid `link_lifetime` seconds from now, and never past
    /// the credentials' own expiry.
    func link(for sha256: String, now: Date = Date()) -> String {
        var lifetime = config.linkLifetime
        if let credentialsExpire { lifetime = max(1, min(lifetime, Int(credentialsExpire.timeIntervalSince(now)))) }
        return client.presignedGET(key: key(sha256), lifetime: lifetime, now: now)
    }
}
