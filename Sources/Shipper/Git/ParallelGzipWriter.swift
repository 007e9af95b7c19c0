import CZlib
import Crypto
import Foundation
import Hooks

/// Writes one gzip member to a new file, compressing fixed-size blocks on every core, the way
/// pigz does: each block is deflated on its own with the previous block's last 32 KiB as its
/// dictionary and ends on a byte boundary (a sync flush), so the blocks concatenate into one
/// valid deflate stream; the CRC-32s are combined in order. The output depends only on the input
/// bytes (fixed block size, fixed header with no name and mtime 0), never on thread timing.
/// The SHA-256 of the compressed file is computed on the way.
final class ParallelGzipWriter: @unchecked Sendable {
    static let blockSize = 1 << 20
    static let dictionarySize = 32 * 1024

    private struct Job {
        var index: Int
        var dictionary: [UInt8]
        var input: [UInt8]
        var last: Bool
    }

    private struct BlockOutput {
        var output: [UInt8]
        var crc: UInt
        var length: Int
    }

    private let path: String
    private let descriptor: Int32
    private let level: Int32
    private let condition = NSCondition()
    // Guarded by `condition`.
    private var jobs: [Job] = []
    private var results: [Int: BlockOutput] = [:]
    private var submitted = 0
    private var written = 0
    private var closed = false
    private var failure: ShipError?
    private var runningThreads = 0
    private let maxInFlight: Int
    // Producer side only.
    private var pending: [UInt8]?
    private var previousTail: [UInt8] = []
    // Writer side only.
    private var hasher = SHA256()
    private var crc: UInt = 0
    private var totalLength = 0
    private(set) var bytesWritten: Int64 = 0
    /// Encrypts the compressed stream before it reaches the file (encrypted backups).
    private let sealer: StreamSealer?

    /// Creates `path` (which must not exist) with exactly `mode`, whatever the umask.
    /// With `key`, no compressed byte reaches the file unencrypted (BackupCipher's format).
    init(creating path: String, mode: mode_t = 0o644, level: Int32 = 6,
         workers: Int = ProcessInfo.processInfo.activeProcessorCount, key: BackupKey? = nil) throws(ShipError) {
        self.path = path
        self.level = level
        sealer = key.map(StreamSealer.init)
        descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard descriptor >= 0 else {
            throw ShipError("cannot create \(path): \(String(cString: strerror(errno)))")
        }
        guard fchmod(descriptor, mode) == 0 else {
            close(descriptor)
            throw ShipError("cannot set the mode of \(path): \(String(cString: strerror(errno)))")
        }
        let workerCount = max(1, workers)
        maxInFlight = workerCount * 2 + 2
        crc = crc32(0, nil, 0)
        // Fixed gzip header: deflate, no flags, mtime 0, no extra flags, OS Unix.
        let header: [UInt8] = [0x1F, 0x8B, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0x03]
        if let error = (sealer.map { writeFile($0.header) } ?? nil) ?? writeAll(header) {
            close(descriptor)
            throw error
        }
        condition.lock()
        runningThreads = workerCount + 1
        condition.unlock()
        for _ in 0..<workerCount {
            let thread = Thread { [self] in compressLoop() }
            thread.start()
        }
        let writer = Thread { [self] in writeLoop() }
        writer.start()
    }

    deinit {
        close(descriptor)
    }

    /// Adds bytes. Blocks are cut at exact multiples of `blockSize`; the caller hands over
    /// exactly `blockSize` bytes per call except possibly the last. Waits while too much is in flight.
    func write(_ block: [UInt8]) throws(ShipError) {
        if let pending {
            try enqueue(pending, last: false)
        }
        pending = block
    }

    /// Compresses what is left, writes the trailer, fsyncs and closes. Returns the SHA-256.
    func finish() throws(ShipError) -> String {
        try enqueue(pending ?? [], last: true)
        pending = nil
        condition.lock()
        closed = true
        condition.broadcast()
        while runningThreads > 0 { condition.wait() }
        let error = failure
        condition.unlock()
        if let error { throw error }
        var trailer: [UInt8] = []
        for shift in stride(from: 0, to: 32, by: 8) { trailer.append(UInt8(truncatingIfNeeded: crc >> UInt(shift))) }
        for shift in stride(from: 0, to: 32, by: 8) { trailer.append(UInt8(truncatingIfNeeded: totalLength >> shift)) }
        if let error = writeAll(trailer) { throw error }
        if let sealer, let error = writeFile(try sealer.finish()) { throw error }
        guard fsync(descriptor) == 0 else { throw ShipError("cannot write \(path): \(String(cString: strerror(errno)))") }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }

    /// Stops the threads after a failure elsewhere; the caller removes the file.
    func abandon() {
        condition.lock()
        failure = failure ?? ShipError("abandoned")
        closed = true
        condition.broadcast()
        while runningThreads > 0 { condition.wait() }
        condition.unlock()
    }

    private func enqueue(_ input: [UInt8], last: Bool) throws(ShipError) {
        let dictionary = previousTail
        previousTail = Array(input.suffix(Self.dictionarySize))
        condition.lock()
        defer { condition.unlock() }
        while submitted - written >= maxInFlight && failure == nil { condition.wait() }
        if let failure { throw failure }
        jobs.append(Job(index: submitted, dictionary: dictionary, input: input, last: last))
        submitted += 1
        condition.broadcast()
    }

    private func threadFinished() {
        condition.lock()
        runningThreads -= 1
        condition.broadcast()
        condition.unlock()
    }

    private func fail(_ error: ShipError) {
        condition.lock()
        failure = failure ?? error
        condition.broadcast()
        condition.unlock()
    }

    // MARK: - Workers

    private func compressLoop() {
        defer { threadFinished() }
        let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        defer { stream.deallocate() }
        // Raw deflate (negative window bits): the gzip wrapper is written by hand.
        guard deflateInit2_(stream, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY,
                            zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            fail(ShipError("cannot start gzip compression"))
            return
        }
        defer { deflateEnd(stream) }
        while true {
            condition.lock()
            while jobs.isEmpty && !closed && failure == nil { condition.wait() }
            if failure != nil || jobs.isEmpty {
                condition.unlock()
                return
            }
            let job = jobs.removeFirst()
            condition.unlock()
            switch compress(job, stream: stream) {
            case .success(let result):
                condition.lock()
                results[job.index] = result
                condition.broadcast()
                condition.unlock()
            case .failure(let error):
                fail(error)
                return
            }
        }
    }

    private func compress(_ job: Job, stream: UnsafeMutablePointer<z_stream>) -> Result<BlockOutput, ShipError> {
        guard deflateReset(stream) == Z_OK else { return .failure(ShipError("gzip compression failed")) }
        if !job.dictionary.isEmpty {
            let status = job.dictionary.withUnsafeBufferPointer {
                deflateSetDictionary(stream, $0.baseAddress, uInt($0.count))
            }
            guard status == Z_OK else { return .failure(ShipError("gzip compression failed (dictionary)")) }
        }
        var output = [UInt8](repeating: 0, count: Int(deflateBound(stream, uLong(job.input.count))) + 64)
        var produced = 0
        let flush = job.last ? Z_FINISH : Z_SYNC_FLUSH
        let status: Int32 = job.input.withUnsafeBufferPointer { input in
            stream.pointee.next_in = UnsafeMutablePointer(mutating: input.baseAddress)
            stream.pointee.avail_in = uInt(input.count)
            var status = Z_OK
            repeat {
                if produced == output.count { output += [UInt8](repeating: 0, count: 1 << 16) }
                status = output.withUnsafeMutableBufferPointer { out in
                    stream.pointee.next_out = out.baseAddress! + produced
                    stream.pointee.avail_out = uInt(out.count - produced)
                    let status = deflate(stream, flush)
                    produced = out.count - Int(stream.pointee.avail_out)
                    return status
                }
                if status != Z_OK && status != Z_STREAM_END && status != Z_BUF_ERROR { return status }
            } while job.last ? status != Z_STREAM_END : (stream.pointee.avail_out == 0 || stream.pointee.avail_in > 0)
            return Z_OK
        }
        guard status == Z_OK else { return .failure(ShipError("gzip compression failed (zlib status \(status))")) }
        output.removeLast(output.count - produced)
        let blockCRC = job.input.withUnsafeBufferPointer { crc32(0, $0.baseAddress, uInt($0.count)) }
        return .success(BlockOutput(output: output, crc: blockCRC, length: job.input.count))
    }

    // MARK: - Writer

    private func writeLoop() {
        defer { threadFinished() }
        while true {
            condition.lock()
            while results[written] == nil && !(closed && written == submitted) && failure == nil { condition.wait() }
            if failure != nil || (closed && written == submitted) {
                condition.unlock()
                return
            }
            let result = results.removeValue(forKey: written)!
            condition.unlock()
            if let error = writeAll(result.output) {
                fail(error)
                return
            }
            crc = crc32_combine(crc, result.crc, off_t(result.length))
            totalLength &+= result.length
            condition.lock()
            written += 1
            condition.broadcast()
            condition.unlock()
        }
    }

    /// The compressed stream, in order: to the file, through the sealer when encrypting.
    private func writeAll(_ bytes: [UInt8]) -> ShipError? {
        guard let sealer else { return writeFile(bytes) }
        do {
            let sealed = try sealer.add(bytes)
            return sealed.isEmpty ? nil : writeFile(sealed)
        } catch {
            return error
        }
    }

    private func writeFile(_ bytes: [UInt8]) -> ShipError? {
        bytesWritten += Int64(bytes.count)
        hasher.update(data: bytes)
        return POSIXIO.writeAll(descriptor, bytes) ? nil : ShipError("cannot write \(path): \(String(cString: strerror(errno)))")
    }
}
