import Foundation

/// The `backup:` section of an environment (CONTRACT.md section 6).
extension ShipConfigDecoder {
    static func decodeBackup(_ node: ConfigNode, directory: String) throws(ShipError) -> BackupConfig {
        let map = try node.mapping(allowed: backupKeys)
        let storeNode = try map.required("store", expected: "a local directory or s3://bucket/prefix")
        let storeText = try storeNode.nonEmptyString(expected: "a local directory or s3://bucket/prefix")
        let store: BackupConfig.Store
        if storeText.hasPrefix("s3://") {
            let (bucket, prefix) = try s3Location(storeNode)
            store = .s3(bucket: bucket, prefix: prefix)
        } else if storeText.contains("://") {
            throw storeNode.error("expected a local directory or s3://bucket/prefix, found \(storeNode.found)")
        } else {
            store = .local(try localPath(storeNode, directory: directory))
        }

        var s3: BackupConfig.S3Settings?
        if let s3Node = map["s3"] {
            let s3Map = try s3Node.mapping(allowed: ["endpoint", "region"])
            s3 = .init(endpoint: try s3Endpoint(s3Map["endpoint"]), region: try s3Region(s3Map["region"]))
        }
        if s3 != nil, case .local = store {
            throw map["s3"]!.error("s3 settings given, but store is a local directory",
                                   hint: "set store: s3://bucket/prefix, or remove the s3 section")
        }

        let keep = try map["keep"]?.int(atLeast: 1) ?? 7
        let keepDaily = try map["keep_daily"]?.int(in: 0...3650, expected: "a number of days from 0 to 3650") ?? 0
        let keepWeekly = try map["keep_weekly"]?.int(in: 0...520, expected: "a number of weeks from 0 to 520") ?? 0
        let keepMonthly = try map["keep_monthly"]?.int(in: 0...1200, expected: "a number of months from 0 to 1200") ?? 0
        let encryption = try map["encryption"].map { node throws(ShipError) in try decodeEncryption(node, directory: directory) }
        let beforeMigrate = try map["before_migrate"]?.bool() ?? false
        let db = try map["db"].map { node throws(ShipError) in try decodeDatabase(node) }
        var assets: BackupConfig.Assets?
        if let assetsNode = map["assets"] {
            let assetsMap = try assetsNode.mapping(allowed: ["host", "dirs", "timeout"])
            let site = try decodeSite(try assetsMap.required("host", expected: "a host, or `local`"))
            let dirsNode = try assetsMap.required("dirs", expected: "a list of directories relative to deploy_to")
            var dirs: [String] = []
            for item in try dirsNode.list(expected: "a list of directories relative to deploy_to") {
                dirs.append(try relativePath(item, under: "deploy_to"))
            }
            guard !dirs.isEmpty else { throw dirsNode.error("expected at least one directory") }
            let timeout = try assetsMap["timeout"]?.int(in: 1...604_800, expected: "an archive timeout in seconds from 1 to 604800")
            assets = .init(site: site, dirs: dirs, timeout: timeout)
        }
        if beforeMigrate && db == nil {
            throw map["before_migrate"]!.error("before_migrate needs a db section to know what to back up",
                                               hint: "add backup.db (engine, name, …) or remove before_migrate")
        }
        return BackupConfig(store: store, keep: keep, s3: s3, beforeMigrate: beforeMigrate, db: db, assets: assets,
                            encryption: encryption, keepDaily: keepDaily, keepWeekly: keepWeekly, keepMonthly: keepMonthly)
    }

    /// `s3://bucket/prefix`: the bucket (a valid S3 name) and the prefix without slashes at its ends.
    static func s3Location(_ node: ConfigNode) throws(ShipError) -> (bucket: String, prefix: String) {
        let text = try node.nonEmptyString(expected: "s3://bucket/prefix")
        guard text.hasPrefix("s3://") else { throw node.error("expected s3://bucket/prefix, found \(node.found)") }
        let parts = text.dropFirst("s3://".count).split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        let bucket = parts.first.map(String.init) ?? ""
        guard bucket.range(of: #"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"#, options: .regularExpression) != nil else {
            throw node.error("expected s3://bucket/prefix with a valid bucket name, found \(node.found)")
        }
        return (bucket, parts.count > 1 ? String(parts[1]).trimmingCharacters(in: CharacterSet(charactersIn: "/")) : "")
    }

    /// An S3-compatible endpoint: an http(s) URL without a trailing slash.
    static func s3Endpoint(_ node: ConfigNode?) throws(ShipError) -> String? {
        guard let node else { return nil }
        let text = try node.nonEmptyString(expected: "an http(s):// URL")
        guard text.hasPrefix("http://") || text.hasPrefix("https://") else {
            throw node.error("expected an http:// or https:// URL, found \(node.found)")
        }
        return text.hasSuffix("/") ? String(text.dropLast()) : text
    }

    static func s3Region(_ node: ConfigNode?) throws(ShipError) -> String {
        try node?.nonEmptyString(expected: "a region name, e.g. us-east-1") ?? "us-east-1"
    }

    /// `artifacts: { store: s3://bucket/prefix, region:, endpoint:, link_lifetime:, host_credentials: }`.
    static func decodeArtifacts(_ node: ConfigNode) throws(ShipError) -> ArtifactsConfig {
        let map = try node.mapping(allowed: ["store", "region", "endpoint", "link_lifetime", "host_credentials"])
        let (bucket, prefix) = try s3Location(try map.required("store", expected: "s3://bucket/prefix"))
        let lifetime = try map["link_lifetime"]?.int(in: 60...43_200, expected: "seconds from 60 to 43200 (12 hours)") ?? 600
        return ArtifactsConfig(bucket: bucket, prefix: prefix, region: try s3Region(map["region"]), endpoint: try s3Endpoint(map["endpoint"]),
                               linkLifetime: lifetime, hostCredentials: try map["host_credentials"]?.bool() ?? false)
    }

    /// `encryption: { key_env: NAME }` or `{ key_file: PATH }`, with `previous:` keys of the same
    /// shape that still open older backups (key rotation).
    static func decodeEncryption(_ node: ConfigNode, directory: String) throws(ShipError) -> BackupConfig.Encryption {
        let map = try node.mapping(allowed: ["key_env", "key_file", "previous"])
        let key = try decodeKeySource(map, node: node, directory: directory)
        var previous: [BackupConfig.KeySource] = []
        if let list = map["previous"] {
            for item in try list.list(expected: "a list of { key_env: NAME } or { key_file: PATH }") {
                previous.append(try decodeKeySource(try item.mapping(allowed: ["key_env", "key_file"]), node: item, directory: directory))
            }
        }
        return .init(key: key, previous: previous)
    }

    static func decodeKeySource(_ map: ConfigMapping, node: ConfigNode, directory: String) throws(ShipError) -> BackupConfig.KeySource {
        switch (map["key_env"], map["key_file"]) {
        case (let envNode?, nil):
            let name = try envNode.nonEmptyString(expected: "the name of an environment variable")
            guard name.range(of: #"^[A-Za-z_][A-Za-z0-9_]*$"#, options: .regularExpression) != nil else {
                throw envNode.error("expected the name of an environment variable holding the key (never the key itself)",
                                    hint: "e.g. key_env: SHOP_BACKUP_KEY, and export SHOP_BACKUP_KEY=$(head -c 32 /dev/urandom | base64)")
            }
            return .environment(name)
        case (nil, let fileNode?):
            return .file(try localPath(fileNode, directory: directory))
        case (nil, nil):
            throw node.error("expected key_env: NAME or key_file: PATH", hint: "the key itself never goes in ship.yml; see docs/backups.md")
        default:
            throw node.error("expected one of key_env and key_file, found both")
        }
    }

    static func decodeSite(_ node: ConfigNode) throws(ShipError) -> BackupConfig.Site {
        let text = try node.nonEmptyString(expected: "a host, or `local`")
        if text == "local" { return .local }
        return .host(try parseHostName(node))
    }

    static func decodeDatabase(_ node: ConfigNode) throws(ShipError) -> BackupConfig.Database {
        let map = try node.mapping(allowed: databaseKeys)
        let site = try decodeSite(try map.required("host", expected: "the host the dump runs on, or `local`"))
        let engineNode = try map.required("engine", expected: "mysql, postgres or command")
        let engine = try engineNode.oneOf(BackupConfig.Engine.self)
        var db = BackupConfig.Database(site: site, engine: engine)
        db.name = try map["name"]?.nonEmptyString(expected: "a database name")
        db.user = try map["user"]?.nonEmptyString(expected: "a database user")
        if let address = map["address"] {
            let text = try address.nonEmptyString(expected: "host:port or a unix socket path")
            if !text.hasPrefix("/") {
                let parts = text.split(separator: ":")
                guard parts.count == 2, !parts[0].isEmpty, let port = Int(parts[1]), (1...65535).contains(port) else {
                    throw address.error("expected host:port or an absolute unix socket path, found \(address.found)")
                }
            }
            db.address = text
        }
        if let passwordEnv = map["password_env"] {
            let name = try passwordEnv.nonEmptyString(expected: "the name of an environment variable")
            guard name.range(of: #"^[A-Za-z_][A-Za-z0-9_]*$"#, options: .regularExpression) != nil else {
                throw passwordEnv.error("expected the name of an environment variable (never the password itself)",
                                        hint: "e.g. password_env: SHOP_DB_PASSWORD, and export SHOP_DB_PASSWORD where ship runs")
            }
            db.passwordEnv = name
        }
        db.dumpCommand = try map["dump_command"]?.nonEmptyString(expected: "a command line")
        db.restoreCommand = try map["restore_command"]?.nonEmptyString(expected: "a command line")
        db.timeout = try map["timeout"]?.int(in: 1...604_800, expected: "a dump timeout in seconds from 1 to 604800")
        switch engine {
        case .command:
            _ = try map.required("dump_command", expected: "a command that writes the dump to stdout, e.g. drush sql-dump")
            _ = try map.required("restore_command", expected: "a command that reads a dump on stdin, e.g. drush sql-cli")
        case .mysql, .postgres:
            _ = try map.required("name", expected: "the database name")
            for key in ["dump_command", "restore_command"] {
                if let node = map[key] {
                    throw node.error("\(key) is for engine: command only", hint: "remove it, or set engine: command")
                }
            }
        }
        return db
    }
}
