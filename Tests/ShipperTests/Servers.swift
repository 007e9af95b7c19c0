import Foundation

/// A server process the test suite starts on loopback and stops on deinit. `start` returns once
/// the server's own log says it is ready (no polling, no sleeps); its output keeps draining.
final class ServerProcess: @unchecked Sendable {
    let process = Process()
    private let log = LogBuffer()

    /// What stops it: SIGTERM, or SIGKILL for a server that ignores SIGTERM and keeps no state.
    let stopSignal: Int32

    init(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
         readyWhen marker: String, timeout: TimeInterval = 60, stopSignal: Int32 = SIGTERM) throws {
        self.stopSignal = stopSignal
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        let ready = DispatchSemaphore(value: 0)
        try process.run()
        let handle = pipe.fileHandleForReading
        Thread { [log] in
            var signalled = false
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                let seen = log.append(String(decoding: chunk, as: UTF8.self), contains: marker)
                if seen && !signalled {
                    signalled = true
                    ready.signal()
                }
            }
            if !signalled { ready.signal() }
        }.start()
        // Ready only when the log said so and the server is still up: a server that died at
        // start (its port taken meanwhile) is a failure here, not a refused connection later.
        if ready.wait(timeout: .now() + timeout) == .timedOut || !log.text.contains(marker) || !process.isRunning {
            if process.isRunning { process.terminate() }
            throw TestFailure("\(executable) did not become ready: \(log.text.suffix(2000))")
        }
    }

    /// Starts a server on a free port, trying again on another port when the one picked was
    /// taken between `freePort()` and the server's bind (busy machines, many ssh clients).
    static func onFreePort<T>(attempts: Int = 4, _ start: (Int) throws -> T) throws -> (port: Int, value: T) {
        var lastError: Error = TestFailure("no attempt")
        for _ in 0..<attempts {
            let port = try freePort()
            do {
                return (port, try start(port))
            } catch {
                lastError = error
            }
        }
        throw lastError
    }

    var output: String { log.text }

    func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, stopSignal)
        process.waitUntilExit()
    }

    deinit { stop() }
}

/// A server's output so far (its end), shared with the thread draining it.
final class LogBuffer: @unchecked Sendable {
    private let lock = NSLock()
    private var buffer = ""

    /// Appends, and tells whether the output now holds `marker`.
    func append(_ text: String, contains marker: String) -> Bool {
        lock.withLock {
            buffer += text
            if buffer.count > 200_000 { buffer = String(buffer.suffix(100_000)) }
            return buffer.contains(marker)
        }
    }

    var text: String { lock.withLock { buffer } }
}

/// A free TCP port on 127.0.0.1 (bound and released; the server binds it right after).
func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestFailure("socket failed") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
    }
    guard bound else { throw TestFailure("bind failed") }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// MariaDB on 127.0.0.1 with a database and a password-protected user.
final class MariaDBServer {
    let directory: TemporaryDirectory
    let port: Int
    let server: ServerProcess
    let database = "shop"
    let user = "shop"
    let password = "pw-Zq7#x!v3"
    var socket: String { directory.file("mysqld.sock") }
    var address: String { "127.0.0.1:\(port)" }

    init() throws {
        directory = try TemporaryDirectory("ship-mariadb")
        let install = try run("mariadb-install-db", ["--no-defaults", "--datadir=" + directory.file("data"), "--user=root",
                                                     "--auth-root-authentication-method=socket", "--skip-test-db"])
        guard install.status == 0 else { throw TestFailure("mariadb-install-db failed: \(install.stderr)") }
        let directory = self.directory
        (port, server) = try ServerProcess.onFreePort { port in
            try ServerProcess("/usr/sbin/mariadbd", [
                "--no-defaults", "--datadir=" + directory.file("data"), "--socket=" + directory.file("mysqld.sock"),
                "--port=\(port)", "--bind-address=127.0.0.1", "--user=root", "--pid-file=" + directory.file("mysqld.pid"),
                "--innodb-buffer-pool-size=32M", "--skip-name-resolve",
            ], readyWhen: "ready for connections")
        }
        try root("""
            CREATE DATABASE \(database);
            CREATE USER '\(user)'@'%' IDENTIFIED BY '\(password)';
            GRANT ALL ON \(database).* TO '\(user)'@'%';
            GRANT ALL ON `ship\\_verify\\_%`.* TO '\(user)'@'%';
            """)
    }

    /// Runs SQL as root over the socket; returns tab-separated rows.
    @discardableResult
    func root(_ sql: String, database: String? = nil) throws -> String {
        let result = try run("mariadb", ["--no-defaults", "--socket=" + socket, "-uroot", "--batch", "--skip-column-names"]
                                 + (database.map { [$0] } ?? []), input: sql)
        guard result.status == 0 else { throw TestFailure("SQL failed: \(result.stderr)\n\(sql)") }
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Runs SQL as the application's user over TCP (objects it creates have it as DEFINER).
    @discardableResult
    func sql(_ text: String) throws -> String {
        let result = try run("mariadb", ["--no-defaults", "--host=127.0.0.1", "--port=\(port)", "--user=" + user, "--batch",
                                         "--skip-column-names", database],
                             environment: ["MYSQL_PWD": password], input: text)
        guard result.status == 0 else { throw TestFailure("SQL failed: \(result.stderr)\n\(text)") }
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// CHECKSUM TABLE of every table, as one comparable string.
    func checksums(_ tables: [String]) throws -> String {
        try sql("CHECKSUM TABLE \(tables.joined(separator: ", ")) EXTENDED;")
    }
}

/// PostgreSQL on 127.0.0.1, run as the `postgres` system user (it refuses root).
final class PostgresServer {
    let directory: TemporaryDirectory
    let port: Int
    let server: ServerProcess
    let user = "postgres"
    let database = "shop"
    let password = "pg-Secret'with spaces"
    var address: String { "127.0.0.1:\(port)" }
    static let binaries = "/usr/lib/postgresql/15/bin"

    init() throws {
        directory = try TemporaryDirectory("ship-postgres")
        try directory.write("password", password + "\n")
        _ = try run("chown", ["-R", "postgres:postgres", directory.path])
        _ = try run("chmod", ["0755", directory.path])
        let initdb = try run("runuser", ["-u", "postgres", "--", Self.binaries + "/initdb", "-D", directory.file("data"), "-U", user,
                                         "--auth=scram-sha-256", "--pwfile=" + directory.file("password"), "-E", "UTF8", "--no-sync"])
        guard initdb.status == 0 else { throw TestFailure("initdb failed: \(initdb.stderr)") }
        let directory = self.directory
        (port, server) = try ServerProcess.onFreePort { port in
            try ServerProcess("/usr/sbin/runuser", [
                "-u", "postgres", "--", Self.binaries + "/postgres", "-D", directory.file("data"), "-k", directory.path,
                "-p", String(port), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "log_destination=stderr",
            ], readyWhen: "ready to accept connections")
        }
        try psql("CREATE DATABASE \(database);", database: "postgres")
    }

    @discardableResult
    func psql(_ sql: String, database: String? = nil) throws -> String {
        let result = try run("psql", ["-h", "127.0.0.1", "-p", String(port), "-U", user, "-d", database ?? self.database,
                                      "-tAq", "-v", "ON_ERROR_STOP=1"],
                             environment: ["PGPASSWORD": password], input: sql)
        guard result.status == 0 else { throw TestFailure("psql failed: \(result.stderr)\n\(sql)") }
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// moto's AWS-compatible server on loopback (S3, EC2, ELBv2, Auto Scaling; installed by scripts/setup.sh --test).
final class MotoServer {
    let port: Int
    let server: ServerProcess
    var endpoint: String { "http://127.0.0.1:\(port)" }
    static var executable: String {
        ProcessInfo.processInfo.environment["SHIP_MOTO_SERVER"] ?? "/opt/ship-test/venv/bin/moto_server"
    }

    init() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.executable) else {
            throw TestFailure("moto_server not found at \(Self.executable): run scripts/setup.sh --test (or set SHIP_MOTO_SERVER)")
        }
        (port, server) = try ServerProcess.onFreePort { port in
            try ServerProcess(Self.executable, ["-H", "127.0.0.1", "-p", String(port)], readyWhen: "Running on",
                              stopSignal: SIGKILL) // werkzeug's server ignores SIGTERM; it holds nothing worth a clean exit
        }
    }
}

extension PostgresServer {
    /// An app directory whose one environment, prod, dumps this database here into ./backups;
    /// `backup` adds keys to its backup section.
    func localApp(backup: String = "") throws -> TemporaryDirectory {
        let directory = try TemporaryDirectory("ship-pg-app")
        try directory.write("ship.yml", """
            app: shop
            deploy_to: /srv/shop
            environments:
              prod:
                hosts: [web1]
                backup:
                  store: backups
                  \(backup)
                  db: { host: local, engine: postgres, name: \(database), user: \(user), address: "\(address)", password_env: PG_PASSWORD }

            """)
        return directory
    }
}
