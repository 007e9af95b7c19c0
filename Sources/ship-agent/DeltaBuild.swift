#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CSpawn
import FoundationEssentials
import Hooks

/// The base release no longer holds its revision's files as packaged: the delta cannot be used.
struct BaseChanged: Error {
    var message: String
}

/// Completes a release made from a delta bundle: each regular file the new revision shares with
/// the base release's revision is copied from the base release into the new one. Copies, never
/// hard links: a hook of the new release writing a file in place cannot change an older release.
/// Where the filesystem shares extents (btrfs, XFS: `FICLONE`) the copy is a reflink and costs no
/// data; elsewhere `copy_file_range` copies inside the kernel.
///
/// A base file is used only if it is still what was unpacked: a regular file reached through
/// real directories (opened component by component, never following a symlink) whose inode has
/// not changed since the base release was sealed (its ctime is not later than the seal, which
/// no write, chmod, truncate or rename can keep). Anything else refuses the delta, and the
/// controller sends the full bundle.
struct DeltaBuild {
    let base: String
    let destination: String
    let sealed: FileTime
    /// Every file's mtime, the new commit's time, as a full unpack sets it.
    let mtime: Int64
    /// Shared paths (relative, by component): the release links them to `shared/`, so what the
    /// revision has there is never copied.
    let sharedPaths: [[String]]

    static let reflinkRequest: UInt = 0x4004_9409 // FICLONE

    struct Outcome {
        var copied = 0
        var method: String?
    }

    func copy(_ paths: [String]) throws -> Outcome {
        let baseRoot = open(base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard baseRoot >= 0 else { throw BaseChanged(message: "the base release \(base) cannot be opened: \(String(cString: strerror(errno)))") }
        defer { close(baseRoot) }
        let destinationRoot = open(destination, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard destinationRoot >= 0 else { throw AgentError("cannot open \(destination): \(String(cString: strerror(errno)))") }
        defer { close(destinationRoot) }
        var source = DirectoryCursor(root: baseRoot)
        var target = DirectoryCursor(root: destinationRoot)
        defer {
            source.close()
            target.close()
        }
        var outcome = Outcome()
        var reflinks = true
        var kernelCopy = true
        var buffer: [UInt8] = []
        for path in paths {
            let components = path.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            guard !components.isEmpty, !components.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) else {
                throw AgentError("refusing the delta: the path \(path) is not a plain relative path")
            }
            if sharedPaths.contains(where: { components.count >= $0.count && Array(components.prefix($0.count)) == $0 }) { continue }
            let name = components.last!
            let parents = Array(components.dropLast())
            guard let sourceDirectory = source.open(parents) else {
                throw BaseChanged(message: "\(parents.joined(separator: "/")) is no longer a directory of the base release")
            }
            let input = openat(sourceDirectory, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
            guard input >= 0 else { throw BaseChanged(message: "\(path) cannot be read in the base release: \(String(cString: strerror(errno)))") }
            defer { Glibc.close(input) }
            var info = stat()
            guard fstat(input, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
                throw BaseChanged(message: "\(path) is no longer a regular file in the base release")
            }
            guard FileTime(seconds: Int64(info.st_ctim.tv_sec), nanoseconds: Int64(info.st_ctim.tv_nsec)) <= sealed else {
                throw BaseChanged(message: "\(path) was changed in the base release after it was unpacked")
            }
            guard let targetDirectory = target.open(parents) else {
                throw AgentError("refusing the delta: \(parents.joined(separator: "/")) is not a directory of the new release")
            }
            let output = openat(targetDirectory, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, info.st_mode & 0o777)
            guard output >= 0 else {
                let code = errno
                if DiskSpace.isFull(errno: code) { throw DiskFull() }
                throw AgentError("cannot create \(path) in the new release: \(String(cString: strerror(code)))")
            }
            defer { Glibc.close(output) }
            var done = false
            if reflinks {
                if ioctl(output, Self.reflinkRequest, input) == 0 {
                    done = true
                    outcome.method = "reflink"
                } else {
                    reflinks = false // not this filesystem: never asked again
                }
            }
            if !done && kernelCopy {
                var left = Int(info.st_size)
                var failed = false
                while left > 0 {
                    let count = ship_copy_file_range(input, output, UInt(left))
                    if count < 0 && errno == EINTR { continue }
                    if count <= 0 {
                        if count < 0 && DiskSpace.isFull(errno: errno) { throw DiskFull() }
                        failed = true
                        break
                    }
                    left -= count
                }
                if failed {
                    kernelCopy = false
                    guard ftruncate(output, 0) == 0, lseek(input, 0, SEEK_SET) == 0 else {
                        throw AgentError("cannot copy \(path): \(String(cString: strerror(errno)))")
                    }
                } else {
                    done = true
                    if outcome.method == nil { outcome.method = "copy" }
                }
            }
            if !done {
                if buffer.isEmpty { buffer = [UInt8](repeating: 0, count: 256 << 10) }
                while true {
                    let count = read(input, &buffer, buffer.count)
                    if count < 0 && errno == EINTR { continue }
                    guard count >= 0 else { throw BaseChanged(message: "\(path) cannot be read in the base release: \(String(cString: strerror(errno)))") }
                    if count == 0 { break }
                    guard buffer.withUnsafeBytes({ POSIXIO.writeAll(output, UnsafeRawBufferPointer(rebasing: $0[0..<count])) }) else {
                        if DiskSpace.isFull(errno: errno) { throw DiskFull() }
                        throw AgentError("cannot write \(path) in the new release: \(String(cString: strerror(errno)))")
                    }
                }
                if outcome.method == nil { outcome.method = "copy" }
            }
            // The mode came with openat: the agent's umask (022) leaves release modes (0644, 0755) whole.
            var times = [timespec(tv_sec: Int(mtime), tv_nsec: 0), timespec(tv_sec: Int(mtime), tv_nsec: 0)]
            futimens(output, &times)
            outcome.copied += 1
        }
        return outcome
    }

    struct DiskFull: Error {}
}

/// Opens directories under a root one component at a time, never following a symlink, and keeps
/// the last one open: files of a tree come directory by directory.
private struct DirectoryCursor {
    let root: Int32
    private var path: [String] = []
    private var descriptors: [Int32] = []

    init(root: Int32) {
        self.root = root
    }

    mutating func open(_ components: [String]) -> Int32? {
        var shared = 0
        while shared < min(path.count, components.count) && path[shared] == components[shared] { shared += 1 }
        while path.count > shared {
            Glibc.close(descriptors.removeLast())
            path.removeLast()
        }
        while path.count < components.count {
            let parent = descriptors.last ?? root
            let fd = openat(parent, components[path.count], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard fd >= 0 else { return nil }
            descriptors.append(fd)
            path.append(components[path.count])
        }
        return descriptors.last ?? root
    }

    mutating func close() {
        descriptors.forEach { Glibc.close($0) }
        descriptors = []
        path = []
    }
}
