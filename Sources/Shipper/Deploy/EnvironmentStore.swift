import Foundation
import Hooks

/// An environment's state in its artifact store, beside the bundles (docs/fleets.md):
///
/// - `envs/<app>/<env>/current.json`: the release a deployment made live everywhere (release,
///   revision, the bundle's key and SHA-256, the deployment), written only once its last host
///   validated, with a compare-and-swap on the ETag read when the deployment started: two
///   controllers cannot both claim it, the second is told who did (exit 4);
/// - `envs/<app>/<env>/releases/<release>.json`: the same record of every release deployed;
/// - `envs/<app>/<env>/lock.json` with `lock: store`: the deploy lock, taken with a conditional
///   create (`If-None-Match: *`) before any host is touched, so two CI runners on different
///   machines exclude each other even before they reach the same hosts.
struct EnvironmentStore: Sendable {
    let artifacts: ArtifactStore
    let environment: String

    /// What current.json holds.
    typealias Current = EnvironmentRecord

    private var client: S3Client { artifacts.client }
    private var base: String {
        [artifacts.config.prefix, "envs", artifacts.app, environment].filter { !$0.isEmpty }.joined(separator: "/")
    }
    var currentKey: String { base + "/current.json" }
    var lockKey: String { base + "/lock.json" }
    func releaseKey(_ release: String) -> String { base + "/releases/\(release).json" }

    /// current.json and its ETag; (nil, nil) when no deployment has claimed it yet.
    func readCurrent() throws(ShipError) -> (current: Current?, etag: String?) {
        let response = try client.send("GET", key: currentKey, expect: [200, 404])
        guard response.status == 200 else { return (nil, nil) }
        return (try? JSONDecoder().decode(Current.self, from: response.body), response.headers["etag"])
    }

    /// The record of a release deployed with this store, if there is one.
    func record(of release: String) throws(ShipError) -> Current? {
        let response = try client.send("GET", key: releaseKey(release), expect: [200, 404])
        guard response.status == 200 else { return nil }
        return try? JSONDecoder().decode(Current.self, from: response.body)
    }

    /// Writes the release's record, then claims current.json for it if it is still what it was
    /// when the deployment began (`etag`, or absent); else tells who claimed it meanwhile.
    func claim(_ current: Current, replacing etag: String?) throws(ShipError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = (try? encoder.encode(current)) ?? Data()
        _ = try client.send("PUT", key: releaseKey(current.release), body: data, expect: [200])
        let condition = etag.map { "If-Match: \($0)" } ?? "If-None-Match: *"
        let response = try client.send("PUT", key: currentKey, body: data, expect: [200, 412], headers: [condition])
        guard response.status == 412 else { return }
        let other = (try? readCurrent().current).flatMap { $0 }
        let who = other.map { "\($0.holder) (deployment \($0.deploymentId), release \($0.release), at \($0.time))" } ?? "another deployment"
        throw ShipError("every host is on release \(current.release), but \(client.describe(currentKey)) was claimed meanwhile by \(who); "
                        + "the store's record of \(environment) was not changed",
                        hint: "two controllers deployed \(environment) at once; use `lock: store` so that they wait for each other, "
                            + "then deploy again to say which release the store's hosts should pull",
                        exitCode: .locked)
    }

    /// Takes the store's lock; nil when taken, else who holds it.
    func takeLock(_ lock: LockInfo) throws(ShipError) -> LockInfo? {
        let data = (try? JSONEncoder().encode(lock)) ?? Data()
        let response = try client.send("PUT", key: lockKey, body: data, expect: [200, 412], headers: ["If-None-Match: *"])
        guard response.status == 412 else { return nil }
        let held = try client.send("GET", key: lockKey, expect: [200, 404])
        // Gone between the two calls: try again.
        guard held.status == 200 else { return try takeLock(lock) }
        return (try? JSONDecoder().decode(LockInfo.self, from: held.body))
            ?? LockInfo(deploymentId: "unknown", holder: "unknown (\(client.describe(lockKey)) is not a lock ship wrote)", started: "unknown")
    }

    /// Removes the store's lock if this deployment holds it.
    func releaseLock(_ lock: LockInfo) {
        guard let held = try? client.send("GET", key: lockKey, expect: [200, 404]), held.status == 200,
              let holder = try? JSONDecoder().decode(LockInfo.self, from: held.body), holder.deploymentId == lock.deploymentId else { return }
        _ = try? client.send("DELETE", key: lockKey, expect: [204, 200])
    }

    /// `ship unlock`: removes the store's lock whoever holds it; the holder, if there was one.
    func forceUnlock() throws(ShipError) -> LockInfo? {
        let held = try client.send("GET", key: lockKey, expect: [200, 404])
        guard held.status == 200 else { return nil }
        _ = try client.send("DELETE", key: lockKey, expect: [204, 200])
        return (try? JSONDecoder().decode(LockInfo.self, from: held.body))
            ?? LockInfo(deploymentId: "unknown", holder: "unknown", started: "unknown")
    }
}
