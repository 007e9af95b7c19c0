import CGit2
import Foundation
import Hooks

/// What each host is sent to make the new release: a delta from a release it holds, the full
/// bundle, or nothing (the full bundle is in its cache).
extension Deployment {
    struct Shipment: Sendable {
        /// The host's bundle cache holds the full bundle.
        var fullPresent: Bool
        /// A delta from `baseRelease`, a release on the host of the delta's base revision.
        var delta: DeltaBundle?
        var baseRelease: String?
    }

    /// The release each host's delta starts from: one of the new revision when the host has it
    /// (a redeploy copies it whole), else the current release; only releases the agent sealed
    /// when it made them can be a base.
    static func deltaBase(of state: AgentResult, revision: String) -> ReleaseInfo? {
        let candidates = (state.releaseInfos ?? []).filter { $0.deltaBase == true && $0.revision != nil && $0.state != .failed }
        return candidates.last { $0.revision == revision } ?? candidates.first { $0.release == state.currentRelease }
    }

    /// Plans every host's shipment, writing one delta bundle per base revision in the bundle
    /// cache. A delta is used only when the controller's repository has the base commit and the
    /// delta is smaller than the full bundle; the full bundle is written only when a host gets
    /// it (no base, or a delta that did not pay).
    func plan(for hosts: [Host], states: [AgentResult], prepared: Prepared) throws(ShipError) -> [String: Shipment] {
        var deltas: [String: DeltaBundle?] = [:]
        var plan: [String: Shipment] = [:]
        for (host, state) in zip(hosts, states) {
            var shipment = Shipment(fullPresent: state.present == true)
            // A built revision's bundle holds files Git does not know: it travels whole; so does
            // one that hosts fetch from the artifact store (the controller sends none).
            if ProcessInfo.processInfo.environment["SHIP_FULL_BUNDLES"] != "1", prepared.buildKey == nil, environment.artifacts == nil,
               let base = Self.deltaBase(of: state, revision: prepared.revision.commit), let baseRevision = base.revision {
                if deltas[baseRevision] == nil { deltas[baseRevision] = writeDelta(from: baseRevision, prepared: prepared) }
                if let delta = deltas[baseRevision] ?? nil {
                    shipment.delta = delta
                    shipment.baseRelease = base.release
                }
            }
            if shipment.delta == nil { _ = try prepared.bundles.full() }
            plan[host.description] = shipment
        }
        return plan
    }

    /// Publishes the run's bundle to the artifact store (unless it is there); the store, or nil
    /// when the upload failed, with a warning: then hosts get the bundle over ssh. Missing
    /// credentials stop the deployment before any host changes.
    func publish(_ settings: ArtifactsConfig, prepared: Prepared) throws(ShipError) -> ArtifactStore? {
        let store = try ArtifactStore(settings, app: config.app)
        let bundle = try prepared.bundles.full()
        do throws(ShipError) {
            let size = ByteCountFormatter.string(fromByteCount: bundle.bytes, countStyle: .file)
            let step = try store.publish(bundle)
                ? "bundle published to \(store.location(bundle.sha256)) (\(size)); hosts fetch it from there"
                : "bundle already in \(store.location(bundle.sha256)) (\(size)); hosts fetch it from there"
            reporter.report(Event(.hostStep(step: step)))
            return store
        } catch {
            reporter.report(Event(.hostWarning(message: "cannot publish the bundle to the artifact store: \(error.description); hosts get it over ssh")))
            return nil
        }
    }

    private func writeDelta(from base: String, prepared: Prepared) -> DeltaBundle? {
        guard let repository = try? GitRepository.open(containing: config.directory),
              (try? repository.lookupCommit(base)).map({ git_commit_free($0); return true }) == true else { return nil }
        let path = Deployment.bundleCache(app: config.app) + "/\(config.app)-\(base.prefix(12))-\(prepared.revision.commit).delta.tar.gz"
        guard let delta = try? BundleWriter.writeDelta(repository: repository, base: base, revision: prepared.revision, to: path,
                                                       level: environment.compression.level) else {
            unlink(path)
            return nil
        }
        // Worth it only when smaller than the full bundle, when that is known.
        if let full = prepared.bundles.cached(), delta.bundle.bytes >= full.bytes {
            unlink(path)
            return nil
        }
        return delta
    }
}

/// A revision's full bundle, written at most once per run and only when a host needs it, kept in
/// the bundle cache with a small manifest beside it (`.json`: SHA-256, size, entries) so a later
/// run of the same revision and compression sends it without packaging again.
final class BundleMaker: @unchecked Sendable {
    let directory: String
    let revision: ResolvedRevision
    let path: String
    let level: Int32
    /// `build:`'s output, bundled with the revision (set before the bundle is written).
    var build: BuildOutput?
    private let lock = NSLock()
    private var made: Result<RevisionBundle, ShipError>?

    struct Manifest: Codable {
        var sha256: String
        var bytes: Int64
        var entries: Int
    }

    init(directory: String, revision: ResolvedRevision, path: String, level: Int32) {
        self.directory = directory
        self.revision = revision
        self.path = path
        self.level = level
    }

    /// The bundle if it is already written (this run or an earlier one).
    func cached() -> RevisionBundle? {
        lock.withLock {
            if case .success(let bundle)? = made { return bundle }
            guard let data = FileManager.default.contents(atPath: path + ".json"),
                  let manifest = try? JSONDecoder().decode(Manifest.self, from: data),
                  let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int64) ?? nil,
                  size == manifest.bytes else { return nil }
            let bundle = RevisionBundle(path: path, sha256: manifest.sha256, bytes: manifest.bytes, revision: revision, entries: manifest.entries)
            made = .success(bundle)
            return bundle
        }
    }

    /// The bundle, written now if no run wrote it yet; concurrent callers wait for one writer.
    func full() throws(ShipError) -> RevisionBundle {
        if let bundle = cached() { return bundle }
        let result: Result<RevisionBundle, ShipError> = lock.withLock {
            if let made { return made }
            let result: Result<RevisionBundle, ShipError>
            do throws(ShipError) {
                let repository = try GitRepository.open(containing: directory)
                let bundle = try BundleWriter.write(repository: repository, revision: revision, to: path, level: level, build: build)
                let manifest = try? JSONEncoder().encode(Manifest(sha256: bundle.sha256, bytes: bundle.bytes, entries: bundle.entries))
                if let manifest { try? manifest.write(to: URL(fileURLWithPath: path + ".json"), options: .atomic) }
                result = .success(bundle)
            } catch {
                result = .failure(error)
            }
            made = result
            return result
        }
        return try result.get()
    }
}
