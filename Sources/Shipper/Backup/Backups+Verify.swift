import Foundation
import Hooks

/// `ship backup verify`: proof that a backup can be restored, short of restoring it. The stored
/// file's SHA-256 must match its manifest, the whole stream must decrypt (every chunk
/// authenticated, in order, up to the last) and decompress, and what comes out must be complete
/// (mysqldump's trailer, pg_dump's PGDMP header, a tar archive `tar` can list). With a test
/// restore, the dump is loaded into a scratch database on the same server, which is dropped after.
extension Backups {
    public struct VerifyReport: Sendable {
        public var manifest: BackupManifest
        /// Bytes of the dump or archive once decrypted and decompressed.
        public var bytes: Int64 = 0
        /// What was checked, in order, as sentences.
        public var checks: [String] = []
    }

    public func verify(_ manifest: BackupManifest, from source: (any BackupStore)? = nil,
                       restoreTest: Bool) async throws(ShipError) -> VerifyReport {
        let keys = try openingKeys(for: manifest)
        let store = source ?? self.store
        var scratch: (client: AgentClient, request: AgentRequest)?
        if restoreTest {
            guard manifest.kind == .db else {
                throw ShipError.usage("--restore-test loads database dumps; \(manifest.id) is an assets archive",
                                      hint: "`ship backup verify \(environment.name) \(manifest.id)` lists the archive")
            }
            let database = try databaseSettings()
            guard database.engine == .mysql || database.engine == .postgres else {
                throw ShipError.usage("--restore-test needs backup.db.engine mysql or postgres (this one is \(database.engine.rawValue))",
                                      hint: "verify without --restore-test checks the dump is whole")
            }
            try check(manifest, isKind: .db, engine: database.engine.rawValue)
            var request = AgentRequest(operation: .restoreDatabase, deployTo: environment.deployTo)
            request.database = try databaseTarget(database)
            request.scratchRestore = true
            scratch = (try await client(for: database.site), request)
        }
        var report = VerifyReport(manifest: manifest)
        try await store.withVerifiedFile(manifest) { path throws(ShipError) in
            report.checks.append("SHA-256 matches the manifest (\(ByteCount.format(manifest.bytes)) stored)")
            if manifest.encryptedWith != nil {
                report.checks.append("encrypted with key \(manifest.encryptedWith ?? ""): every chunk authenticated, none missing")
            }
            switch manifest.kind {
            case .db: try readDump(manifest, path: path, keys: keys, into: &report)
            case .assets: try await listArchive(manifest, path: path, keys: keys, into: &report)
            }
            if let scratch {
                let stream = RestoreStream(path: path, keys: keys)
                let result: AgentResult
                do throws(HostError) {
                    result = try await scratch.client.call(scratch.request, source: stream)
                } catch {
                    throw Self.shipError(error)
                }
                if let failure = stream.failure { throw ShipError("test restore of \(manifest.id) stopped: \(failure)") }
                guard result.ok else {
                    throw ShipError("test restore of \(manifest.id) failed: \(result.message ?? "no reason given") (the scratch database was dropped)")
                }
                report.checks.append("loaded into a scratch database on \(scratch.client.transport.host), then dropped: "
                                     + (result.report ?? []).joined(separator: "; "))
            }
        }
        var verified = manifest
        verified.verified = Event.timestamp(Date())
        if restoreTest { verified.restoreTested = true }
        try await store.update(verified)
        report.manifest = verified
        return report
    }

    /// Reads the whole dump; it must be complete the way the backup checked it when it was taken.
    private func readDump(_ manifest: BackupManifest, path: String, keys: [BackupKey], into report: inout VerifyReport) throws(ShipError) {
        var ends = DumpEnds()
        let stop = BackupReader.read(path: path, keys: keys) { chunk in
            ends.add(chunk)
            return true
        }
        if case .failed(let problem) = stop { throw ShipError("\(manifest.id) cannot be read back: \(problem)") }
        report.bytes = ends.total
        report.checks.append("decompresses whole: \(ByteCount.format(ends.total)) of dump")
        let postgres = manifest.engine == "postgres"
        let trailer = manifest.engine == "mysql" ? DumpEnds.mysqlTrailer : nil
        if let problem = ends.problem(magic: postgres ? DumpEnds.postgresMagic : nil, trailer: trailer) {
            throw ShipError("\(manifest.id) is not a whole dump: \(problem)")
        }
        if postgres { report.checks.append("a pg_dump custom-format archive") }
        if trailer != nil { report.checks.append("ends with mysqldump's `\(DumpEnds.mysqlTrailer)`") }
    }

    /// Lists the archive with tar: every member header must read.
    private func listArchive(_ manifest: BackupManifest, path: String, keys: [BackupKey], into report: inout VerifyReport) async throws(ShipError) {
        let stream = DecodedStream(path: path, keys: keys)
        let members = SendableBox(0)
        let count: @Sendable (String) -> Void = { _ in members.value += 1 }
        let result = await ChildProcess.run("/usr/bin/env", ["tar", "--list", "--file=-"], input: .dataThenStream(Data(), stream),
                                            onLine: count)
        if let failure = stream.failure { throw ShipError("\(manifest.id) cannot be read back: \(failure)") }
        guard result.status == 0 else { throw ShipError("\(manifest.id) is not a whole tar archive: \(result.stderr)") }
        report.bytes = stream.bytes
        report.checks.append("decompresses whole: a tar archive of \(members.value) entries (\(ByteCount.format(stream.bytes)))")
    }
}

/// A stored backup decrypted and decompressed, as a program's stdin.
final class DecodedStream: StreamSource, @unchecked Sendable {
    let path: String
    let keys: [BackupKey]
    private let lock = NSLock()
    private var _failure: String?
    private var _bytes: Int64 = 0

    init(path: String, keys: [BackupKey]) {
        self.path = path
        self.keys = keys
    }

    var failure: String? { lock.withLock { _failure } }
    var bytes: Int64 { lock.withLock { _bytes } }

    func pump(_ write: (UnsafeRawBufferPointer) -> Bool) {
        var total: Int64 = 0
        let stop = BackupReader.read(path: path, keys: keys) { chunk in
            total += Int64(chunk.count)
            return write(chunk)
        }
        lock.withLock {
            _bytes = total
            if case .failed(let problem) = stop { _failure = problem }
        }
    }
}
