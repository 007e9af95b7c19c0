#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Whole-buffer reads and writes on file descriptors, retrying on EINTR: shared by the agent,
/// the hook runner and the controller's child processes.
public enum POSIXIO {
    /// Writes every byte; false when the descriptor failed (e.g. the reader went away: EPIPE).
    @discardableResult
    public static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let base = bytes.baseAddress else { return true }
        var offset = 0
        while offset < bytes.count {
            let written = write(fd, base + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                return false
            }
            offset += written
        }
        return true
    }

    @discardableResult
    public static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { writeAll(fd, $0) }
    }

    /// Reads until end of file (or an error), handing over each chunk as it arrives.
    /// Returns false when reading failed. With a `deadline` (a `HookRunner.monotonicSeconds()`
    /// value), `onTimeout` runs once when it passes (it stops the writer), and what is left is
    /// read until the end.
    @discardableResult
    public static func readToEnd(_ fd: Int32, chunkSize: Int = 1 << 16, deadline: Double? = nil, onTimeout: () -> Void = {},
                                 _ body: (UnsafeRawBufferPointer) -> Void) -> Bool {
        var buffer = [UInt8](repeating: 0, count: chunkSize)
        var timedOut = false
        while true {
            if let deadline, !timedOut {
                let remaining = deadline - HookRunner.monotonicSeconds()
                if remaining <= 0 {
                    timedOut = true
                    onTimeout()
                    continue
                }
                var ready = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                let polled = poll(&ready, 1, Int32((min(remaining, 1) * 1000).rounded(.up)))
                if polled < 0 && errno != EINTR { return false }
                if polled <= 0 { continue }
            }
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                return false
            }
            if count == 0 { return true }
            buffer.withUnsafeBytes { body(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
        }
    }
}
