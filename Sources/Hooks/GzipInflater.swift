import CZlib

/// Inflates gzip (or zlib) input fed in pieces; concatenated gzip members are one stream, as
/// gzip -d reads them. Shared by the controller (restoring backups) and the agent (unpacking a
/// bundle while it arrives).
public final class GzipInflater {
    public enum Stop: Equatable, Sendable {
        /// `deliver` returned false.
        case readerLeft
        /// zlib refused the input; its error code.
        case corrupt(Int32)
    }

    private let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
    private var output: [UInt8]
    /// The last member seen so far ended cleanly: false at the end of the input means truncated.
    public private(set) var ended = false
    public private(set) var inflatedBytes: Int64 = 0

    public init?(outputChunk: Int = 256 << 10) {
        output = [UInt8](repeating: 0, count: outputChunk)
        stream.initialize(to: z_stream())
        // 15 + 32: a gzip or zlib header, detected.
        guard inflateInit2_(stream, 15 + 32, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            stream.deallocate()
            return nil
        }
    }

    deinit {
        inflateEnd(stream)
        stream.deinitialize(count: 1)
        stream.deallocate()
    }

    /// Hands every inflated piece of `chunk` to `deliver`, in order.
    public func inflate(_ chunk: UnsafeRawBufferPointer, _ deliver: (UnsafeRawBufferPointer) -> Bool) -> Stop? {
        guard let base = chunk.baseAddress, !chunk.isEmpty else { return nil }
        stream.pointee.next_in = UnsafeMutablePointer(mutating: base.assumingMemoryBound(to: UInt8.self))
        stream.pointee.avail_in = uInt(chunk.count)
        let outputSize = output.count
        repeat {
            if ended && stream.pointee.avail_in > 0 {
                // Another gzip member follows (concatenated gzip files are one stream).
                inflateReset(stream)
                ended = false
            }
            var status: Int32 = Z_OK
            let produced: Int = output.withUnsafeMutableBufferPointer { buffer in
                stream.pointee.next_out = buffer.baseAddress!
                stream.pointee.avail_out = uInt(outputSize)
                status = CZlib.inflate(stream, Z_NO_FLUSH)
                return outputSize - Int(stream.pointee.avail_out)
            }
            if status == Z_STREAM_END {
                ended = true
            } else if status != Z_OK && !(status == Z_BUF_ERROR && produced == 0) {
                return .corrupt(status)
            }
            if produced > 0 {
                inflatedBytes += Int64(produced)
                guard output.withUnsafeBytes({ deliver(UnsafeRawBufferPointer(rebasing: $0[0..<produced])) }) else { return .readerLeft }
            } else if status == Z_BUF_ERROR {
                break
            }
        } while stream.pointee.avail_in > 0 || (stream.pointee.avail_out == 0 && !ended)
        return nil
    }
}
