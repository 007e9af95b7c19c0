import CZlib
import Crypto
import Foundation

/// Writes gzip-compressed bytes to a new file and hashes the compressed stream (SHA-256) on
/// the way. The gzip header is fixed (no name, mtime 0), so equal input gives equal output.
final class GzipFileWriter {
    private let stream: UnsafeMutablePointer<z_stream>
    private let descriptor: Int32
    private let path: String
    private var hasher = SHA256()
    private var output = [UInt8](repeating: 0, count: 1 << 18)
    private(set) var bytesWritten: Int64 = 0
    private var finished = false

    init(creating path: String, level: Int32 = 6) throws(ShipError) {
        self.path = path
        descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw ShipError("cannot create \(path): \(String(cString: strerror(errno)))")
        }
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        // windowBits 15 + 16: a gzip wrapper around raw deflate.
        let status = deflateInit2_(stream, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY,
                                   zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else {
            close(descriptor)
            stream.deallocate()
            throw ShipError("cannot start gzip compression (zlib status \(status))")
        }
    }

    deinit {
        if !finished {
            deflateEnd(stream)
            close(descriptor)
        }
        stream.deallocate()
    }

    /// Compresses `bytes` and writes whatever compressed output is ready.
    func write(_ bytes: [UInt8]) throws(ShipError) {
        guard !bytes.isEmpty else { return }
        var failure: ShipError?
        bytes.withUnsafeBufferPointer { buffer in
            stream.pointee.next_in = UnsafeMutablePointer(mutating: buffer.baseAddress)
            stream.pointee.avail_in = uInt(buffer.count)
            do throws(ShipError) { try pump(flush: Z_NO_FLUSH) } catch { failure = error }
            stream.pointee.next_in = nil
        }
        if let failure { throw failure }
    }

    /// Flushes the compressor, fsyncs and closes the file; returns the SHA-256 of what was written.
    func finish() throws(ShipError) -> String {
        stream.pointee.next_in = nil
        stream.pointee.avail_in = 0
        try pump(flush: Z_FINISH)
        deflateEnd(stream)
        finished = true
        let synced = fsync(descriptor) == 0
        let closed = close(descriptor) == 0
        guard synced && closed else { throw ShipError("cannot write \(path): \(String(cString: strerror(errno)))") }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }

    private func pump(flush: Int32) throws(ShipError) {
        let capacity = output.count
        var failure: ShipError?
        output.withUnsafeMutableBufferPointer { buffer in
            while true {
                stream.pointee.next_out = buffer.baseAddress
                stream.pointee.avail_out = uInt(capacity)
                let status = deflate(stream, flush)
                guard status == Z_OK || status == Z_STREAM_END || status == Z_BUF_ERROR else {
                    failure = ShipError("gzip compression failed (zlib status \(status))")
                    return
                }
                let produced = capacity - Int(stream.pointee.avail_out)
                if produced > 0 {
                    let chunk = UnsafeRawBufferPointer(start: buffer.baseAddress, count: produced)
                    hasher.update(bufferPointer: chunk)
                    if let error = writeAll(chunk) { failure = error; return }
                    bytesWritten += Int64(produced)
                }
                if flush == Z_FINISH {
                    if status == Z_STREAM_END { return }
                } else if stream.pointee.avail_in == 0 && stream.pointee.avail_out != 0 {
                    return
                }
            }
        }
        if let failure { throw failure }
    }

    private func writeAll(_ chunk: UnsafeRawBufferPointer) -> ShipError? {
        var offset = 0
        while offset < chunk.count {
            let written = Foundation.write(descriptor, chunk.baseAddress! + offset, chunk.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                return ShipError("cannot write \(path): \(String(cString: strerror(errno)))")
            }
            offset += written
        }
        return nil
    }
}
