import Foundation

/// Turns the YAML of a ship.yml into a validated `ShipConfig`, or the first error with its
/// file, line and key path.
enum ShipConfigDecoder {
    static let topKeys = ["app", "deploy_to", "keep_releases", "ssh", "shared", "default_environment", "environments", "compression", "build"]
    static let sshKeys = ["user", "port", "identity_file", "config_file", "options", "max_startups"]
    static let environmentKeys = ["revision", "hosts", "batch", "max_fail", "rollback", "deploy_on_push", "env", "backup",
                                  "deploy_to", "keep_releases", "ssh", "compression", "health_check", "traffic", "notify", "inventory",
                                  "secrets", "secrets_command", "build", "artifacts", "lock",
                                  "max_concurrency", "max_errors", "min_healthy_hosts"]
    static let hostKeys = ["host", "roles", "env", "ssh"]
    static let hostSSHKeys = ["user", "port"]
    static let backupKeys = ["store", "keep", "keep_daily", "keep_weekly", "keep_monthly", "s3", "before_migrate", "db", "assets",
                             "encryption"]
    static let databaseKeys = ["host", "engine", "name", "user", "address", "password_env", "dump_command", "restore_command", "timeout"]

    static func decode(yaml: String, file: String, displayName: String) throws(ShipError) -> ShipConfig {
        let root = try ConfigNode.parse(yaml: yaml, file: displayName)
        let top = try root.mapping(allowed: topKeys, expected: "a mapping of settings (app, deploy_to, environments, …)")
        let directory = (file as NSString).deletingLastPathComponent

        let appNode = try top.required("app", expected: "the application's name, [a-z0-9][a-z0-9-]*")
        let app = try appNode.string(expected: "the application's name")
        guard app.range(of: #"^[a-z0-9][a-z0-9-]*$"#, options: .regularExpression) != nil else {
            throw appNode.error("expected a name of lowercase letters, digits and '-' starting with a letter or digit, found \(appNode.found)",
                                hint: "e.g. app: \(sanitizedAppName(app))")
        }

        let deployTo = try top["deploy_to"].map { node throws(ShipError) in try absoluteRemotePath(node) }
        let keepReleases = try top["keep_releases"]?.int(atLeast: 1) ?? 5
        let compression = try top["compression"]?.oneOf(BundleCompression.self) ?? .gzip
        let ssh = try top["ssh"].map { node throws(ShipError) in try decodeSSH(node, directory: directory) } ?? SSHSettings()
        let shared = try top["shared"].map { node throws(ShipError) in try decodeShared(node) } ?? SharedPaths()
        let build = try top["build"].map { node throws(ShipError) in try decodeBuild(node) }

        let environmentsNode = try top.required("environments", expected: "a mapping of environment names to hosts",
                                                hint: "e.g.\n  environments:\n    prod:\n      hosts: [web1, web2]")
        var environments: [Environment] = []
        for (key, value) in try environmentsNode.mappingEntries(expected: "a mapping of environment names to settings") {
            let keyNode = ConfigNode(node: key.node, file: displayName, path: environmentsNode.path + [key.text])
            guard key.text.range(of: #"^[A-Za-z0-9][A-Za-z0-9_.-]*$"#, options: .regularExpression) != nil else {
                throw keyNode.error("an environment name is letters, digits, '_', '.' and '-'")
            }
            var defaults = EnvironmentDefaults(deployTo: deployTo, keepReleases: keepReleases, ssh: ssh, app: app,
                                               compression: compression)
            defaults.build = build
            environments.append(try decodeEnvironment(name: key.text, value, directory: directory, defaults: defaults))
        }
        guard !environments.isEmpty else {
            throw environmentsNode.error("expected at least one environment", hint: "e.g.\n  environments:\n    prod:\n      hosts: [web1]")
        }

        var defaultEnvironment: String?
        if let node = top["default_environment"] {
            let name = try node.nonEmptyString(expected: "the name of an environment")
            guard environments.contains(where: { $0.name == name }) else {
                let names = environments.map(\.name)
                throw node.error("no environment named '\(name)'",
                                 hint: Suggestion.didYouMean(name, among: names) ?? "environments: \(names.joined(separator: ", "))")
            }
            defaultEnvironment = name
        }

        var config = ShipConfig(file: file, directory: directory, app: app, defaultDeployTo: deployTo, defaultKeepReleases: keepReleases,
                                defaultSSH: ssh, shared: shared, defaultEnvironment: defaultEnvironment, environments: environments)
        config.build = build
        return config
    }

    /// `build: [CMD, ...]`, or `build: { commands: [...], exclude: [...] }`.
    static func decodeBuild(_ node: ConfigNode) throws(ShipError) -> BuildSettings {
        var settings: BuildSettings
        if case .sequence = node.node {
            settings = BuildSettings(commands: try node.stringList(expected: "a list of commands, e.g. [composer install --no-dev]"))
        } else {
            let map = try node.mapping(allowed: ["commands", "exclude"], expected: "a list of commands, or { commands, exclude }")
            let commands = try map.required("commands", expected: "a list of commands", hint: "e.g. commands: [composer install --no-dev]")
            settings = BuildSettings(commands: try commands.stringList(expected: "a list of commands"))
            if let exclude = map["exclude"] {
                for item in try exclude.list(expected: "a list of paths in the revision, e.g. [node_modules]") {
                    var path = try item.nonEmptyString(expected: "a path in the revision")
                    while path.hasSuffix("/") { path.removeLast() }
                    while path.hasPrefix("./") { path.removeFirst(2) }
                    guard !path.hasPrefix("/"), !path.split(separator: "/").contains(".."), !path.isEmpty else {
                        throw item.error("expected a path inside the revision, found \(item.found)", hint: "e.g. node_modules")
                    }
                    settings.exclude.append(path)
                }
            }
        }
        guard !settings.commands.isEmpty, settings.commands.allSatisfy({ !$0.trimmingCharacters(in: .whitespaces).isEmpty }) else {
            throw node.error("expected at least one command", hint: "e.g. build: [composer install --no-dev --optimize-autoloader]")
        }
        return settings
    }

    static func sanitizedAppName(_ text: String) -> String {
        let lowered = text.lowercased().map { ch -> Character in
            (ch.isASCII && (ch.isLetter || ch.isNumber)) ? ch : "-"
        }
        let trimmed = String(lowered).trimmingCharacters(in: CharacterSet(charactersIn: "-"))
        return trimmed.isEmpty ? "app" : trimmed
    }

    // MARK: - Paths

    static func absoluteRemotePath(_ node: ConfigNode) throws(ShipError) -> String {
        let path = try node.nonEmptyString(expected: "an absolute path")
        guard path.hasPrefix("/") else {
            throw node.error("expected an absolute path, found \(node.found)", hint: "e.g. /srv/app")
        }
        let components = path.split(separator: "/")
        guard !components.contains(".."), !components.contains(".") else {
            throw node.error("expected a normalised absolute path without '.' or '..', found \(node.found)")
        }
        guard !components.isEmpty else { throw node.error("'/' cannot be deploy_to; use a directory of its own, e.g. /srv/app") }
        guard path.rangeOfCharacter(from: .controlCharacters) == nil else {
            throw node.error("a path cannot contain control characters")
        }
        return "/" + components.joined(separator: "/")
    }

    /// A path relative to a base directory on the host: no leading '/', no '..'.
    static func relativePath(_ node: ConfigNode, under base: String) throws(ShipError) -> String {
        let path = try node.nonEmptyString(expected: "a path relative to \(base)")
        let components = path.split(separator: "/", omittingEmptySubsequences: true)
        guard !path.hasPrefix("/") else {
            throw node.error("expected a path relative to \(base), found \(node.found)")
        }
        guard !components.contains(".."), !components.contains("."), !components.isEmpty else {
            throw node.error("expected a path inside \(base) without '.' or '..', found \(node.found)")
        }
        guard path.rangeOfCharacter(from: .controlCharacters) == nil else {
            throw node.error("a path cannot contain control characters")
        }
        return components.joined(separator: "/")
    }

    /// A local path from ship.yml: `~` expanded, relative paths resolved against ship.yml's directory.
    static func localPath(_ node: ConfigNode, directory: String) throws(ShipError) -> String {
        let path = try node.nonEmptyString(expected: "a path")
        let expanded = (path as NSString).expandingTildeInPath
        if expanded.hasPrefix("/") { return (expanded as NSString).standardizingPath }
        return ((directory as NSString).appendingPathComponent(expanded) as NSString).standardizingPath
    }

    // MARK: - Sections

    static func decodeSSH(_ node: ConfigNode, directory: String) throws(ShipError) -> SSHSettings {
        let map = try node.mapping(allowed: sshKeys)
        var ssh = SSHSettings()
        if let user = map["user"] { ssh.user = try user.nonEmptyString(expected: "a user name") }
        if let port = map["port"] { ssh.port = try decodePort(port) }
        if let identity = map["identity_file"] { ssh.identityFile = try localPath(identity, directory: directory) }
        if let config = map["config_file"] { ssh.configFile = try localPath(config, directory: directory) }
        if let options = map["options"] {
            ssh.options = try options.stringList(expected: "a list of ssh arguments, e.g. [\"-o\", \"ConnectTimeout=10\"]")
        }
        if let startups = map["max_startups"] {
            ssh.maxStartups = try startups.int(in: 1...1000, expected: "new connections at once through one jump host, 1 to 1000 (its sshd's MaxStartups or less)")
        }
        return ssh
    }

    static func decodePort(_ node: ConfigNode) throws(ShipError) -> Int {
        let port = try node.int(expected: "a port number 1-65535")
        guard (1...65535).contains(port) else { throw node.error("expected a port number 1-65535, found \(port)") }
        return port
    }

    static func decodeShared(_ node: ConfigNode) throws(ShipError) -> SharedPaths {
        let map = try node.mapping(allowed: ["dirs", "files"])
        var shared = SharedPaths()
        var seen: [String: String] = [:]
        for key in ["dirs", "files"] {
            guard let list = map[key] else { continue }
            for item in try list.list(expected: "a list of paths relative to the release") {
                let path = try relativePath(item, under: "the release")
                if let earlier = seen[path] {
                    throw item.error("'\(path)' is already listed in shared.\(earlier)")
                }
                seen[path] = key
                if key == "dirs" { shared.dirs.append(path) } else { shared.files.append(path) }
            }
        }
        return shared
    }

    /// What an environment inherits from the top level.
    struct EnvironmentDefaults {
        var deployTo: String?
        var keepReleases: Int
        var ssh: SSHSettings
        var app: String
        var compression: BundleCompression
        var build: BuildSettings?
    }

    static func decodeEnvironment(name: String, _ node: ConfigNode, directory: String,
                                  defaults: EnvironmentDefaults) throws(ShipError) -> Environment {
        let map = try node.mapping(allowed: environmentKeys, expected: "a mapping with hosts (and revision, batch, …)")
        let deployTo: String
        if let own = map["deploy_to"] {
            deployTo = try absoluteRemotePath(own)
        } else if let inherited = defaults.deployTo {
            deployTo = inherited
        } else {
            throw node.error("deploy_to is set neither here nor at the top level",
                             hint: "add `deploy_to: /srv/\(defaults.app)` at the top of ship.yml, or `deploy_to:` in each environment")
        }
        let keepReleases = try map["keep_releases"]?.int(atLeast: 1) ?? defaults.keepReleases
        let ssh = try map["ssh"].map { node throws(ShipError) in defaults.ssh.overridden(by: try decodeSSH(node, directory: directory)) }
            ?? defaults.ssh
        let revision = try map["revision"]?.nonEmptyString(expected: "a branch, tag or commit")
        let inventory = try map["inventory"].map { node throws(ShipError) in try decodeInventory(node) }
        let hostsNode = inventory == nil ? try map.required("hosts", expected: "a list of hosts", hint: "e.g. hosts: [web1, web2]") : map["hosts"]
        var hosts: [Host] = []
        for item in try hostsNode?.list(expected: "a list of hosts") ?? [] {
            let host = try decodeHost(item)
            // The same host written two ways (`web1:22` and `{ host: web1, ssh: { port: 22 } }`)
            // is still one host: output, locks and history key hosts by this description.
            if let earlier = hosts.first(where: { $0.description == host.description || ($0.name == host.name && $0.port == host.port) }) {
                throw item.error("host '\(host)' is listed twice", hint: "'\(earlier)' names the same host; keep one entry")
            }
            hosts.append(host)
        }
        if let hostsNode, hosts.isEmpty, inventory == nil { throw hostsNode.error("expected at least one host") }

        let batch = try map["batch"].map { node throws(ShipError) in try decodeBatch(node) } ?? .one
        let maxFail = try map["max_fail"]?.int(atLeast: 0) ?? 0
        let rollback = try map["rollback"]?.oneOf(RollbackMode.self) ?? .auto
        var deployOnPush: String?
        if let branch = map["deploy_on_push"] {
            var text = try branch.nonEmptyString(expected: "a branch name")
            if text.hasPrefix("refs/heads/") { text.removeFirst("refs/heads/".count) }
            deployOnPush = text
        }
        let env = try map["env"].map { node throws(ShipError) in try decodeEnv(node) }?.map { ($0.name, $0.value) } ?? []
        let backup = try map["backup"].map { node throws(ShipError) in try decodeBackup(node, directory: directory) }
        var environment = Environment(name: name, deployTo: deployTo, keepReleases: keepReleases, ssh: ssh, revision: revision, hosts: hosts,
                                      batch: batch, maxFail: maxFail, rollback: rollback, deployOnPush: deployOnPush, env: env, backup: backup)
        environment.compression = try map["compression"]?.oneOf(BundleCompression.self) ?? defaults.compression
        environment.healthCheck = try map["health_check"].map { node throws(ShipError) in try decodeHealthCheck(node) }
        environment.traffic = try map["traffic"].map { node throws(ShipError) in try decodeTraffic(node, hosts: hosts) }
        environment.notify = try map["notify"].map { node throws(ShipError) in try decodeNotify(node) } ?? []
        environment.inventory = inventory
        environment.build = try map["build"].map { node throws(ShipError) in try decodeBuild(node) } ?? defaults.build
        environment.artifacts = try map["artifacts"].map { node throws(ShipError) in try decodeArtifacts(node) }
        environment.maxConcurrency = try map["max_concurrency"].map { node throws(ShipError) in
            try decodeHostCount(node, minimum: 1, example: #"max_concurrency: 10 or max_concurrency: "25%""#)
        }
        let limits = ["max_fail", "max_errors", "min_healthy_hosts"].filter { map[$0] != nil }
        if limits.count > 1 {
            throw map[limits[1]]!.error("\(limits.joined(separator: " and ")) say the same thing: give one",
                                        hint: "max_fail: N hosts; max_errors: N or N% of the pool; min_healthy_hosts: N or N% that must stay healthy")
        }
        if let node = map["max_errors"] {
            environment.failureLimit = .maxErrors(try decodeHostCount(node, minimum: 0, example: #"max_errors: 2 or max_errors: "10%""#))
        }
        if let node = map["min_healthy_hosts"] {
            environment.failureLimit = .minHealthy(try decodeHostCount(node, minimum: 0, example: #"min_healthy_hosts: 3 or min_healthy_hosts: "75%""#))
        }
        if let lockNode = map["lock"] {
            let value = try lockNode.nonEmptyString(expected: "hosts or store")
            guard value == "hosts" || value == "store" else {
                throw lockNode.error("expected hosts or store, found \(lockNode.found)",
                                     hint: "store: the lock is also taken in the artifact store, so controllers on different machines exclude each other")
            }
            guard value == "hosts" || environment.artifacts != nil else {
                throw lockNode.error("lock: store needs artifacts.store, where the lock is kept", hint: "add artifacts: { store: s3://bucket/prefix }")
            }
            environment.lockInStore = value == "store"
        }
        if let secrets = map["secrets"] {
            for item in try secrets.list(expected: "a list of variable names, e.g. [DB_PASSWORD, STRIPE_KEY]") {
                let name = try item.nonEmptyString(expected: "a variable name")
                guard name.range(of: #"^[A-Za-z_][A-Za-z0-9_]*$"#, options: .regularExpression) != nil else {
                    throw item.error("not a valid environment variable name: \(name)", hint: "a secret is named here, its value never is")
                }
                guard !name.hasPrefix("SHIP_") else { throw item.error("SHIP_* variables are set by ship itself", hint: "choose another name") }
                if env.contains(where: { $0.0 == name }) {
                    throw item.error("\(name) is also in env:, which would put its value in ship.yml", hint: "keep it in secrets: only")
                }
                guard !environment.secrets.contains(name) else { throw item.error("\(name) is listed twice") }
                environment.secrets.append(name)
            }
        }
        if let command = map["secrets_command"] {
            environment.secretsCommand = try command.nonEmptyString(expected: "a command printing NAME=value lines, e.g. pass show shop/prod")
            guard !environment.secrets.isEmpty else {
                throw command.error("secrets_command without secrets: ship passes on only the names listed in secrets:",
                                    hint: "add secrets: [NAME, ...]")
            }
        }
        return environment
    }

    static func decodeHealthCheck(_ node: ConfigNode) throws(ShipError) -> HealthCheck {
        let map = try node.mapping(allowed: ["url", "expect_status", "expect_body", "timeout", "retries", "interval", "from"],
                                   expected: "a mapping with url (and expect_status, expect_body, timeout, retries, interval, from)")
        let urlNode = try map.required("url", expected: "an http:// or https:// URL", hint: "e.g. url: https://{host}/health")
        let url = try urlNode.nonEmptyString(expected: "an http:// or https:// URL")
        guard url.hasPrefix("http://") || url.hasPrefix("https://") else {
            throw urlNode.error("expected an http:// or https:// URL, found \"\(url)\"", hint: "e.g. url: https://{host}/health")
        }
        var check = HealthCheck(url: url)
        if let status = map["expect_status"] {
            let items = (try? status.list()) ?? [status]
            check.expectStatus = []
            for item in items { check.expectStatus.append(try item.int(in: 100...599, expected: "an HTTP status from 100 to 599")) }
        }
        check.expectBody = try map["expect_body"]?.nonEmptyString(expected: "text the body must contain")
        check.timeout = try map["timeout"]?.int(in: 1...3600, expected: "seconds from 1 to 3600") ?? check.timeout
        check.retries = try map["retries"]?.int(in: 0...100, expected: "a number of retries from 0 to 100") ?? check.retries
        check.interval = try map["interval"]?.int(in: 0...3600, expected: "seconds from 0 to 3600") ?? check.interval
        if let from = map["from"] {
            let text = try from.nonEmptyString(expected: "a host to check from")
            if text != "local" { check.from = try parseHostName(from) }
        }
        return check
    }

    /// `env:`: variable names to values, in order.
    static func decodeEnv(_ envNode: ConfigNode) throws(ShipError) -> [HookVariable] {
        var env: [HookVariable] = []
        for (key, value) in try envNode.mappingEntries(expected: "a mapping of variable names to values") {
            let keyNode = ConfigNode(node: key.node, file: envNode.file, path: envNode.path + [key.text])
            guard key.text.range(of: #"^[A-Za-z_][A-Za-z0-9_]*$"#, options: .regularExpression) != nil else {
                throw keyNode.error("not a valid environment variable name")
            }
            guard !key.text.hasPrefix("SHIP_") else {
                throw keyNode.error("SHIP_* variables are set by ship itself", hint: "choose another name")
            }
            env.append(HookVariable(name: key.text, value: try value.string(expected: "a value (string, number or boolean)")))
        }
        return env
    }

    static func decodeHost(_ node: ConfigNode) throws(ShipError) -> Host {
        if case .mapping = node.node {
            let map = try node.mapping(allowed: hostKeys, expected: "a host")
            let hostNode = try map.required("host", expected: "a host name, alias or address")
            var host = try parseHostName(hostNode)
            if let env = map["env"] { host.env = try decodeEnv(env) }
            if let ssh = map["ssh"] {
                let settings = try ssh.mapping(allowed: hostSSHKeys, expected: "the host's own ssh user and port")
                if let user = settings["user"] { host.user = try user.nonEmptyString(expected: "a user name") }
                if let port = settings["port"] {
                    guard host.port == nil else {
                        throw port.error("the port is given twice: in \"\(hostNode.found)\" and here", hint: "keep one")
                    }
                    host.port = try decodePort(port)
                }
            }
            if let roles = map["roles"] {
                for item in try roles.list(expected: "a list of role names") {
                    let role = try item.nonEmptyString(expected: "a role name")
                    guard role.range(of: #"^[A-Za-z0-9][A-Za-z0-9_-]*$"#, options: .regularExpression) != nil else {
                        throw item.error("a role name is letters, digits, '_' and '-', found \(item.found)")
                    }
                    host.roles.append(role)
                }
            }
            return host
        }
        return try parseHostName(node)
    }

    /// `name`, `user@name`, `name:port`, `[v6addr]:port`.
    static func parseHostName(_ node: ConfigNode) throws(ShipError) -> Host {
        let text = try node.nonEmptyString(expected: "a host name, alias or address (\"name:port\" allowed)")
        guard text.rangeOfCharacter(from: .whitespacesAndNewlines.union(.controlCharacters)) == nil,
              !text.hasPrefix("-") else {
            throw node.error("not a host name: \(node.found)", hint: "a host is an ssh alias, a name or an IP address")
        }
        if text.hasPrefix("[") || text.contains("@[") {
            // [v6]:port
            if let close = text.lastIndex(of: "]") {
                let after = text[text.index(after: close)...]
                if after.isEmpty { return Host(name: text) }
                if after.hasPrefix(":"), let port = Int(after.dropFirst()), (1...65535).contains(port) {
                    return Host(name: String(text[..<close]).replacingOccurrences(of: "[", with: ""), port: port)
                }
            }
            throw node.error("not a host: \(node.found)", hint: "write IPv6 addresses as [addr]:port")
        }
        let colons = text.filter { $0 == ":" }.count
        if colons == 1, let index = text.lastIndex(of: ":") {
            let portText = text[text.index(after: index)...]
            guard let port = Int(portText), (1...65535).contains(port) else {
                throw node.error("expected \"name:port\" with a port 1-65535, found \(node.found)")
            }
            return Host(name: String(text[..<index]), port: port)
        }
        return Host(name: text)
    }

    static let batchExpectation = #"an integer, "N%" or a list"#

    static func decodeBatch(_ node: ConfigNode) throws(ShipError) -> BatchSpec {
        if case .sequence = node.node {
            let items = try node.list()
            guard !items.isEmpty else { throw node.error("expected \(batchExpectation), found an empty list") }
            var sizes: [BatchSize] = []
            for item in items {
                sizes.append(try decodeBatchSize(item))
            }
            return BatchSpec(sizes)
        }
        return BatchSpec([try decodeBatchSize(node)])
    }

    static func decodeBatchSize(_ node: ConfigNode) throws(ShipError) -> BatchSize {
        let hint = #"e.g. batch: 2, batch: "25%" or batch: [1, "50%"]"#
        guard case .scalar = node.node, !node.isNull else {
            throw node.error("expected \(batchExpectation), found \(node.found)", hint: hint)
        }
        if let value = try? node.int() {
            guard value >= 1 else { throw node.error("expected a batch size >= 1, found \(value)", hint: hint) }
            return .count(value)
        }
        let text = try node.string()
        if text.hasSuffix("%"), let percent = Int(text.dropLast()) {
            guard (1...100).contains(percent) else {
                throw node.error("expected a percentage from 1% to 100%, found \(node.found)", hint: hint)
            }
            return .percent(percent)
        }
        throw node.error("expected \(batchExpectation), found \(node.found)", hint: hint)
    }

    /// A number of hosts (at least `minimum`), or a share of the pool as "N%" (0% to 100%).
    static func decodeHostCount(_ node: ConfigNode, minimum: Int, example: String) throws(ShipError) -> BatchSize {
        let expected = "a number of hosts (at least \(minimum)) or a percentage such as \"25%\""
        guard case .scalar = node.node, !node.isNull else { throw node.error("expected \(expected), found \(node.found)", hint: example) }
        if let value = try? node.int() {
            guard value >= minimum else { throw node.error("expected \(expected), found \(value)", hint: example) }
            return .count(value)
        }
        let text = try node.string()
        if text.hasSuffix("%"), let percent = Int(text.dropLast()), (minimum...100).contains(percent) {
            return .percent(percent)
        }
        throw node.error("expected \(expected), found \(node.found)", hint: example)
    }

    static func decodeBatchSpec(commandLine text: String) throws(ShipError) -> BatchSpec {
        let yaml = text.contains(",") && !text.hasPrefix("[") ? "[\(text)]" : text
        let node = try ConfigNode.parse(yaml: "batch: \(yaml)\n", file: "--batch")
        do {
            return try decodeBatch(try node.mapping(allowed: ["batch"]).required("batch", expected: batchExpectation))
        } catch {
            throw ShipError.usage("--batch \(text): expected \(batchExpectation)", hint: #"e.g. --batch 2, --batch 25% or --batch 1,50%"#)
        }
    }
}
