#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import FoundationEssentials
import Hooks

/// `ship backup verify --restore-test`: a dump is loaded into a scratch database made for it on
/// the same server (`ship_verify_<random>`), its tables are counted and the largest ones' rows
/// too, and the scratch database is dropped whatever happened. The configured database is only
/// the connection: nothing in it is read or changed.
extension Operations {
    func restoreTest(_ configured: DatabaseTarget) throws -> AgentResult {
        guard configured.engine == "mysql" || configured.engine == "postgres" else {
            throw AgentError("a test restore needs engine mysql or postgres (a `command` engine's dump is the command's own format)")
        }
        let scratch = try PrivateDirectory()
        defer { scratch.remove() }
        let name = "ship_verify_" + String(UInt32.random(in: 0...UInt32.max), radix: 16)
        var target = configured
        target.name = name
        // Created and dropped over a connection to the configured database (any database will do
        // for CREATE/DROP DATABASE; this one is known to accept the user).
        _ = try query(configured, "CREATE DATABASE " + quotedIdentifier(name, engine: configured.engine), scratch: scratch)
        defer {
            _ = try? query(configured, "DROP DATABASE IF EXISTS " + quotedIdentifier(name, engine: configured.engine), scratch: scratch)
        }
        let invocation = try databaseInvocation(target, restore: true, scratch: scratch)
        var result = AgentResult(ok: true)
        result.bytes = try streamIn(invocation, scratch: scratch, secret: target.password)
        result.report = try inventory(target, scratch: scratch)
        return result
    }

    /// The number of tables, then up to three of the largest with their exact row counts.
    func inventory(_ target: DatabaseTarget, scratch: PrivateDirectory) throws -> [String] {
        let name = target.name ?? ""
        let tables: String
        let largest: String
        if target.engine == "mysql" {
            let schema = "table_schema = '\(name)' AND table_type = 'BASE TABLE'"
            tables = "SELECT COUNT(*) FROM information_schema.tables WHERE " + schema
            largest = "SELECT table_name FROM information_schema.tables WHERE " + schema + " ORDER BY data_length DESC, table_name LIMIT 3"
        } else {
            tables = "SELECT count(*) FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
                + " AND table_type = 'BASE TABLE'"
            largest = "SELECT format('%I.%I', schemaname, relname) FROM pg_stat_user_tables ORDER BY pg_total_relation_size(relid) DESC, 1 LIMIT 3"
        }
        let count = try query(target, tables, scratch: scratch).first ?? "0"
        guard let number = Int(count), number > 0 else { throw AgentError("the restored database holds no tables") }
        var report = ["\(number) table\(number == 1 ? "" : "s")"]
        for table in try query(target, largest, scratch: scratch) where !table.isEmpty {
            // mysql answers a bare name; PostgreSQL's format('%I.%I') is quoted already.
            let reference = target.engine == "mysql" ? quotedIdentifier(table, engine: "mysql") : table
            let rows = try query(target, "SELECT COUNT(*) FROM " + reference, scratch: scratch).first ?? "?"
            report.append("\(table): \(rows) rows")
        }
        return report
    }

    /// Runs one statement with the engine's client; returns the answer's lines.
    func query(_ target: DatabaseTarget, _ statement: String, scratch: PrivateDirectory) throws -> [String] {
        var environment = ProcessInfo.processInfo.environment
        let argv: [String]
        if target.engine == "mysql" {
            guard let program = Child.findOnPath(["mariadb", "mysql"]) else {
                throw AgentError("neither mariadb nor mysql is installed on \(Self.hostname()) (Debian: apt install mariadb-client)")
            }
            let options = scratch.path + "/query.cnf"
            if !files.fileExists(atPath: options) { _ = try scratch.write("query.cnf", Self.mysqlOptionFile(target)) }
            argv = [program, "--defaults-extra-file=" + options, "--batch", "--skip-column-names"]
                + (target.name.map { ["--database=" + $0] } ?? []) + ["--execute=" + statement]
        } else {
            guard let program = Child.findOnPath(["psql"]) else {
                throw AgentError("psql is not installed on \(Self.hostname()) (Debian: apt install postgresql-client)")
            }
            environment.merge(Self.postgresEnvironment(target)) { $1 }
            argv = [program, "--no-password", "--no-psqlrc", "--tuples-only", "--no-align", "--set=ON_ERROR_STOP=1", "--command=" + statement]
        }
        let output = try scratch.openCapture("query")
        let null = open("/dev/null", O_RDONLY | O_CLOEXEC)
        let child: Child
        do {
            child = try Child.start(argv, environment: environment, directory: "/", stdin: null, stdout: output, stderr: output)
        } catch {
            close(output); close(null)
            throw error
        }
        close(output); close(null)
        let status = child.wait()
        let answer = String(decoding: files.contents(atPath: scratch.path + "/query") ?? Data(), as: UTF8.self)
        guard status == 0 else {
            throw AgentError("\(argv[0]) could not run `\(statement.prefix(60))…` (exit \(status)): \(scratch.tail("query", hiding: target.password))")
        }
        return answer.split(separator: "\n").map { String($0).trimmed }
    }

    /// A database or table name as an SQL identifier (`name` for MySQL, "name" for PostgreSQL).
    func quotedIdentifier(_ name: String, engine: String) -> String {
        engine == "mysql" ? "`" + name.replacing("`", with: "``") + "`" : "\"" + name.replacing("\"", with: "\"\"") + "\""
    }
}
