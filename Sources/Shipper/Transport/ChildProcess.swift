import CSpawn
import Foundation
import Hooks

/// Runs a local program with streamed stdout lines. Built on posix_spawn and waitpid, with every
/// pipe end close-on-exec so children started concurrently never inherit each other's pipes.
/// The async form runs on a thread of its own and never blocks Swift's cooperative threads.
public enum ChildProcess {
    public static func run(_ executable: String, _ arguments: [String], input: TransportInput,
                           environment: [String: String]? = nil, directory: String? = nil,
                           onLine: @escaping @Sendable (String) -> Void) async -> CommandResult {
        await run(executable, arguments, input: input, environment: environment, directory: directory,
                  onBytes: LineSplitter(onLine).feed)
    }

    /// Like `run`, with stdout handed over as raw chunks, in order, on one thread.
    public static func run(_ executable: String, _ arguments: [String], input: TransportInput,
                           environment: [String: String]? = nil, directory: String? = nil,
                           onBytes: @escaping @Sendable (UnsafeRawBufferPointer?) -> Void) async -> CommandResult {
        await withCheckedContinuation { continuation in
            Thread {
                continuation.resume(returning: runBlocking(executable, arguments, input: input, environment: environment,
                                                           directory: directory, onBytes: onBytes))
            }.start()
        }
    }

    /// Blocks until the program exited and both of its output streams reached end of file.
    /// `stderrLines` bounds how much of stderr the result keeps (its end).
    public static func runBlocking(_ executable: String, _ arguments: [String], input: TransportInput,
                                   environment: [String: String]? = nil, directory: String? = nil, stderrLines: Int = 20,
                                   onLine: @escaping @Sendable (String) -> Void) -> CommandResult {
        runBlocking(executable, arguments, input: input, environment: environment, directory: directory,
                    stderrLines: stderrLines, onBytes: LineSplitter(onLine).feed)
    }

    /// `onBytes` gets each stdout chunk, then nil at end of file.
    public static func runBlocking(_ executable: String, _ arguments: [String], input: TransportInput,
                                   environment: [String: String]? = nil, directory: String? = nil, stderrLines: Int = 20,
                                   onBytes: @escaping @Sendable (UnsafeRawBufferPointer?) -> Void) -> CommandResult {
        _ = ignoreBrokenPipes
        var stdinPipe: [Int32] = [-1, -1], stdoutPipe: [Int32] = [-1, -1], stderrPipe: [Int32] = [-1, -1]
        guard ship_pipe_cloexec(&stdinPipe) == 0, ship_pipe_cloexec(&stdoutPipe) == 0, ship_pipe_cloexec(&stderrPipe) == 0 else {
            return CommandResult(status: 127, stderr: "cannot create pipes: \(String(cString: strerror(errno)))")
        }
        // A process group of its own: a Ctrl-C at the terminal reaches ship, which stops
        // gracefully, not the ssh sessions finishing their step.
        let spawned = Spawn.start([executable] + arguments, environment: environment, directory: directory,
                                  stdin: stdinPipe[0], stdout: stdoutPipe[1], stderr: stderrPipe[1], newProcessGroup: true)
        close(stdinPipe[0])
        close(stdoutPipe[1])
        close(stderrPipe[1])
        let pid: pid_t
        switch spawned {
        case .success(let started): pid = started
        case .failure(let error):
            close(stdinPipe[1])
            close(stdoutPipe[0])
            close(stderrPipe[0])
            return CommandResult(status: 127, stderr: "cannot run \(error)")
        }

        let done = DispatchGroup()
        let writeFD = stdinPipe[1]
        done.enter()
        Thread {
            feed(writeFD, input)
            close(writeFD)
            done.leave()
        }.start()
        let stderrBox = StderrTail(lines: stderrLines)
        let errFD = stderrPipe[0]
        done.enter()
        Thread {
            var data = Data()
            POSIXIO.readToEnd(errFD) { data.append(contentsOf: $0) }
            close(errFD)
            stderrBox.set(String(decoding: data, as: UTF8.self))
            done.leave()
        }.start()

        POSIXIO.readToEnd(stdoutPipe[0], chunkSize: 256 << 10) { onBytes($0) }
        onBytes(nil)
        close(stdoutPipe[0])

        let status = Spawn.wait(pid)
        // A source that produces over time (an agent session's requests) stops waiting.
        if case .dataThenStream(_, let source) = input { source.cancel() }
        done.wait()
        return CommandResult(status: Spawn.exitCode(status), stderr: stderrBox.value)
    }

    /// A child that exits before reading all its input (an ssh session whose remote command
    /// failed) must give EPIPE to the writer, not kill ship with SIGPIPE.
    private static let ignoreBrokenPipes: Void = {
        signal(SIGPIPE, SIG_IGN)
    }()

    @discardableResult
    private static func writeAll(_ fd: Int32, _ data: Data) -> Bool {
        data.withUnsafeBytes { POSIXIO.writeAll(fd, $0) }
    }

    private static func feed(_ fd: Int32, _ input: TransportInput) {
        switch input {
        case .none: return
        case .data(let data): writeAll(fd, data)
        case .dataThenFile(let data, let path):
            guard writeAll(fd, data) else { return }
            let file = open(path, O_RDONLY | O_CLOEXEC)
            guard file >= 0 else { return }
            defer { close(file) }
            var open = true
            POSIXIO.readToEnd(file) { chunk in
                if open { open = POSIXIO.writeAll(fd, chunk) }
            }
        case .dataThenStream(let data, let source):
            guard writeAll(fd, data) else { return }
            source.pump { POSIXIO.writeAll(fd, $0) }
        }
    }
}

/// Splits a byte stream into lines (the last one may lack its newline).
final class LineSplitter: @unchecked Sendable {
    private let onLine: @Sendable (String) -> Void
    private var pending = Data()

    init(_ onLine: @escaping @Sendable (String) -> Void) {
        self.onLine = onLine
    }

    func feed(_ chunk: UnsafeRawBufferPointer?) {
        guard let chunk else {
            if !pending.isEmpty { onLine(String(decoding: pending, as: UTF8.self)) }
            pending.removeAll()
            return
        }
        pending.append(contentsOf: chunk)
        var start = pending.startIndex
        while let newline = pending[start...].firstIndex(of: 0x0A) {
            onLine(String(decoding: pending[start..<newline], as: UTF8.self))
            start = newline + 1
        }
        pending.removeSubrange(pending.startIndex..<start)
    }
}

private final class StderrTail: @unchecked Sendable {
    private let lock = NSLock()
    private let lines: Int
    private var text = ""

    init(lines: Int) {
        self.lines = lines
    }

    func set(_ value: String) {
        lock.withLock { text = value.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n") }
    }

    var value: String { lock.withLock { text } }
}
