#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CSpawn
import FoundationEssentials
import Hooks

/// Backups and restores on the host. A dump's stdout is streamed to the controller in frames as
/// it is produced; its stderr goes to a private file and only its end, with the password masked,
/// into a message. A dump counts only if its process exited 0 and its output is complete (the
/// `-- Dump completed` trailer of mysqldump-style dumps, the PGDMP header of pg_dump's custom
/// format); the controller keeps nothing otherwise.
extension Operations {
    /// What runs for one backup or restore.
    struct Invocation {
        var argv: [String]
        var environment: [String: String]
        var directory: String
        /// What the output must end with (mysqldump's completion trailer).
        var trailer: String?
        /// What the output must start with.
        var magic: String?
    }

    func backupDatabase() throws -> AgentResult {
        guard let target = request.database else { throw AgentError("the request names no database") }
        let scratch = try PrivateDirectory()
        defer { scratch.remove() }
        let invocation = try databaseInvocation(target, restore: false, scratch: scratch)
        var result = AgentResult(ok: true)
        result.bytes = try streamOut(invocation, scratch: scratch, secret: target.password, timeout: target.timeout)
        return result
    }

    func restoreDatabase() throws -> AgentResult {
        guard let target = request.database else { throw AgentError("the request names no database") }
        if request.scratchRestore == true { return try restoreTest(target) }
        let scratch = try PrivateDirectory()
        defer { scratch.remove() }
        let invocation = try databaseInvocation(target, restore: true, scratch: scratch)
        var result = AgentResult(ok: true)
        result.bytes = try streamIn(invocation, scratch: scratch, secret: target.password)
        return result
    }

    func backupAssets() throws -> AgentResult {
        let directories = try assetDirectories()
        for directory in directories {
            var info = stat()
            let path = layout.deployTo + "/" + directory
            guard lstat(path, &info) == 0 else { throw AgentError("\(path) does not exist: nothing to back up") }
            guard (info.st_mode & S_IFMT) == S_IFDIR else {
                throw AgentError("\(path) is not a directory (a symlink?): configure the directory that holds the files")
            }
        }
        let scratch = try PrivateDirectory()
        defer { scratch.remove() }
        let invocation = Invocation(
            argv: ["tar", "--create", "--file=-", "--directory=" + layout.deployTo, "--numeric-owner", "--"] + directories,
            environment: ProcessInfo.processInfo.environment, directory: layout.deployTo)
        var result = AgentResult(ok: true)
        result.bytes = try streamOut(invocation, scratch: scratch, secret: nil, timeout: request.timeout, setting: "backup.assets.timeout")
        return result
    }

    /// Extracts each directory beside its target under a temporary name (same file system, so
    /// the swap is a rename), then swaps it in; the replaced directory is removed last.
    func restoreAssets() throws -> AgentResult {
        let directories = try assetDirectories()
        let token = String(UInt32.random(in: 0...UInt32.max), radix: 16)
        var staged: [(target: String, staging: String)] = []
        var transforms: [String] = []
        for directory in directories {
            let slash = directory.lastIndex(of: "/")
            let parent = slash.map { String(directory[..<$0]) }
            let base = slash.map { String(directory[directory.index(after: $0)...]) } ?? directory
            let stagingName = (parent.map { $0 + "/" } ?? "") + ".\(base).ship-restore-\(token)"
            try files.createDirectory(atPath: layout.deployTo + "/" + (parent ?? ""), withIntermediateDirectories: true)
            staged.append((layout.deployTo + "/" + directory, layout.deployTo + "/" + stagingName))
            // Member names of this directory land under the staging name; symlink targets are kept.
            transforms.append("--transform=s,^\(Self.regexQuoted(directory))\\($\\|/\\),\(Self.replacementQuoted(stagingName))\\1,S")
        }
        let scratch = try PrivateDirectory()
        defer { scratch.remove() }
        let invocation = Invocation(
            argv: ["tar", "--extract", "--file=-", "--directory=" + layout.deployTo, "--numeric-owner"] + transforms + ["--"] + directories,
            environment: ProcessInfo.processInfo.environment, directory: layout.deployTo)
        var result = AgentResult(ok: true)
        do {
            result.bytes = try streamIn(invocation, scratch: scratch, secret: nil)
            for (target, staging) in staged where !files.fileExists(atPath: staging) {
                throw AgentError("the backup holds no \(target.dropFirst(layout.deployTo.count + 1))")
            }
        } catch {
            for (_, staging) in staged { _ = Helper.run(["rm", "-rf", "--", staging]) }
            throw error
        }
        var replaced: [String] = []
        for (target, staging) in staged {
            let old = staging.replacing(".ship-restore-", with: ".ship-replaced-")
            if files.fileExists(atPath: target) || (try? files.destinationOfSymbolicLink(atPath: target)) != nil {
                guard rename(target, old) == 0 else {
                    throw AgentError("cannot move \(target) aside: \(String(cString: strerror(errno)))")
                }
                replaced.append(old)
            }
            guard rename(staging, target) == 0 else {
                let reason = String(cString: strerror(errno))
                if replaced.last == old { rename(old, target) }
                throw AgentError("cannot move the restored \(target) into place: \(reason)")
            }
        }
        for old in replaced { _ = Helper.run(["rm", "-rf", "--", old]) }
        return result
    }

    func assetDirectories() throws -> [String] {
        guard let directories = request.assetDirectories, !directories.isEmpty else {
            throw AgentError("the request names no asset directories")
        }
        for directory in directories {
            let parts = directory.split(separator: "/", omittingEmptySubsequences: false)
            guard !directory.hasPrefix("/"), !parts.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) else {
                throw AgentError("not a directory under deploy_to: \(directory)")
            }
        }
        return directories
    }

    // MARK: - Database clients

    func databaseInvocation(_ target: DatabaseTarget, restore: Bool, scratch: PrivateDirectory) throws -> Invocation {
        var environment = ProcessInfo.processInfo.environment
        let directory = layout.currentRelease().map { layout.release($0) }.flatMap { files.fileExists(atPath: $0) ? $0 : nil }
            ?? (files.fileExists(atPath: layout.deployTo) ? layout.deployTo : "/")
        switch target.engine {
        case "mysql":
            guard let name = target.name, !name.hasPrefix("-") else { throw AgentError("not a database name: \(target.name ?? "")") }
            let programs = restore ? ["mariadb", "mysql"] : ["mariadb-dump", "mysqldump"]
            guard let program = Child.findOnPath(programs) else {
                throw AgentError("neither \(programs.joined(separator: " nor ")) is installed on \(Self.hostname())"
                                 + " (Debian: apt install mariadb-client)")
            }
            let options = try scratch.write("client.cnf", Self.mysqlOptionFile(target))
            if restore {
                return Invocation(argv: [program, "--defaults-extra-file=" + options, "--binary-mode", "--batch",
                                         "--default-character-set=utf8mb4", "--database=" + name],
                                  environment: environment, directory: directory)
            }
            return Invocation(argv: [program, "--defaults-extra-file=" + options, "--single-transaction", "--routines",
                                     "--triggers", "--events", "--hex-blob", "--default-character-set=utf8mb4", name],
                              environment: environment, directory: directory, trailer: DumpEnds.mysqlTrailer)
        case "postgres":
            guard let name = target.name, !name.hasPrefix("-") else { throw AgentError("not a database name: \(target.name ?? "")") }
            let program = restore ? "pg_restore" : "pg_dump"
            guard Child.findOnPath([program]) != nil else {
                throw AgentError("\(program) is not installed on \(Self.hostname()) (Debian: apt install postgresql-client)")
            }
            environment.merge(Self.postgresEnvironment(target)) { $1 }
            if restore {
                return Invocation(argv: [program, "--no-password", "--clean", "--if-exists", "--no-owner", "--single-transaction",
                                         "--exit-on-error", "--dbname=" + name],
                                  environment: environment, directory: directory)
            }
            return Invocation(argv: [program, "--format=custom", "--no-password"], environment: environment,
                              directory: directory, magic: DumpEnds.postgresMagic)
        case "command":
            guard let command = restore ? target.restoreCommand : target.dumpCommand else {
                throw AgentError("no \(restore ? "restore_command" : "dump_command") configured")
            }
            if let name = target.name { environment["SHIP_DB_NAME"] = name }
            if let user = target.user { environment["SHIP_DB_USER"] = user }
            if let address = target.address { environment["SHIP_DB_ADDRESS"] = address }
            if let password = target.password {
                environment["SHIP_DB_PASSWORD"] = password
                if let variable = target.passwordEnv { environment[variable] = password }
            }
            return Invocation(argv: ["/bin/sh", "-c", command], environment: environment, directory: directory)
        default:
            throw AgentError("unknown database engine \(target.engine)")
        }
    }

    /// A MySQL option file: connection settings and the password, so none is on the command line.
    static func mysqlOptionFile(_ target: DatabaseTarget) -> String {
        func quoted(_ value: String) -> String {
            var text = ""
            for character in value {
                switch character {
                case "\\": text += "\\\\"
                case "\n": text += "\\n"
                case "\r": text += "\\r"
                case "\t": text += "\\t"
                default: text.append(character)
                }
            }
            return text.contains("\"") ? "'" + text + "'" : "\"" + text + "\""
        }
        var lines = ["[client]"]
        if let user = target.user { lines.append("user=" + quoted(user)) }
        if let password = target.password { lines.append("password=" + quoted(password)) }
        if let address = target.address {
            if address.hasPrefix("/") {
                lines.append("socket=" + quoted(address))
            } else if let colon = address.lastIndex(of: ":") {
                lines.append("host=" + quoted(String(address[..<colon])))
                lines.append("port=" + address[address.index(after: colon)...])
                lines.append("protocol=tcp")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static func postgresEnvironment(_ target: DatabaseTarget) -> [String: String] {
        var environment = ["PGCONNECT_TIMEOUT": "15"]
        if let name = target.name { environment["PGDATABASE"] = name }
        if let user = target.user { environment["PGUSER"] = user }
        if let password = target.password { environment["PGPASSWORD"] = password }
        if let address = target.address {
            if address.hasPrefix("/") {
                // A socket directory, or the socket itself: /run/postgresql/.s.PGSQL.5432
                let slash = address.lastIndex(of: "/")!
                let base = address[address.index(after: slash)...]
                if base.hasPrefix(".s.PGSQL.") {
                    environment["PGHOST"] = slash == address.startIndex ? "/" : String(address[..<slash])
                    environment["PGPORT"] = String(base.dropFirst(".s.PGSQL.".count))
                } else {
                    environment["PGHOST"] = address
                }
            } else if let colon = address.lastIndex(of: ":") {
                environment["PGHOST"] = String(address[..<colon])
                environment["PGPORT"] = String(address[address.index(after: colon)...])
            }
        }
        return environment
    }

    /// A literal for GNU tar's --transform regular expression (basic syntax, `,` delimited).
    static func regexQuoted(_ text: String) -> String {
        var quoted = ""
        for character in text {
            if "\\.*[]^$,".contains(character) { quoted += "\\" }
            quoted.append(character)
        }
        return quoted
    }

    static func replacementQuoted(_ text: String) -> String {
        var quoted = ""
        for character in text {
            if "\\&,".contains(character) { quoted += "\\" }
            quoted.append(character)
        }
        return quoted
    }

    // MARK: - Streams

    /// Runs the program with its stdout sent to the controller as data frames; returns the byte count.
    /// With `timeout`, a program still running after that many seconds (a dump blocked on a
    /// table lock) is stopped with its whole process group, and nothing counts as a backup.
    func streamOut(_ invocation: Invocation, scratch: PrivateDirectory, secret: String?, timeout: Int? = nil,
                   setting: String = "backup.db.timeout") throws -> Int64 {
        var pipeFDs: [Int32] = [-1, -1]
        guard ship_pipe_cloexec(&pipeFDs) == 0 else { throw AgentError("pipe: \(String(cString: strerror(errno)))") }
        let null = open("/dev/null", O_RDONLY | O_CLOEXEC)
        let errors = try scratch.openCapture("stderr")
        let child: Child
        do {
            child = try Child.start(invocation.argv, environment: invocation.environment, directory: invocation.directory,
                                    stdin: null, stdout: pipeFDs[1], stderr: errors, newProcessGroup: true)
        } catch {
            close(pipeFDs[0]); close(pipeFDs[1]); close(null); close(errors)
            throw error
        }
        close(pipeFDs[1]); close(null); close(errors)

        var ends = DumpEnds()
        var controllerGone = false
        var timedOut = false
        let deadline = timeout.map { HookRunner.monotonicSeconds() + Double($0) }
        let readOK = POSIXIO.readToEnd(pipeFDs[0], chunkSize: 256 << 10, deadline: deadline, onTimeout: {
            timedOut = true
            child.killGroup()
        }) { chunk in
            guard !controllerGone else { return }
            ends.add(chunk)
            if !(POSIXIO.writeAll(1, Frame.header(tag: Frame.data, length: chunk.count)) && POSIXIO.writeAll(1, chunk)) {
                controllerGone = true
                child.terminate()
            }
        }
        close(pipeFDs[0])
        let status = child.wait()
        let program = invocation.argv[0] == "/bin/sh" ? "the dump command" : invocation.argv[0]
        guard !controllerGone else { throw AgentError("the controller went away; \(program) was stopped") }
        if timedOut, let timeout {
            throw AgentError("\(program) was still running after \(timeout)s (\(setting)) and was stopped; nothing was stored")
        }
        guard readOK else { throw AgentError("reading the output of \(program) failed: \(String(cString: strerror(errno)))") }
        guard status == 0 else {
            let said = scratch.tail("stderr", hiding: secret)
            throw AgentError("\(program) \(status > 128 ? "was killed by signal \(status - 128)" : "exited \(status)")"
                             + (said.isEmpty ? "" : ": " + said))
        }
        guard ends.total > 0 else { throw AgentError("\(program) wrote nothing") }
        if let problem = ends.problem(magic: invocation.magic, trailer: invocation.trailer) {
            throw AgentError("\(program) wrote no whole dump: \(problem)")
        }
        return ends.total
    }

    /// Feeds the data frames on stdin to the program; it must see the end frame and exit 0.
    func streamIn(_ invocation: Invocation, scratch: PrivateDirectory, secret: String?) throws -> Int64 {
        var pipeFDs: [Int32] = [-1, -1]
        guard ship_pipe_cloexec(&pipeFDs) == 0 else { throw AgentError("pipe: \(String(cString: strerror(errno)))") }
        let output = try scratch.openCapture("output")
        let child: Child
        do {
            child = try Child.start(invocation.argv, environment: invocation.environment, directory: invocation.directory,
                                    stdin: pipeFDs[0], stdout: output, stderr: output)
        } catch {
            close(pipeFDs[0]); close(pipeFDs[1]); close(output)
            throw error
        }
        close(pipeFDs[0]); close(output)

        var decoder = Frame.Decoder()
        var total: Int64 = 0
        var ended = false
        var childGone = false
        var malformed: String?
        let readOK = POSIXIO.readToEnd(0, chunkSize: 256 << 10) { chunk in
            guard !ended, !childGone, malformed == nil else { return }
            do {
                try decoder.feed(chunk) { tag, payload in
                    if tag == Frame.end { ended = true }
                    guard tag == Frame.data, !ended, !childGone else { return }
                    total += Int64(payload.count)
                    if !POSIXIO.writeAll(pipeFDs[1], payload) { childGone = true }
                }
            } catch {
                malformed = "\(error)"
            }
        }
        let program = invocation.argv[0] == "/bin/sh" ? "the restore command" : invocation.argv[0]
        if !ended && !childGone {
            // The stream stopped early: the program must not take a partial input for a whole one.
            child.terminate()
        }
        close(pipeFDs[1])
        let status = child.wait()
        let said = scratch.tail("output", hiding: secret)
        if let malformed { throw AgentError("the restore stream is malformed (\(malformed)); \(program) was stopped") }
        guard ended || childGone else {
            throw AgentError("the restore stream was cut short\(readOK ? "" : " (\(String(cString: strerror(errno))))"); \(program) was stopped")
        }
        guard status == 0 else {
            throw AgentError("\(program) \(status > 128 ? "was killed by signal \(status - 128)" : "exited \(status)")"
                             + (said.isEmpty ? "" : ": " + said))
        }
        return total
    }
}
