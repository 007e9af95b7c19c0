import Foundation
import Hooks

/// The controller's side of the hosts' guards (ship-agent's `guard`, Operations+Guard.swift): one
/// ssh session per host whose release a run is about to stop, held open until the run has settled
/// the host. While ship runs, it starts stopped hosts again itself; the guard acts only when ship
/// cannot (killed, its machine gone, the connection dropped): its session then ends without the
/// `release` line, and the host starts `current` again on its own.
final class HostGuards: @unchecked Sendable {
    private let lock = NSLock()
    private var armed: [String: Session] = [:]

    /// Arms the guard on the host unless it is armed already; false if the host did not answer `ready`.
    func arm(_ client: AgentClient, environment: [String: String], journal: JournalEntry) async -> Bool {
        let host = client.transport.host.description
        let session = Session()
        let fresh = lock.withLock { () -> Bool in
            guard armed[host] == nil else { return false }
            armed[host] = session
            return true
        }
        guard fresh else { return true }
        var request = client.request(.guardHost)
        request.hookEnvironment = environment
        request.journal = journal
        guard let line = try? client.encode(request) else { return false }
        let (ready, readiness) = AsyncStream<Bool>.makeStream()
        session.task = Task {
            let result = await client.transport.run(ShellLine(RemoteCommand([client.agentPath, AgentOperation.guardHost.rawValue])),
                                                    input: .dataThenStream(line, session)) { text in
                if let event = try? JSONDecoder().decode(AgentEvent.self, from: Data(text.utf8)), event.kind == .ready {
                    readiness.yield(true)
                }
            }
            readiness.yield(false)
            readiness.finish()
            return result
        }
        for await answer in ready { return answer }
        return false
    }

    /// Tells every armed guard that its host is settled, and waits for them to end.
    func releaseAll() async {
        let sessions = lock.withLock { () -> [Session] in
            defer { armed.removeAll() }
            return Array(armed.values)
        }
        for session in sessions { session.release() }
        for session in sessions { _ = await session.task?.value }
    }

    /// The guard's stdin: nothing until the run lets go, then `release`.
    final class Session: StreamSource, @unchecked Sendable {
        private let released = DispatchSemaphore(value: 0)
        var task: Task<CommandResult, Never>?

        func release() {
            released.signal()
        }

        /// Runs on the thread that feeds the ssh session's stdin, never on Swift's cooperative pool.
        func pump(_ write: (UnsafeRawBufferPointer) -> Bool) {
            released.wait()
            _ = Array("release\n".utf8).withUnsafeBytes { write($0) }
        }
    }
}
