/// The lifecycle events of one host in a deployment, in the order they run (CONTRACT.md section 4).
public enum LifecycleEvent: String, CaseIterable, Codable, CodingKeyRepresentable, Sendable, Comparable {
    /// Hooks of the release being replaced; skipped on a first deploy.
    case stop
    /// After the release is unpacked and shared paths are linked, before `current` switches.
    case install
    /// Once per deployment, on one host, before any host switches.
    case migrate
    /// After `current` switched.
    case start
    /// After `start`; a failure here fails the host.
    case validate

    /// The events in the order they run.
    public static let order: [LifecycleEvent] = [.stop, .install, .migrate, .start, .validate]

    public static func < (lhs: LifecycleEvent, rhs: LifecycleEvent) -> Bool {
        order.firstIndex(of: lhs)! < order.firstIndex(of: rhs)!
    }

}
