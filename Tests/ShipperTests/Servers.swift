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

/// A loopback stand-in for AWS's edges, in front of moto: the EC2 instance metadata service
/// (IMDSv2: a token first, then the instance id, region and the role `shop-web`'s credentials)
/// and a SigV4-checking front. Every signed request is checked with botocore (moto checks no
/// signature) and recorded as a JSON line: service, action parameters, whether its signature is
/// the one botocore computes for the key's secret, and the session token it carried. Checked
/// requests go on to moto, but for `CompleteLifecycleAction`, which moto lacks: answered here.
final class AWSFront {
    static let script = """
        import json, re, sys, http.server, urllib.request, urllib.error, urllib.parse
        from botocore.auth import SigV4Auth, S3SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials
        port, upstream, record, instance = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
        KEY, SECRET, SESSION, IMDS_TOKEN = "ASIAROLEKEY", "role-secret-key", "role-session-token", "imds-token-7"
        # The instance role's keys, and the controller's (no session token).
        KEYS = {KEY: (SECRET, SESSION), "testing": ("testing-secret", None), "test": ("test", None)}
        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args): pass
            def reply(self, status, body=b"", headers={}):
                self.send_response(status)
                for k, v in headers.items(): self.send_header(k, v)
                if "Content-Length" not in headers: self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD": self.wfile.write(body)
            def handle_any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if self.path == "/latest/api/token":
                    return self.reply(200 if self.command == "PUT" else 405, IMDS_TOKEN.encode())
                if self.path.startswith("/latest/meta-data/"):
                    if self.headers.get("X-aws-ec2-metadata-token") != IMDS_TOKEN: return self.reply(401)
                    item = self.path[len("/latest/meta-data/"):]
                    answers = {"placement/region": "us-east-1", "instance-id": instance, "iam/security-credentials/": "shop-web",
                               "iam/security-credentials/shop-web": json.dumps({"Code": "Success", "AccessKeyId": KEY, "SecretAccessKey": SECRET,
                                                                                "Token": SESSION, "Expiration": "2099-01-01T00:00:00Z"}, indent=2)}
                    return self.reply(200, answers[item].encode()) if item in answers else self.reply(404)
                auth = self.headers.get("Authorization", "")
                m = re.match(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\\d{8})/([^/]+)/([^/]+)/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$", auth)
                entry = {"method": self.command, "path": self.path, "valid": False, "token": self.headers.get("X-Amz-Security-Token")}
                if m:
                    key, _, region, service, signed, signature = m.groups()
                    entry.update(service=service, region=region, key=key)
                    headers = {h: self.headers[h] for h in signed.split(";")}
                    request = AWSRequest(method=self.command, url="http://%s%s" % (self.headers["Host"], self.path), data=body, headers=headers)
                    request.context["timestamp"] = self.headers["X-Amz-Date"]
                    secret, session = KEYS.get(key, ("", "unknown"))
                    signer = (S3SigV4Auth if service == "s3" else SigV4Auth)(Credentials(key, secret, session), service, region)
                    canonical = signer.canonical_request(request)
                    expected = signer.signature(signer.string_to_sign(request, canonical), request)
                    entry["valid"] = key in KEYS and expected == signature and entry["token"] == session
                    if not entry["valid"]: entry["canonical"] = canonical
                if entry.get("service") != "s3":
                    entry["params"] = dict(urllib.parse.parse_qsl(body.decode()))
                with open(record, "a") as f: f.write(json.dumps(entry) + "\\n")
                if not entry["valid"]:
                    return self.reply(403, b"<ErrorResponse><Error><Code>SignatureDoesNotMatch</Code><Message>signature refused</Message></Error></ErrorResponse>")
                if entry.get("params", {}).get("Action") == "CompleteLifecycleAction":
                    return self.reply(200, b"<CompleteLifecycleActionResponse><CompleteLifecycleActionResult/></CompleteLifecycleActionResponse>")
                passed = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length", "connection", "expect")}
                forwarded = urllib.request.Request(upstream + self.path, data=body or None, method=self.command, headers=passed)
                try:
                    with urllib.request.urlopen(forwarded) as answer: status, data, got = answer.status, answer.read(), answer.headers
                except urllib.error.HTTPError as error:
                    status, data, got = error.code, error.read(), error.headers
                kept = {k: got[k] for k in ("ETag", "Content-Length") if got.get(k) and (k != "Content-Length" or self.command == "HEAD")}
                self.reply(status, data, kept)
            do_GET = do_PUT = do_POST = do_HEAD = handle_any
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        print("ready", flush=True)
        server.serve_forever()
        """

    let port: Int
    let server: ServerProcess
    let record: String
    var url: String { "http://127.0.0.1:\(port)" }

    /// `instance`: the id the metadata service gives.
    init(upstream: String, instance: String, directory: TemporaryDirectory) throws {
        let script = directory.file("aws.py")
        try Self.script.write(toFile: script, atomically: true, encoding: .utf8)
        record = directory.file("requests.jsonl")
        let python = (MotoServer.executable as NSString).deletingLastPathComponent + "/python"
        let record = self.record
        (port, server) = try ServerProcess.onFreePort { port in
            // Like moto's, it keeps nothing worth a clean exit, and SIGTERM does not stop it here.
            try ServerProcess(python, [script, String(port), upstream, record, instance], readyWhen: "ready", stopSignal: SIGKILL)
        }
    }

    var requests: [[String: Any]] {
        let text = (try? String(contentsOfFile: record, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    /// The CompleteLifecycleAction calls' parameters.
    var lifecycle: [[String: String]] {
        requests.compactMap { $0["params"] as? [String: String] }.filter { $0["Action"] == "CompleteLifecycleAction" }
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
