/// Hosts split into the batches of a rolling deployment (Ansible's `serial`): each size is a
/// count or a percentage of the whole pool (rounded down, at least 1); the last size repeats.
public struct BatchPlan: Sendable, Equatable {
    public var batches: [[Host]]

    public init(hosts: [Host], spec: BatchSpec) {
        var batches: [[Host]] = []
        var index = 0
        var step = 0
        while index < hosts.count {
            let size = spec.sizes.isEmpty ? .count(1) : spec.sizes[min(step, spec.sizes.count - 1)]
            let count: Int
            switch size {
            case .count(let n): count = max(1, n)
            case .percent(let p): count = max(1, hosts.count * p / 100)  // rounded down, as Ansible does
            }
            let end = min(hosts.count, index + count)
            batches.append(Array(hosts[index..<end]))
            index = end
            step += 1
        }
        self.batches = batches
    }
}
