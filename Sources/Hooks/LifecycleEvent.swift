/// The lifecycle events of one host in a deployment, in the order they run (CONTRACT.md section 4).
public enum LifecycleEvent: String, CaseIterable, Codable, CodingKeyRepresentable, Sendable, Comparable {
    /// Hooks of the release being replaced, before the host leaves the balancer's rotation
    /// (CodeDeploy's BeforeBlockTraffic); skipped on a first deploy.
    case beforeBlockTraffic = "before_block_traffic"
    /// Hooks of the release being replaced, once the host is out of rotation (AfterBlockTraffic).
    case afterBlockTraffic = "after_block_traffic"
    /// Hooks of the release being replaced; skipped on a first deploy.
    case stop
    /// After the release is unpacked and shared paths are linked, before `current` switches.
    case install
    /// Once per deployment, on one host, before any host switches.
    case migrate
    /// Right after `current` switched, before `start`: CodeDeploy's AfterInstall, which runs once
    /// the revision's files are in place (ship's own `install` runs before the switch).
    case afterInstall = "after_install"
    /// After `current` switched.
    case start
    /// After `start`; a failure here fails the host.
    case validate
    /// After `validate` and the health check, before the host goes back in rotation (BeforeAllowTraffic).
    case beforeAllowTraffic = "before_allow_traffic"
    /// Once the host is back in rotation (AfterAllowTraffic); a failure here fails the host.
    case afterAllowTraffic = "after_allow_traffic"

    /// The events in the order they run.
    public static let order: [LifecycleEvent] = [.beforeBlockTraffic, .afterBlockTraffic, .stop, .install, .migrate, .afterInstall,
                                                 .start, .validate, .beforeAllowTraffic, .afterAllowTraffic]

    /// The events whose hooks come from the release being replaced.
    public var runsOnOutgoingRelease: Bool { self == .beforeBlockTraffic || self == .afterBlockTraffic || self == .stop }

    public static func < (lhs: LifecycleEvent, rhs: LifecycleEvent) -> Bool {
        order.firstIndex(of: lhs)! < order.firstIndex(of: rhs)!
    }

}
