/// POSIX ustar headers, with pax extended headers for long names and large files.
///
/// Only what a bundle needs: directories, regular files and symbolic links, owned by
/// uid/gid 0 ("root"), every field fixed so the same input gives the same bytes.
enum TarFormat {
    static let blockSize = 512
    /// Archives are padded to a whole record, as GNU tar and git archive do.
    static let recordSize = 10240

    enum EntryType: UInt8 {
        case file = 0x30       // '0'
        case symlink = 0x32    // '2'
        case directory = 0x35  // '5'
        case paxHeader = 0x78  // 'x'
    }

    /// The header block(s) for one entry: a pax header first when a field does not fit ustar.
    static func headers(path: [UInt8], type: EntryType, mode: Int, size: Int, mtime: Int64,
                        linkTarget: [UInt8] = []) -> [UInt8] {
        var out: [UInt8] = []
        var pax: [(String, [UInt8])] = []
        let split = splitPath(path)
        if split == nil { pax.append(("path", path)) }
        if linkTarget.count > 100 { pax.append(("linkpath", linkTarget)) }
        if size > 0o77777777777 { pax.append(("size", Array(String(size).utf8))) }
        if !pax.isEmpty {
            var records: [UInt8] = []
            for (key, value) in pax { records += paxRecord(key: key, value: value) }
            // The pax header's own name: fixed, so the archive stays deterministic.
            let paxName = Array("PaxHeaders/".utf8) + Array(path.suffix(80))
            out += header(name: Array(paxName.prefix(100)), prefix: [], type: .paxHeader, mode: 0o644,
                          size: records.count, mtime: mtime, linkTarget: [])
            out += records
            out += padding(records.count)
        }
        let (prefix, name) = split ?? ([], Array(path.suffix(100)))
        out += header(name: name, prefix: prefix, type: type, mode: mode,
                      size: size > 0o77777777777 ? 0 : size, mtime: mtime, linkTarget: Array(linkTarget.prefix(100)))
        return out
    }

    /// Zero bytes that pad `count` bytes of data to a whole block.
    static func padding(_ count: Int) -> [UInt8] {
        let remainder = count % blockSize
        return remainder == 0 ? [] : [UInt8](repeating: 0, count: blockSize - remainder)
    }

    /// The end-of-archive marker (two zero blocks) plus padding of the whole archive to a record.
    static func trailer(archiveSizeSoFar: Int) -> [UInt8] {
        let withEnd = archiveSizeSoFar + 2 * blockSize
        let remainder = withEnd % recordSize
        let total = 2 * blockSize + (remainder == 0 ? 0 : recordSize - remainder)
        return [UInt8](repeating: 0, count: total)
    }

    /// Splits a path into ustar's prefix (155) and name (100) at a '/', or nil when it cannot.
    static func splitPath(_ path: [UInt8]) -> (prefix: [UInt8], name: [UInt8])? {
        if path.count <= 100 { return ([], path) }
        guard path.count <= 256 else { return nil }
        // The name part must be at most 100 bytes and the prefix at most 155; split at a '/'.
        var index = path.count - 1
        while index > 0 {
            if path[index] == 0x2F {
                let prefix = Array(path[..<index])
                let name = Array(path[(index + 1)...])
                if name.count > 100 { return nil }
                if prefix.count <= 155 && !name.isEmpty { return (prefix, name) }
            }
            index -= 1
        }
        return nil
    }

    static func paxRecord(key: String, value: [UInt8]) -> [UInt8] {
        // "LEN key=value\n", where LEN counts the whole record including its own digits.
        let body = Array(" \(key)=".utf8) + value + [0x0A]
        var length = body.count + 1
        while String(length).utf8.count + body.count != length { length = String(length).utf8.count + body.count }
        return Array(String(length).utf8) + body
    }

    static func header(name: [UInt8], prefix: [UInt8], type: EntryType, mode: Int, size: Int,
                       mtime: Int64, linkTarget: [UInt8]) -> [UInt8] {
        var block = [UInt8](repeating: 0, count: blockSize)
        func put(_ bytes: [UInt8], at offset: Int, length: Int) {
            for (i, byte) in bytes.prefix(length).enumerated() { block[offset + i] = byte }
        }
        func octal(_ value: Int64, width: Int) -> [UInt8] {
            // width-1 digits, zero-padded, then NUL.
            var digits = Array(String(value, radix: 8).utf8)
            if digits.count < width - 1 { digits = [UInt8](repeating: 0x30, count: width - 1 - digits.count) + digits }
            return digits + [0]
        }
        put(name, at: 0, length: 100)
        put(octal(Int64(mode), width: 8), at: 100, length: 8)
        put(octal(0, width: 8), at: 108, length: 8)        // uid
        put(octal(0, width: 8), at: 116, length: 8)        // gid
        put(octal(Int64(size), width: 12), at: 124, length: 12)
        put(octal(max(0, mtime), width: 12), at: 136, length: 12)
        put([UInt8](repeating: 0x20, count: 8), at: 148, length: 8) // checksum placeholder
        block[156] = type.rawValue
        put(linkTarget, at: 157, length: 100)
        put(Array("ustar\0".utf8), at: 257, length: 6)
        put(Array("00".utf8), at: 263, length: 2)
        put(Array("root".utf8), at: 265, length: 32)       // uname
        put(Array("root".utf8), at: 297, length: 32)       // gname
        put(octal(0, width: 8), at: 329, length: 8)        // devmajor
        put(octal(0, width: 8), at: 337, length: 8)        // devminor
        put(prefix, at: 345, length: 155)
        let checksum = block.reduce(0) { $0 + Int($1) }
        put(octal(Int64(checksum), width: 7) + [0x20], at: 148, length: 8)
        return block
    }
}
