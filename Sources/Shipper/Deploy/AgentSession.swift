import Foundation
import Hooks

/// One agent session with a host for a whole run (`ship-agent serve` over one ssh channel): every
/// operation of a deployment (preflight, lock, bundle, prepare, hooks, switch, prune, unlock) is a
/// request on it, instead of an ssh session and a remote login shell each. Requests go one at a
/// time. A session that ended (ssh dropped, the host gone) fails its request the way a one-shot
/// command would (exit 255: unreachable); the next request opens a new session.
///
/// While a session is open the agent also keeps watch over its host: if the session ends while
/// the host's old release is stopped and not yet settled, the agent starts it again (Session.swift
/// in ship-agent). The run ends each session with `settle` once the host is settled.
final class AgentSession: @unchecked Sendable {
    private let gate = SessionGate()
    private let lock = NSLock()
    // Guarded by `lock`.
    private var channel: Channel?

    /// The live ssh session, its stdin and the request waiting for its result.
    final class Channel: @unchecked Sendable {
        let input = QueuedInput()
        var task: Task<CommandResult, Never>?
        let lock = NSLock()
        var waiting: CheckedContinuation<AgentResult?, Never>?
        var onEvent: (@Sendable (AgentEvent) -> Void)?
        var stray: [String] = []
        var ended: CommandResult?

        func route(_ line: String) {
            guard let event = try? JSONDecoder().decode(AgentEvent.self, from: Data(line.utf8)) else {
                lock.withLock { stray = Array((stray + [line]).suffix(20)) }
                return
            }
            if event.kind == .result {
                let waiting = lock.withLock { () -> CheckedContinuation<AgentResult?, Never>? in
                    defer { self.waiting = nil; onEvent = nil }
                    return self.waiting
                }
                waiting?.resume(returning: event.result)
            } else {
                lock.withLock { onEvent }?(event)
            }
        }

        func finish(_ result: CommandResult) {
            let waiting = lock.withLock { () -> CheckedContinuation<AgentResult?, Never>? in
                ended = result
                defer { self.waiting = nil }
                return self.waiting
            }
            waiting?.resume(returning: nil)
        }
    }

    /// Whether a session is open now (one that dropped is not reopened just to say goodbye).
    var isOpen: Bool {
        lock.withLock { channel }.map { channel in channel.lock.withLock { channel.ended == nil } } ?? false
    }

    /// Sends one request (and a bundle after it) and waits for its result; nil with the ssh
    /// command's end when the session ended first.
    func send(_ line: Data, bundle: String?, client: AgentClient,
              onEvent: @escaping @Sendable (AgentEvent) -> Void) async -> (AgentResult?, CommandResult?, [String]) {
        await gate.acquire()
        let outcome = await exchange(line, bundle: bundle, client: client, onEvent: onEvent)
        await gate.release()
        return outcome
    }

    private func exchange(_ line: Data, bundle: String?, client: AgentClient,
                          onEvent: @escaping @Sendable (AgentEvent) -> Void) async -> (AgentResult?, CommandResult?, [String]) {
        let channel = channel(for: client)
        let answer: AgentResult? = await withCheckedContinuation { continuation in
            let ended = channel.lock.withLock { () -> CommandResult? in
                if channel.ended == nil {
                    channel.waiting = continuation
                    channel.onEvent = onEvent
                }
                return channel.ended
            }
            if ended != nil {
                continuation.resume(returning: nil)
                return
            }
            channel.input.enqueue(.data(line))
            if let bundle { channel.input.enqueue(.file(bundle)) }
        }
        if answer != nil { return (answer, nil, []) }
        let ended = await channel.task?.value
        let stray = channel.lock.withLock { channel.stray }
        // The next request opens a new session (a dropped connection may be back).
        lock.withLock { if self.channel === channel { self.channel = nil } }
        return (nil, ended, stray)
    }

    /// Ends the session (stdin closed) and waits for the agent to exit.
    func close() async {
        let channel = lock.withLock { () -> Channel? in
            defer { self.channel = nil }
            return self.channel
        }
        guard let channel else { return }
        channel.input.enqueue(.end)
        _ = await channel.task?.value
    }

    private func channel(for client: AgentClient) -> Channel {
        lock.withLock {
            // A session that ended (a dropped connection) is replaced: the host may be back.
            if let channel, channel.lock.withLock({ channel.ended == nil }) { return channel }
            let channel = Channel()
            let transport = client.transport, agentPath = client.agentPath
            channel.task = Task {
                let result = await transport.run(ShellLine(RemoteCommand([agentPath, "serve"])),
                                                 input: .dataThenStream(Data(), channel.input)) { channel.route($0) }
                channel.input.enqueue(.end)
                channel.finish(result)
                return result
            }
            self.channel = channel
            return channel
        }
    }
}

/// A session's stdin: request lines and bundles, written in order as they are queued, until `.end`.
final class QueuedInput: StreamSource, @unchecked Sendable {
    enum Item {
        case data(Data)
        case file(String)
        case end
    }

    private let condition = NSCondition()
    private var items: [Item] = []

    func enqueue(_ item: Item) {
        condition.withLock {
            items.append(item)
            condition.signal()
        }
    }

    func cancel() {
        enqueue(.end)
    }

    /// Runs on the thread that feeds the ssh process's stdin, never on Swift's cooperative pool.
    func pump(_ write: (UnsafeRawBufferPointer) -> Bool) {
        while true {
            condition.lock()
            while items.isEmpty { condition.wait() }
            let item = items.removeFirst()
            condition.unlock()
            switch item {
            case .end: return
            case .data(let data):
                guard data.withUnsafeBytes({ write($0) }) else { return }
            case .file(let path):
                let fd = open(path, O_RDONLY | O_CLOEXEC)
                guard fd >= 0 else { return } // the agent then reports the bundle cut short
                var open = true
                POSIXIO.readToEnd(fd) { chunk in
                    if open { open = write(chunk) }
                }
                close(fd)
                guard open else { return }
            }
        }
    }
}

/// One request at a time on a session.
actor SessionGate {
    private var busy = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func acquire() async {
        guard busy else {
            busy = true
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    func release() {
        if waiters.isEmpty {
            busy = false
        } else {
            waiters.removeFirst().resume()
        }
    }
}
