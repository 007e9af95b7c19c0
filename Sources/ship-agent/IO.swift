#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CSpawn
import FoundationEssentials
import Hooks

struct AgentError: Error {
    var message: String
    /// What to do about it, when the agent knows.
    var hint: String?
    init(_ message: String, hint: String? = nil) {
        self.message = message
        self.hint = hint
    }
}

enum Output {
    /// Set for operations whose stdout is a framed stream (`AgentOperation.streamsFrames`).
    nonisolated(unsafe) static var framed = false

    /// Where events go instead of stdout (`ship-agent pull` shows them as lines).
    nonisolated(unsafe) static var sink: ((AgentEvent) -> Void)?

    static func emit(_ event: AgentEvent) {
        if let sink {
            sink(event)
            return
        }
        guard var data = try? JSONEncoder().encode(event) else { return }
        if framed {
            writeAll(1, Data(Frame.header(tag: Frame.event, length: data.count)) + data)
            return
        }
        data.append(0x0A)
        writeAll(1, data)
    }

    static func line(_ text: String) {
        emit(AgentEvent(kind: .output, line: text))
    }

    static func fail(_ message: String, exitCode: Int32) -> Never {
        writeAll(2, Data(("ship-agent: " + message + "\n").utf8))
        exit(exitCode)
    }

    /// A failed write means the controller went away: the step carries on regardless.
    static func writeAll(_ fd: Int32, _ data: Data) {
        data.withUnsafeBytes { _ = POSIXIO.writeAll(fd, $0) }
    }
}

enum Input {
    /// The first line of stdin, read byte by byte so nothing after it (a bundle) is consumed.
    static func readLine() -> [UInt8]? {
        var bytes: [UInt8] = []
        var byte: UInt8 = 0
        while true {
            let count = read(0, &byte, 1)
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { return bytes.isEmpty ? nil : bytes }
            if byte == 0x0A { return bytes }
            bytes.append(byte)
            if bytes.count > 16 << 20 { return nil }
        }
    }

    /// Reads and drops `count` bytes of stdin (or up to its end).
    static func discard(_ count: Int64) {
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        var left = count
        while left > 0 {
            let got = buffer.withUnsafeMutableBytes { read(0, $0.baseAddress, Int(min(left, Int64($0.count)))) }
            if got < 0 && errno == EINTR { continue }
            guard got > 0 else { return }
            left -= Int64(got)
        }
    }

    /// Copies stdin to `fd`, a file in `directory` (named in a full-disk error): the rest of it,
    /// or exactly `limit` bytes (a bundle inside a session, followed by the next request).
    /// Returns the byte count.
    static func copy(to fd: Int32, in directory: String, limit: Int64? = nil) throws -> Int {
        var total = 0
        var writeFailed = false
        var readOK = true
        if let limit {
            var buffer = [UInt8](repeating: 0, count: 256 << 10)
            var left = Int(limit)
            while left > 0 {
                let count = buffer.withUnsafeMutableBytes { read(0, $0.baseAddress, min(left, $0.count)) }
                if count < 0 && errno == EINTR { continue }
                if count == 0 { throw AgentError("the bundle was cut short after \(total) of \(limit) bytes") }
                guard count > 0 else {
                    readOK = false
                    break
                }
                if !writeFailed { writeFailed = !buffer.withUnsafeBytes { POSIXIO.writeAll(fd, UnsafeRawBufferPointer(rebasing: $0[0..<count])) } }
                total += count
                left -= count
            }
        } else {
            readOK = POSIXIO.readToEnd(0) { chunk in
                guard !writeFailed else { return }
                writeFailed = !POSIXIO.writeAll(fd, chunk)
                total += chunk.count
            }
        }
        guard !writeFailed else {
            let code = errno
            if DiskSpace.isFull(errno: code) {
                throw AgentError(DiskSpace.message(at: directory, while: "receiving the bundle (\(total) bytes written)", needed: nil))
            }
            throw AgentError("writing the bundle failed: \(String(cString: strerror(code)))")
        }
        guard readOK else { throw AgentError("reading the bundle failed: \(String(cString: strerror(errno)))") }
        return total
    }
}

/// Runs a helper program (tar, sha256sum, rm) to completion, capturing its output.
enum Helper {
    /// Runs a program with `input` on its stdin (held in memory: the program may read it at its
    /// own pace); its status, output and errors.
    static func run(_ argv: [String], input: [UInt8]) -> (status: Int32, output: String) {
        let memory = ship_memfd("input")
        guard memory >= 0 else { return (127, "memfd_create: \(String(cString: strerror(errno)))") }
        defer { close(memory) }
        guard POSIXIO.writeAll(memory, input), lseek(memory, 0, SEEK_SET) == 0 else {
            return (127, "cannot buffer a program's input: \(String(cString: strerror(errno)))")
        }
        return run(argv, stdin: memory)
    }

    /// Runs a program to its end (stdin from `stdin`, or /dev/null); its status and its output
    /// and errors together.
    static func run(_ argv: [String], stdin: Int32? = nil) -> (status: Int32, output: String) {
        var pipeFDs: [Int32] = [-1, -1]
        guard ship_pipe_cloexec(&pipeFDs) == 0 else { return (127, "pipe failed: \(String(cString: strerror(errno)))") }
        let spawned = Spawn.start(argv, stdin: stdin, stdout: pipeFDs[1], stderr: pipeFDs[1])
        close(pipeFDs[1])
        guard case .success(let pid) = spawned else {
            close(pipeFDs[0])
            if case .failure(let error) = spawned { return (127, error.description) }
            return (127, "")
        }
        var output: [UInt8] = []
        POSIXIO.readToEnd(pipeFDs[0]) { output += $0 }
        close(pipeFDs[0])
        return (Spawn.exitCode(Spawn.wait(pid)), String(decoding: output, as: UTF8.self))
    }
}

extension String {
    /// Without leading and trailing whitespace and newlines.
    var trimmed: String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
              let last = scalars.lastIndex(where: { !$0.properties.isWhitespace }) else { return "" }
        return String(scalars[first...last])
    }
}
