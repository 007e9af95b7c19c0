import Foundation
import Synchronization

/// New ssh connections through a jump host (ProxyJump), opened at most `limit` at a time per
/// jump host. Each one is a connection to the bastion's sshd that stays unauthenticated for a
/// moment, and an sshd drops new connections past its MaxStartups (a stock one starts at 10):
/// opening a hundred hosts at once through one bastion would lose most of them. Hosts reached
/// directly each have their own sshd and are not held back.
final class ConnectionGates: Sendable {
    let limit: Int
    private let gates = Mutex<[String: Gate]>([:])

    init(limit: Int) {
        self.limit = max(1, limit)
    }

    func gate(for jump: String) -> Gate {
        gates.withLock { gates in
            if let gate = gates[jump] { return gate }
            let gate = Gate(limit: limit)
            gates[jump] = gate
            return gate
        }
    }

    /// A counting semaphore for tasks: `acquire` waits (without a thread) for a free slot.
    actor Gate {
        private let limit: Int
        private var inUse = 0
        private var waiting: [CheckedContinuation<Void, Never>] = []

        init(limit: Int) {
            self.limit = limit
        }

        func acquire() async {
            if inUse < limit {
                inUse += 1
                return
            }
            await withCheckedContinuation { waiting.append($0) }
        }

        func release() {
            if waiting.isEmpty {
                inUse -= 1
            } else {
                waiting.removeFirst().resume()
            }
        }
    }
}

/// A transport's connection, opened once however many commands start at the same time.
actor ConnectionOpening {
    private var opening: Task<Void, Never>?

    func once(_ open: @escaping @Sendable () async -> Void) async {
        if let opening { return await opening.value }
        let task = Task { await open() }
        opening = task
        await task.value
    }
}
