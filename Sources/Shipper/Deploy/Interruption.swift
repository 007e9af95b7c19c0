import Foundation
import Synchronization

/// Two-stage stopping, as swift-service-lifecycle's graceful shutdown: the first SIGINT/SIGTERM
/// starts no new host step and lets steps in flight finish (so every host keeps a complete
/// release in `current`); locks are released and ship exits 130. A second signal cancels.
public final class Interruption: Sendable {
    private let count = Atomic<Int>(0)

    public init() {}

    public var requested: Bool { count.load(ordering: .relaxed) > 0 }

    /// Records a signal; returns how many have arrived.
    @discardableResult
    public func signal() -> Int {
        count.add(1, ordering: .relaxed).newValue
    }
}
