/// The two ends of a dump or archive stream, kept as it passes, and whether they show it whole:
/// the agent checks a dump this way when it is taken, and `ship backup verify` when it is read
/// back. mysqldump (and MariaDB's) ends with `-- Dump completed`; pg_dump's custom format starts
/// with `PGDMP`.
public struct DumpEnds: Sendable {
    public static let mysqlTrailer = "-- Dump completed"
    public static let postgresMagic = "PGDMP"

    public private(set) var head: [UInt8] = []
    public private(set) var tail: [UInt8] = []
    public private(set) var total: Int64 = 0

    public init() {}

    public mutating func add(_ chunk: UnsafeRawBufferPointer) {
        if head.count < 128 { head += chunk.prefix(128 - head.count) }
        tail += chunk.suffix(256)
        if tail.count > 256 { tail.removeFirst(tail.count - 256) }
        total += Int64(chunk.count)
    }

    /// Why the stream is not a whole dump, or nil. `magic` and `trailer` are what it must start and
    /// end with; a stream that looks like a mysqldump must end with its trailer whatever made it.
    public func problem(magic: String?, trailer: String?) -> String? {
        let start = String(decoding: head, as: UTF8.self)
        if let magic, !start.hasPrefix(magic) { return "it is not a \(magic) archive" }
        let looksLikeMySQLDump = start.contains("-- MySQL dump") || start.contains("-- MariaDB dump")
        if let trailer = trailer ?? (looksLikeMySQLDump ? Self.mysqlTrailer : nil),
           !String(decoding: tail, as: UTF8.self).contains(trailer) {
            return "the dump is incomplete: it does not end with `\(trailer)`"
        }
        return nil
    }
}
