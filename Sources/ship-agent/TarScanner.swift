/// Reads the headers of a bundle's tar stream as it passes on to `tar -x`: how many entries it
/// holds, where its symlinks are (so the containment check resolves those and walks no
/// directory), and the commit time REVISION carries. It accepts exactly what ship's bundle
/// writer makes (ustar directories, regular files and symlinks, pax records for long names),
/// and fails on anything else, so what it reads is what tar extracts: hard links, devices,
/// GNU long-name records, global pax headers, absolute names and `..` are refused here before
/// tar sees them.
struct TarScanner {
    static let block = 512

    /// A symlink's path in the release, by component.
    private(set) var symlinks: [[String]] = []
    private(set) var entries = 0
    /// The mtime of REVISION: the commit time every entry of a bundle carries.
    private(set) var revisionTime: Int64?
    /// The end-of-archive block was read.
    private(set) var finished = false
    private(set) var failure: String?

    private var header: [UInt8] = []
    /// Data bytes (padding included) still to pass before the next header.
    private var skip = 0
    /// A pax header's records being collected, and how many of its bytes are records.
    private var pax: [UInt8]?
    private var paxSize = 0
    private var paxPath: [UInt8]?
    private var paxLinkPath: [UInt8]?
    private var paxEntrySize: Int?

    init() {
        header.reserveCapacity(Self.block)
    }

    /// Reads the next piece of the stream; false once the stream is refused (`failure`).
    mutating func feed(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard failure == nil else { return false }
        var offset = 0
        while offset < bytes.count {
            if skip > 0 {
                let take = min(skip, bytes.count - offset)
                if pax != nil {
                    let wanted = max(0, min(take, paxSize - pax!.count))
                    if wanted > 0 { pax!.append(contentsOf: bytes[offset..<(offset + wanted)]) }
                }
                skip -= take
                offset += take
                if skip == 0, let records = pax {
                    pax = nil
                    guard readPax(records) else { return false }
                }
                continue
            }
            let take = min(Self.block - header.count, bytes.count - offset)
            header.append(contentsOf: bytes[offset..<(offset + take)])
            offset += take
            if header.count == Self.block {
                guard readHeader() else { return false }
                header.removeAll(keepingCapacity: true)
            }
        }
        return true
    }

    private mutating func refuse(_ why: String) -> Bool {
        failure = "refusing the bundle: " + why
        return false
    }

    private mutating func readHeader() -> Bool {
        if header.allSatisfy({ $0 == 0 }) {
            finished = true
            return true
        }
        guard !finished else { return refuse("data follows the end of the archive") }
        guard checksumMatches() else { return refuse("a tar header's checksum does not match (entry \(entries + 1))") }
        guard let headerSize = number(124, 12), let mtime = number(136, 12) else {
            return refuse("a tar header has a malformed number (entry \(entries + 1))")
        }
        let type = header[156]
        let size = paxEntrySize ?? Int(headerSize)
        if type == UInt8(ascii: "x") {
            guard size <= 1 << 20 else { return refuse("a pax header of \(size) bytes") }
            pax = []
            paxSize = size
            skip = Self.padded(size)
            if skip == 0 { pax = nil }
            return true
        }
        var path = paxPath ?? fullName()
        let linkTarget = paxLinkPath ?? field(157, 100)
        paxPath = nil
        paxLinkPath = nil
        paxEntrySize = nil
        // Names as tar stores them: a directory's with a trailing '/', maybe a leading "./".
        while path.count >= 2 && path[0] == UInt8(ascii: ".") && path[1] == UInt8(ascii: "/") { path.removeFirst(2) }
        let display = String(decoding: path, as: UTF8.self)
        guard path.first != UInt8(ascii: "/") else { return refuse("the entry \(display) has an absolute name") }
        let components = path.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: true)
            .filter { $0 != [UInt8(ascii: ".")] }
            .map { String(decoding: $0, as: UTF8.self) }
        guard !components.isEmpty else { return refuse("an entry has an empty name") }
        guard !components.contains("..") else { return refuse("the entry \(display) climbs out with '..'") }
        entries += 1
        switch type {
        case UInt8(ascii: "0"), 0:
            if components == ["REVISION"] { revisionTime = mtime }
            skip = Self.padded(size)
        case UInt8(ascii: "5"):
            skip = Self.padded(size)
        case UInt8(ascii: "2"):
            guard !linkTarget.isEmpty else { return refuse("the symlink \(display) has no target") }
            symlinks.append(components)
            skip = 0
        default:
            let kind = type == UInt8(ascii: "1") ? "a hard link" : "an entry of tar type '\(String(decoding: [type], as: UTF8.self))'"
            return refuse("\(display) is \(kind), which a ship bundle never holds")
        }
        return true
    }

    private static func padded(_ size: Int) -> Int {
        (size + block - 1) / block * block
    }

    private func checksumMatches() -> Bool {
        guard let stored = number(148, 8) else { return false }
        var sum: Int64 = 0
        for (index, byte) in header.enumerated() { sum += (148..<156).contains(index) ? 0x20 : Int64(byte) }
        return sum == stored
    }

    /// A NUL-terminated field.
    private func field(_ offset: Int, _ length: Int) -> [UInt8] {
        let slice = header[offset..<(offset + length)]
        return Array(slice.prefix { $0 != 0 })
    }

    /// ustar's name, with its prefix when the header has one.
    private func fullName() -> [UInt8] {
        let name = field(0, 100)
        let magic = header[257..<262]
        guard magic.elementsEqual("ustar".utf8) else { return name }
        let prefix = field(345, 155)
        return prefix.isEmpty ? name : prefix + [UInt8(ascii: "/")] + name
    }

    /// An octal number field (spaces and NULs around it), or base-256 when its high bit is set.
    private func number(_ offset: Int, _ length: Int) -> Int64? {
        let bytes = header[offset..<(offset + length)]
        if let first = bytes.first, first & 0x80 != 0 {
            var value: Int64 = Int64(first & 0x7F)
            for byte in bytes.dropFirst() {
                guard value < Int64.max >> 8 else { return nil }
                value = value << 8 | Int64(byte)
            }
            return value
        }
        var value: Int64 = 0
        var digits = 0
        for byte in bytes {
            if byte == 0 || byte == 0x20 {
                if digits > 0 { break } else { continue }
            }
            guard byte >= 0x30 && byte <= 0x37, value < Int64.max >> 3 else { return nil }
            value = value * 8 + Int64(byte - 0x30)
            digits += 1
        }
        return value
    }

    /// pax records: "LEN key=value\n"; path, linkpath and size are taken, others ignored.
    private mutating func readPax(_ records: [UInt8]) -> Bool {
        var index = 0
        while index < records.count {
            guard let space = records[index...].firstIndex(of: 0x20),
                  let length = Int(String(decoding: records[index..<space], as: UTF8.self)),
                  length > space - index + 1, index + length <= records.count,
                  records[index + length - 1] == 0x0A,
                  let equals = records[(space + 1)..<(index + length)].firstIndex(of: UInt8(ascii: "=")) else {
                return refuse("a pax header is malformed (entry \(entries + 1))")
            }
            let key = String(decoding: records[(space + 1)..<equals], as: UTF8.self)
            let value = Array(records[(equals + 1)..<(index + length - 1)])
            switch key {
            case "path": paxPath = value
            case "linkpath": paxLinkPath = value
            case "size":
                guard let size = Int(String(decoding: value, as: UTF8.self)), size >= 0 else {
                    return refuse("a pax size is malformed (entry \(entries + 1))")
                }
                paxEntrySize = size
            default: break
            }
            index += length
        }
        return true
    }
}
