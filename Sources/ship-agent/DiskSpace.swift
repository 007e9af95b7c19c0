#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Hooks

/// Says "no space left" as such: the directory, what is free there, and what was needed,
/// instead of a tool's "Wrote only 7680 of 10240 bytes".
enum DiskSpace {
    /// Bytes free for this user on the filesystem holding `path`, if it can be read.
    static func available(at path: String) -> Int64? {
        var info = statvfs()
        guard statvfs(path, &info) == 0 else { return nil }
        return Int64(info.f_bavail) * Int64(info.f_frsize)
    }

    /// Whether a failure's errno or a tool's words mean a full disk (or quota).
    static func isFull(errno code: Int32? = nil, output: String = "") -> Bool {
        if let code, code == ENOSPC || code == EDQUOT { return true }
        return output.contains("No space left on device") || output.contains("Disk quota exceeded") || output.contains("Wrote only")
    }

    static func message(at path: String, while doing: String, needed: Int64?) -> String {
        var text = "no space left on device in \(path) while \(doing)"
        var details: [String] = []
        if let free = available(at: path) { details.append("\(ByteCount.format(free)) free") }
        if let needed { details.append("about \(ByteCount.format(needed)) needed") }
        if !details.isEmpty { text += " (" + details.joined(separator: ", ") + ")" }
        return text
    }

    /// The uncompressed size a gzip file records in its last four bytes (modulo 4 GiB).
    static func gzipContentSize(_ path: String) -> Int64? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: 4)
        guard lseek(fd, -4, SEEK_END) >= 0, read(fd, &bytes, 4) == 4 else { return nil }
        return Int64(bytes[0]) | Int64(bytes[1]) << 8 | Int64(bytes[2]) << 16 | Int64(bytes[3]) << 24
    }
}
