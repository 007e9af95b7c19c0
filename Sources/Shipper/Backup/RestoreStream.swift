import CZlib
import Foundation
import Hooks

/// A stored backup, decompressed on the fly and framed for the agent's restore operations: data
/// frames, then the end frame only when the whole file inflated cleanly. Input that stops
/// without the end frame makes the agent stop the restore program rather than feed it a part.
public final class RestoreStream: StreamSource, @unchecked Sendable {
    let path: String
    private let lock = NSLock()
    private var _failure: String?

    public init(path: String) {
        self.path = path
    }

    /// Why the stream stopped early, if it did for a reason of its own (not the reader leaving).
    public var failure: String? { lock.withLock { _failure } }

    public func pump(_ write: (UnsafeRawBufferPointer) -> Bool) {
        if let problem = inflate(into: write) { lock.withLock { _failure = problem } }
    }

    private func inflate(into write: (UnsafeRawBufferPointer) -> Bool) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return "cannot read \(path): \(String(cString: strerror(errno)))" }
        defer { close(fd) }
        let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        defer {
            inflateEnd(stream)
            stream.deinitialize(count: 1)
            stream.deallocate()
        }
        // 15 + 32: a gzip or zlib header, detected.
        guard inflateInit2_(stream, 15 + 32, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            return "cannot start zlib"
        }
        let outputSize = Frame.maximumPayload
        var output = [UInt8](repeating: 0, count: outputSize + 5)
        var ended = false
        var readerLeft = false
        var problem: String?
        let readOK = POSIXIO.readToEnd(fd, chunkSize: 256 << 10) { chunk in
            guard problem == nil, !readerLeft, let base = chunk.baseAddress else { return }
            stream.pointee.next_in = UnsafeMutablePointer(mutating: base.assumingMemoryBound(to: UInt8.self))
            stream.pointee.avail_in = uInt(chunk.count)
            repeat {
                if ended && stream.pointee.avail_in > 0 {
                    // Another gzip member follows (concatenated gzip files are one stream).
                    inflateReset(stream)
                    ended = false
                }
                var status: Int32 = Z_OK
                let produced: Int = output.withUnsafeMutableBufferPointer { buffer in
                    stream.pointee.next_out = buffer.baseAddress! + 5
                    stream.pointee.avail_out = uInt(outputSize)
                    status = CZlib.inflate(stream, Z_NO_FLUSH)
                    return outputSize - Int(stream.pointee.avail_out)
                }
                if status == Z_STREAM_END {
                    ended = true
                } else if status != Z_OK && !(status == Z_BUF_ERROR && produced == 0) {
                    problem = "the backup does not decompress (zlib error \(status)): \(path)"
                    return
                }
                if produced > 0 {
                    output.replaceSubrange(0..<5, with: Frame.header(tag: Frame.data, length: produced))
                    guard output.withUnsafeBytes({ write(UnsafeRawBufferPointer(rebasing: $0[0..<(5 + produced)])) }) else {
                        readerLeft = true
                        return
                    }
                } else if status == Z_BUF_ERROR {
                    break
                }
            } while stream.pointee.avail_in > 0 || (stream.pointee.avail_out == 0 && !ended)
        }
        if readerLeft { return nil }
        if let problem { return problem }
        guard readOK else { return "cannot read \(path): \(String(cString: strerror(errno)))" }
        guard ended else { return "the backup is truncated: \(path)" }
        _ = Frame.header(tag: Frame.end, length: 0).withUnsafeBytes { write($0) }
        return nil
    }
}
