import ArgumentParser
import Foundation
import Hooks
import Shipper

struct BackupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Take, list and verify database and asset backups (see docs/backups.md).",
        subcommands: [Database.self, Assets.self, List.self, Verify.self]
    )

    struct Database: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "db",
            abstract: "Dump the environment's database into the backup store.",
            discussion: "The dump runs on backup.db.host through ship-agent (or here, for `local`) and streams back, compressed and hashed on the way; a failed or incomplete dump stores nothing."
        )
        @Argument(help: "The environment (default: default_environment, or the only one).")
        var environment: String?
        @OptionGroup var output: OutputOptions
        @OptionGroup var options: ConfigOptions

        func run() async throws {
            try await BackupCommand.take(.db, environment: environment, options: options, json: output.json)
        }
    }

    struct Assets: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Archive the environment's asset directories (backup.assets.dirs) into the backup store."
        )
        @Argument(help: "The environment (default: default_environment, or the only one).")
        var environment: String?
        @OptionGroup var output: OutputOptions
        @OptionGroup var options: ConfigOptions

        func run() async throws {
            try await BackupCommand.take(.assets, environment: environment, options: options, json: output.json)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the backups in the environment's store, newest first.")
        @Argument(help: "The environment (default: default_environment, or the only one).")
        var environment: String?
        @OptionGroup var output: OutputOptions
        @OptionGroup var options: ConfigOptions

        func run() async throws {
            let config = try options.load()
            let env = try config.environment(named: environment)
            let store = try Backups.store(config: config, environment: env)
            let manifests = try await store.list()
            if output.json {
                for manifest in manifests { JSONLine.print(BackupCommand.object(manifest, event: "backup")) }
                return
            }
            guard !manifests.isEmpty else {
                print("no backups in \(store.location)")
                return
            }
            let rows = [["ID", "KIND", "SIZE", "SHA-256", "CREATED", "HOST", "REVISION", "NOTES"]] + manifests.map {
                [$0.id, $0.kind.rawValue + ($0.engine.map { " (\($0))" } ?? ""), ByteCount.format($0.bytes), String($0.sha256.prefix(12)),
                 $0.created, $0.host, $0.revision.map { String($0.prefix(12)) } ?? "-", BackupCommand.notes($0).joined(separator: ", ")]
            }
            let widths = (0..<rows[0].count).map { column in rows.map { $0[column].count }.max() ?? 0 }
            for row in rows {
                print(zip(row, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
                    .trimmingCharacters(in: .whitespaces))
            }
            if manifests.contains(where: \.unscoped) {
                print("\nunscoped: taken before backups were stored per app and environment (in \(store.location)/..);"
                      + " listed for every environment, never removed by retention; remove them by hand when no longer needed")
            }
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check that backups restore: SHA-256, then the whole stream decrypted and decompressed.",
            discussion: "With --restore-test, a database dump (mysql, postgres) is also loaded into a scratch database on the same server, whose tables are counted; the scratch database is dropped afterwards, even on failure. Exit 0 only when every backup checked passed."
        )
        @Argument(help: ArgumentHelp("[ENV] ID: the environment (optional) and the backup's id; or [ENV] with --all.", valueName: "ENV ID"))
        var arguments: [String] = []
        @Flag(help: "Verify every backup of the environment.")
        var all = false
        @Flag(help: "Load database dumps into a scratch database on their server, count tables and rows, drop it.")
        var restoreTest = false
        @Option(help: ArgumentHelp("Verify a backup of another environment (its id from `ship backup list ENV`).", valueName: "ENV"))
        var from: String?
        @OptionGroup var output: OutputOptions
        @OptionGroup var options: ConfigOptions

        func run() async throws {
            let expected = all ? 0...1 : 1...2
            guard expected.contains(arguments.count) else {
                throw ShipError.usage(all ? "--all takes no backup id" : "expected [ENV] ID, or [ENV] --all",
                                      hint: "ship backup verify [ENV] ID [--restore-test]; ship backup verify [ENV] --all")
            }
            let environmentName = all ? arguments.first : (arguments.count == 2 ? arguments[0] : nil)
            let (config, env, agents, connections) = try await options.hostSession(environment: environmentName)
            let backups = try Backups(config: config, environment: env, agents: agents) { connections.transport(for: $0) }
            // A configured key that is missing is a configuration error (exit 2), not a failed backup.
            _ = try backups.sealingKey()
            var targets: [(BackupManifest, any BackupStore)] = []
            if all {
                let source = try from.map { name throws(ShipError) in try backups.store(of: name) } ?? backups.store
                targets = try await source.list().map { ($0, source) }
            } else {
                targets = [try await backups.manifest(id: arguments.last!, from: from)]
            }
            var failed = 0
            for (manifest, source) in targets {
                do {
                    let report = try await backups.verify(manifest, from: source, restoreTest: restoreTest)
                    if output.json {
                        var object = BackupCommand.object(report.manifest, event: "backup_verified")
                        object["status"] = "succeeded"
                        object["checks"] = report.checks
                        JSONLine.print(object)
                    } else {
                        print("\(manifest.id): ok")
                        for check in report.checks { print("  " + check) }
                    }
                } catch {
                    failed += 1
                    if output.json {
                        var object = BackupCommand.object(manifest, event: "backup_verified")
                        object["status"] = "failed"
                        object["message"] = "\(error)"
                        JSONLine.print(object)
                    } else {
                        print("\(manifest.id): FAILED: \(error)")
                    }
                }
            }
            await connections.closeAll()
            if targets.isEmpty && !output.json { print("no backups in \(backups.store.location)") }
            if failed > 0 {
                throw ShipError("\(failed) of \(targets.count) backup\(targets.count == 1 ? "" : "s") failed verification")
            }
        }
    }

    /// What the listing says of a backup besides its fields.
    static func notes(_ manifest: BackupManifest) -> [String] {
        var notes: [String] = []
        if manifest.unscoped { notes.append("unscoped") }
        if let key = manifest.encryptedWith { notes.append("encrypted (key \(key))") }
        if let purpose = manifest.purpose { notes.append(purpose.replacingOccurrences(of: "_", with: " ")) }
        if let verified = manifest.verified {
            notes.append((manifest.restoreTested == true ? "restore-tested " : "verified ") + String(verified.prefix(10)))
        }
        return notes
    }

    static func take(_ kind: BackupKind, environment: String?, options: ConfigOptions, json: Bool) async throws {
        let (config, env, agents, connections) = try await options.hostSession(environment: environment)
        do {
            try await take(kind, config: config, environment: env, agents: agents, connections: connections, json: json)
        } catch {
            // A backup from cron that did not happen: whoever listens hears of it, whatever stopped it.
            let notifier = Notifier(config: config, environment: env, reporter: json ? JSONLinesReporter() : PlainReporter())
            notifier.backupFailed(kind: kind.rawValue, message: "\(error)")
            await notifier.flush()
            throw error
        }
    }

    static func take(_ kind: BackupKind, config: ShipConfig, environment env: Shipper.Environment, agents: AgentCatalog,
                     connections: SSHConnections, json: Bool) async throws {
        let backups = try Backups(config: config, environment: env, agents: agents) { connections.transport(for: $0) }
        let signals = InterruptCleanup.install("nothing was stored")
        defer { _ = signals }
        let started = Date()
        if !json {
            let what = kind == .db ? backups.settings.db.map { "database \($0.name ?? "") (\($0.engine.rawValue))" } ?? "database"
                : "assets"
            FileHandle.standardError.writeQuietly(Data("backing up \(what) of \(env.name) into \(backups.store.location)\n".utf8))
        }
        let manifest: BackupManifest
        do {
            switch kind {
            case .db: manifest = try await backups.backupDatabase()
            case .assets: manifest = try await backups.backupAssets()
            }
        } catch {
            await connections.closeAll()
            if json {
                JSONLine.print(["event": "backup_finished", "time": Event.timestamp(Date()), "status": "failed",
                                "kind": kind.rawValue, "message": "\(error)"])
            }
            throw error
        }
        await connections.closeAll()
        if json {
            var object = object(manifest, event: "backup_finished")
            object["status"] = "succeeded"
            JSONLine.print(object)
        } else {
            print("\(manifest.id)  \(ByteCount.format(manifest.bytes))  sha256 \(manifest.sha256)")
            print(String(format: "stored in %@ in %.1f s; restore with: ship restore %@ %@ %@ --yes",
                         backups.store.location, Date().timeIntervalSince(started), kind.rawValue, env.name, manifest.id))
        }
    }

    static func object(_ manifest: BackupManifest, event: String) -> [String: Any] {
        var object: [String: Any] = ["event": event, "time": Event.timestamp(Date()), "id": manifest.id,
                                     "kind": manifest.kind.rawValue, "bytes": manifest.bytes, "sha256": manifest.sha256,
                                     "created": manifest.created, "host": manifest.host]
        if let engine = manifest.engine { object["engine"] = engine }
        if let revision = manifest.revision { object["revision"] = revision }
        if let environment = manifest.environment { object["environment"] = environment } else { object["unscoped"] = true }
        if let key = manifest.encryptedWith { object["encrypted_with"] = key }
        if let purpose = manifest.purpose { object["purpose"] = purpose }
        if let verified = manifest.verified { object["verified"] = verified }
        if let tested = manifest.restoreTested { object["restore_tested"] = tested }
        return object
    }
}

struct RestoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Restore a database or assets backup (checks its SHA-256 first).",
        subcommands: [Database.self, Assets.self]
    )

    struct Database: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "db",
            abstract: "Load a database backup into the environment's database, replacing the tables it holds."
        )
        @Argument(help: ArgumentHelp("[ENV] ID: the environment (optional) and the backup's id from `ship backup list`.", valueName: "ENV ID"))
        var arguments: [String] = []
        @Flag(help: "Restore without asking (required when stdin is not a terminal).")
        var yes = false
        @Option(help: ArgumentHelp("Load a backup of another environment (e.g. prod's into staging), on purpose.", valueName: "ENV"))
        var from: String?
        @Flag(help: "Do not back up the database before overwriting it.")
        var noSafetyBackup = false
        @OptionGroup var output: OutputOptions
        @OptionGroup var options: ConfigOptions

        func run() async throws {
            try await RestoreCommand.restore(.db, arguments: arguments, yes: yes, from: from, safetyBackup: !noSafetyBackup,
                                             options: options, json: output.json)
        }
    }

    struct Assets: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Replace the environment's asset directories with those of a backup."
        )
        @Argument(help: ArgumentHelp("[ENV] ID: the environment (optional) and the backup's id from `ship backup list`.", valueName: "ENV ID"))
        var arguments: [String] = []
        @Flag(help: "Restore without asking (required when stdin is not a terminal).")
        var yes = false
        @Option(help: ArgumentHelp("Restore a backup of another environment, on purpose.", valueName: "ENV"))
        var from: String?
        @OptionGroup var output: OutputOptions
        @OptionGroup var options: ConfigOptions

        func run() async throws {
            try await RestoreCommand.restore(.assets, arguments: arguments, yes: yes, from: from, safetyBackup: false,
                                             options: options, json: output.json)
        }
    }

    static func restore(_ kind: BackupKind, arguments: [String], yes: Bool, from: String?, safetyBackup: Bool,
                        options: ConfigOptions, json: Bool) async throws {
        guard (1...2).contains(arguments.count) else {
            throw ShipError.usage("expected [ENV] ID, got \(arguments.count) argument\(arguments.count == 1 ? "" : "s")",
                                  hint: "ship restore \(kind.rawValue) [ENV] ID --yes; `ship backup list` shows the ids")
        }
        let id = arguments.last!
        let (config, env, agents, connections) = try await options.hostSession(environment: arguments.count == 2 ? arguments[0] : nil)
        let backups = try Backups(config: config, environment: env, agents: agents) { connections.transport(for: $0) }
        let (manifest, source) = try await backups.manifest(id: id, from: from)
        // A missing or wrong key, another kind or engine, a missing password: refused before anything happens.
        try backups.checkRestorable(kind: kind, manifest)
        let target = kind == .db
            ? backups.settings.db.map { "database \($0.name ?? "") on \($0.site)" } ?? "the database"
            : backups.settings.assets.map { "\($0.dirs.joined(separator: ", ")) on \($0.site)" } ?? "the assets"
        if !yes {
            guard isatty(STDIN_FILENO) == 1 else {
                throw ShipError.usage("restoring replaces \(target); refusing without --yes when stdin is not a terminal",
                                      hint: "ship restore \(kind.rawValue) \(env.name) \(id) --yes")
            }
            FileHandle.standardError.writeQuietly(Data("Restore \(id) (\(manifest.created), revision \(manifest.revision ?? "unknown")) into \(target) of \(env.name)? This replaces what is there now. Type yes to go on: ".utf8))
            guard readLine()?.trimmingCharacters(in: .whitespaces).lowercased() == "yes" else {
                throw ShipError.usage("not restored")
            }
        }
        let signals = InterruptCleanup.install("the host stops the restore program when its input is cut short")
        defer { _ = signals }
        let started = Date()
        var safety: BackupManifest?
        do {
            if safetyBackup {
                if !json { FileHandle.standardError.writeQuietly(Data("backing up what the restore replaces first (--no-safety-backup skips it)\n".utf8)) }
                safety = try await backups.backupDatabase(purpose: "before_restore")
                if let safety {
                    if json {
                        var object = BackupCommand.object(safety, event: "backup_finished")
                        object["status"] = "succeeded"
                        JSONLine.print(object)
                    } else {
                        print("safety backup \(safety.id) taken (\(ByteCount.format(safety.bytes))); to undo this restore: ship restore db \(env.name) \(safety.id) --yes")
                    }
                }
            }
            try await backups.restore(kind: kind, manifest, from: source)
        } catch {
            await connections.closeAll()
            if json {
                JSONLine.print(["event": "restore_finished", "time": Event.timestamp(Date()), "status": "failed", "id": id,
                                "kind": kind.rawValue, "message": "\(error)"])
            }
            throw error
        }
        await connections.closeAll()
        if json {
            var object = BackupCommand.object(manifest, event: "restore_finished")
            object["status"] = "succeeded"
            JSONLine.print(object)
        } else {
            print(String(format: "restored %@ into %@ of %@ in %.1f s", id, target, env.name, Date().timeIntervalSince(started)))
        }
    }
}

/// Ctrl-C during a backup or restore: remove partial files, then exit 130 (the agent stops the
/// dump when its output goes away).
enum InterruptCleanup {
    static func install(_ message: String) -> [any DispatchSourceSignal] {
        [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                ScratchFiles.removeAll()
                FileHandle.standardError.writeQuietly(Data("\nship: interrupted; \(message)\n".utf8))
                Foundation.exit(ShipError.ExitCode.interrupted.rawValue)
            }
            source.resume()
            return source
        }
    }
}

enum JSONLine {
    static func print(_ object: [String: Any]) {
        guard var data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else { return }
        data.append(0x0A)
        FileHandle.standardOutput.writeQuietly(data)
    }
}
