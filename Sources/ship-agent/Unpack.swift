#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CSpawn
import FoundationEssentials
import Hooks

/// Unpacks a bundle into a directory in one pass over its bytes, as they arrive: each piece read
/// is written to the host's bundle cache and to `sha256sum` (a received bundle), inflated here,
/// read by the TarScanner, and piped on to `tar -x` (GNU tar, whose own checks keep every member
/// inside the directory). Nothing reads the bundle a second time, and no directory is walked
/// afterwards: the scanner has listed the symlinks the containment check must resolve.
struct StreamingUnpack {
    enum Source {
        /// `bytes` of bundle on stdin after the request line, stored at `storeAt` (the host's
        /// bundle cache; nil for a delta, which is not kept) once their SHA-256 is `sha256`.
        case received(bytes: Int64, sha256: String, storeAt: String?)
        /// A bundle in the host's cache, whose SHA-256 is checked again on the way (the cache is
        /// written without fsync: a crash may have left it damaged).
        case cached(path: String, sha256: String)
    }

    let source: Source
    let destination: String
    /// Where temporary files go (the bundle being received, tar's messages).
    let workDirectory: String
    /// What a full disk is said to have stopped ("unpacking release NAME"), and where.
    let activity: String
    let spaceDirectory: String

    struct Outcome {
        var scanner: TarScanner
        var received: Int64
    }

    func run() throws -> Outcome {
        let errors = try anonymousFile()
        defer { close(errors) }
        var tarPipe: [Int32] = [-1, -1]
        guard ship_pipe_cloexec(&tarPipe) == 0 else { throw AgentError("pipe: \(String(cString: strerror(errno)))") }
        let tarSpawn = Spawn.start(["tar", "-x", "-f", "-", "-C", destination, "--no-same-owner", "--delay-directory-restore"],
                                   stdin: tarPipe[0], stdout: errors, stderr: errors)
        close(tarPipe[0])
        guard case .success(let tar) = tarSpawn else {
            close(tarPipe[1])
            if case .failure(let error) = tarSpawn { throw AgentError("cannot start tar: \(error.description)") }
            throw AgentError("cannot start tar")
        }
        var tarInput: Int32 = tarPipe[1]
        defer { if tarInput >= 0 { close(tarInput) } }

        var scanner = TarScanner()
        guard let inflater = GzipInflater() else { throw AgentError("cannot start zlib") }
        var corrupt: Int32?
        var tarGone = false
        var store: (fd: Int32, path: String)?
        var storeError: Int32?
        var received: Int64 = 0
        var cutShort = false

        /// One piece of gzip bytes through the inflater, the scanner and tar.
        /// After tar stopped (a full disk), the rest is still inflated, to say how much was needed.
        func unpack(_ chunk: UnsafeRawBufferPointer) {
            guard corrupt == nil, scanner.failure == nil else { return }
            if case .corrupt(let code) = inflater.inflate(chunk, { plain in
                guard scanner.feed(plain) else { return false }
                if !tarGone { tarGone = !POSIXIO.writeAll(tarInput, plain) }
                return true
            }) { corrupt = code }
        }

        // Whatever goes wrong, tar is waited for before anything is said (and before the caller
        // removes the directory it writes in), and a received bundle is read to its end.
        var problem: String?
        switch source {
        case .cached(let path, let sha256):
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            if fd < 0 {
                problem = "cannot read the bundle \(path): \(String(cString: strerror(errno)))"
            } else {
                var hasher = Hasher()
                if !POSIXIO.readToEnd(fd, chunkSize: 256 << 10, { hasher.feed($0); unpack($0) }) {
                    problem = "cannot read the bundle \(path): \(String(cString: strerror(errno)))"
                }
                close(fd)
                let digest = hasher.finish()
                if problem == nil && digest != sha256 {
                    unlink(path)
                    problem = "the cached bundle \(path) is damaged (SHA-256 \(digest ?? "unreadable")); it was removed, and the next deployment sends it again"
                }
            }
        case .received(let bytes, let sha256, let storeAt):
            if let storeAt {
                let temporary = storeAt + ".\(getpid()).partial"
                let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
                if fd >= 0 { store = (fd, temporary) } else { storeError = errno }
            }
            var hasher = Hasher()
            var buffer = [UInt8](repeating: 0, count: 256 << 10)
            while received < bytes {
                let count = buffer.withUnsafeMutableBytes { read(0, $0.baseAddress, Int(min(bytes - received, Int64($0.count)))) }
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else {
                    cutShort = true
                    break
                }
                received += Int64(count)
                buffer.withUnsafeBytes { all in
                    let chunk = UnsafeRawBufferPointer(rebasing: all[0..<count])
                    if let open = store, storeError == nil, !POSIXIO.writeAll(open.fd, chunk) { storeError = errno }
                    hasher.feed(chunk)
                    unpack(chunk)
                }
            }
            let digest = hasher.finish()
            if cutShort {
                problem = "the bundle was cut short after \(received) of \(bytes) bytes"
            } else if digest != sha256 {
                problem = "bundle SHA-256 mismatch after \(received) bytes: expected \(sha256), got \(digest ?? "nothing")"
            } else if let open = store, storeError == nil {
                // No fsync: the cache is checked again whenever it is used.
                fchmod(open.fd, 0o644)
                if storeError == nil, let storeAt, rename(open.path, storeAt) == 0 {
                    close(open.fd)
                    store = nil
                }
            }
            if let open = store {
                close(open.fd)
                unlink(open.path)
            }
        }
        close(tarInput)
        tarInput = -1
        let tarStatus = Spawn.exitCode(Spawn.wait(tar))
        let tarSaid = Self.messages(errors).trimmed
        if let problem { throw AgentError(problem) }
        if let failure = scanner.failure { throw AgentError(failure) }
        if let corrupt { throw AgentError("the bundle does not decompress (zlib error \(corrupt))") }
        if DiskSpace.isFull(output: tarSaid) || storeError.map({ DiskSpace.isFull(errno: $0) }) == true {
            throw AgentError(DiskSpace.message(at: spaceDirectory, while: activity, needed: inflater.inflatedBytes))
        }
        guard tarStatus == 0, !tarGone else {
            throw AgentError("unpacking the bundle failed: \(tarSaid.isEmpty ? "tar exited \(tarStatus)" : tarSaid)")
        }
        guard inflater.ended, scanner.finished else { throw AgentError("the bundle is truncated") }
        if let storeError { throw AgentError("cannot store the bundle in \(workDirectory): \(String(cString: strerror(storeError)))") }
        return Outcome(scanner: scanner, received: received)
    }

    /// A file for tar's messages that nothing else sees, in memory: the disk may be what is full.
    private func anonymousFile() throws -> Int32 {
        let memory = ship_memfd("tar-messages")
        if memory >= 0 { return memory }
        let path = workDirectory + "/.tar-messages.\(getpid())"
        let fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw AgentError("cannot create \(path): \(String(cString: strerror(errno)))") }
        unlink(path)
        return fd
    }

    private static func messages(_ fd: Int32) -> String {
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        var offset: off_t = 0
        while output.count < 64 << 10 {
            let count = pread(fd, &buffer, buffer.count, offset)
            guard count > 0 else { break }
            output += buffer[0..<count]
            offset += off_t(count)
        }
        return String(decoding: output, as: UTF8.self)
    }
}

/// SHA-256 by `sha256sum`, fed through a pipe while the bytes pass: it runs beside the agent on
/// another core, and ship writes no hash of its own.
struct Hasher {
    private var input: Int32 = -1
    private var output: Int32 = -1
    private var pid: pid_t = -1
    private var failed = false

    init() {
        var inPipe: [Int32] = [-1, -1]
        var outPipe: [Int32] = [-1, -1]
        guard ship_pipe_cloexec(&inPipe) == 0 else {
            failed = true
            return
        }
        guard ship_pipe_cloexec(&outPipe) == 0 else {
            close(inPipe[0])
            close(inPipe[1])
            failed = true
            return
        }
        let spawned = Spawn.start(["sha256sum"], stdin: inPipe[0], stdout: outPipe[1], stderr: outPipe[1])
        close(inPipe[0])
        close(outPipe[1])
        guard case .success(let child) = spawned else {
            close(inPipe[1])
            close(outPipe[0])
            failed = true
            return
        }
        input = inPipe[1]
        output = outPipe[0]
        pid = child
    }

    mutating func feed(_ bytes: UnsafeRawBufferPointer) {
        guard !failed else { return }
        if !POSIXIO.writeAll(input, bytes) { failed = true }
    }

    /// The hex digest, or nil when sha256sum could not take the whole input.
    mutating func finish() -> String? {
        if input >= 0 { close(input) }
        input = -1
        var said: [UInt8] = []
        if output >= 0 {
            POSIXIO.readToEnd(output) { said += $0 }
            close(output)
        }
        output = -1
        let status = pid > 0 ? Spawn.exitCode(Spawn.wait(pid)) : 127
        pid = -1
        guard !failed, status == 0 else { return nil }
        let digest = String(decoding: said.prefix { $0 != 0x20 }, as: UTF8.self)
        return digest.count == 64 ? digest : nil
    }
}
