import Foundation

/// Runs a local program with streamed stdout lines, without blocking Swift's cooperative threads:
/// stdin is fed and stdout/stderr are read on threads of their own.
enum ChildProcess {
    static func run(_ executable: String, _ arguments: [String], input: TransportInput,
                    environment: [String: String]? = nil,
                    onLine: @escaping @Sendable (String) -> Void) async -> CommandResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        let stdout = Pipe(), stderr = Pipe(), stdin = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        process.standardInput = stdin
        let state = ProcessState()
        return await withCheckedContinuation { (continuation: CheckedContinuation<CommandResult, Never>) in
            state.continuation = continuation
            process.terminationHandler = { finished in
                state.finish(status: finished.terminationStatus)
            }
            do {
                try process.run()
            } catch {
                state.stderrTail = "cannot run \(executable): \(error.localizedDescription)"
                state.readerDone()
                state.readerDone()
                state.finish(status: 127)
                return
            }
            Thread {
                let writer = stdin.fileHandleForWriting
                switch input {
                case .none: break
                case .data(let data): try? writer.write(contentsOf: data) // the command may not read its stdin
                case .dataThenFile(let data, let path):
                    try? writer.write(contentsOf: data) // as above: a failure shows in the exit status
                    if let file = FileHandle(forReadingAtPath: path) {
                        while let chunk = try? file.read(upToCount: 1 << 20), !chunk.isEmpty {
                            do { try writer.write(contentsOf: chunk) } catch { break }
                        }
                        try? file.close() // read-only handle
                    }
                }
                try? writer.close() // closing our end of a pipe; nothing to recover
            }.start()
            Thread {
                var pending = Data()
                let handle = stdout.fileHandleForReading
                while true {
                    let chunk = handle.availableData
                    if chunk.isEmpty { break }
                    pending.append(chunk)
                    while let newline = pending.firstIndex(of: 0x0A) {
                        onLine(String(decoding: pending[pending.startIndex..<newline], as: UTF8.self))
                        pending.removeSubrange(pending.startIndex...newline)
                    }
                }
                if !pending.isEmpty { onLine(String(decoding: pending, as: UTF8.self)) }
                state.readerDone()
            }.start()
            Thread {
                let data = stderr.fileHandleForReading.readDataToEndOfFile()
                let text = String(decoding: data, as: UTF8.self)
                state.stderrTail = text.split(separator: "\n").suffix(20).joined(separator: "\n")
                state.readerDone()
            }.start()
        }
    }
}

/// Collects a child's end: termination plus both readers at EOF.
private final class ProcessState: @unchecked Sendable {
    private let lock = NSLock()
    var continuation: CheckedContinuation<CommandResult, Never>?
    private var pending = 3
    private var status: Int32 = 0
    private var _stderr = ""

    var stderrTail: String {
        get { lock.withLock { _stderr } }
        set { lock.withLock { _stderr = newValue } }
    }

    func readerDone() { step(nil) }
    func finish(status: Int32) { step(status) }

    private func step(_ status: Int32?) {
        let resume: CheckedContinuation<CommandResult, Never>?
        let result: CommandResult
        lock.lock()
        if let status { self.status = status }
        pending -= 1
        if pending == 0 {
            resume = continuation
            continuation = nil
        } else {
            resume = nil
        }
        result = CommandResult(status: self.status, stderr: _stderr)
        lock.unlock()
        resume?.resume(returning: result)
    }
}
