import Foundation
import Yams

/// `ship config`: an environment as ship resolves it (the top level's `deploy_to`, `ssh` and
/// `keep_releases` under the environment's own, each host's user, port and `env` over the
/// environment's), in ship.yml's own keys. Secrets appear by name, with where a value would come
/// from, never a value; `secrets_command` is not run; webhook URLs written in ship.yml are cut
/// to their host.
public indirect enum ConfigValue: Sendable {
    case string(String)
    case int(Int)
    case bool(Bool)
    case list([ConfigValue])
    case map([(String, ConfigValue)])

    /// For JSONSerialization.
    public var json: Any {
        switch self {
        case .string(let text): text
        case .int(let number): number
        case .bool(let flag): flag
        case .list(let items): items.map(\.json)
        case .map(let entries): Dictionary(entries.map { ($0.0, $0.1.json) }, uniquingKeysWith: { $1 })
        }
    }

    var node: Node {
        switch self {
        case .string(let text): Node(text)
        case .int(let number): Node(String(number))
        case .bool(let flag): Node(flag ? "true" : "false")
        case .list(let items): Node(items.map(\.node))
        case .map(let entries): Node(entries.map { (Node($0.0), $0.1.node) })
        }
    }

    /// Block YAML in the given order.
    public var yaml: String {
        (try? Yams.serialize(node: node, width: -1, allowUnicode: true)) ?? ""
    }

    /// The value at a path of keys, for tests and scripts.
    public subscript(_ key: String) -> ConfigValue? {
        guard case .map(let entries) = self else { return nil }
        return entries.first { $0.0 == key }?.1
    }
}

public enum ResolvedConfig {
    public static func describe(_ config: ShipConfig, _ environment: Environment,
                                processEnvironment: [String: String] = ProcessInfo.processInfo.environment) -> ConfigValue {
        var entries: [(String, ConfigValue)] = [
            ("app", .string(config.app)),
            ("environment", .string(environment.name)),
            ("file", .string(config.file)),
            ("deploy_to", .string(environment.deployTo)),
            ("keep_releases", .int(environment.keepReleases)),
            ("revision", .string(environment.revision ?? "HEAD")),
        ]
        entries.append(("ssh", ssh(environment.ssh)))
        entries.append(("hosts", .list(environment.hosts.map { host(config, environment, $0) })))
        if let inventory = environment.inventory { entries.append(("inventory", self.inventory(inventory))) }
        entries.append(("batch", .string(environment.batch.description)))
        if let limit = environment.failureLimit {
            switch limit {
            case .maxErrors(let size): entries.append(("max_errors", .string(size.description)))
            case .minHealthy(let size): entries.append(("min_healthy_hosts", .string(size.description)))
            }
        } else {
            entries.append(("max_fail", .int(environment.maxFail)))
        }
        if let concurrency = environment.maxConcurrency { entries.append(("max_concurrency", .string(concurrency.description))) }
        entries.append(("rollback", .string(environment.rollback.rawValue)))
        if let branch = environment.deployOnPush { entries.append(("deploy_on_push", .string(branch))) }
        entries.append(("compression", .string(environment.compression.rawValue)))
        entries.append(("shared", .map([("dirs", .list(config.shared.dirs.map(ConfigValue.string))),
                                        ("files", .list(config.shared.files.map(ConfigValue.string)))])))
        if let build = environment.build {
            entries.append(("build", .map([("commands", .list(build.commands.map(ConfigValue.string))),
                                           ("exclude", .list(build.exclude.map(ConfigValue.string)))])))
        }
        if let artifacts = environment.artifacts {
            var store: [(String, ConfigValue)] = [("store", .string("s3://\(artifacts.bucket)" + (artifacts.prefix.isEmpty ? "" : "/\(artifacts.prefix)"))),
                                                  ("region", .string(artifacts.region))]
            if let endpoint = artifacts.endpoint { store.append(("endpoint", .string(endpoint))) }
            store.append(("link_lifetime", .int(artifacts.linkLifetime)))
            store.append(("host_credentials", .bool(artifacts.hostCredentials)))
            entries.append(("artifacts", .map(store)))
            entries.append(("lock", .string(environment.lockInStore ? "store" : "hosts")))
        }
        entries.append(("env", .map(environment.env.map { ($0.name, .string($0.value)) })))
        if !environment.secrets.isEmpty {
            entries.append(("secrets", .map(environment.secrets.map { name in
                (name, .string(processEnvironment[name] != nil ? "(set in ship's environment)"
                               : environment.secretsCommand != nil ? "(from secrets_command)" : "(not set)"))
            })))
            if let command = environment.secretsCommand { entries.append(("secrets_command", .string(command))) }
        }
        if let check = environment.healthCheck { entries.append(("health_check", healthCheck(check))) }
        if let traffic = environment.traffic { entries.append(("traffic", self.traffic(traffic))) }
        if !environment.notify.isEmpty { entries.append(("notify", .list(environment.notify.map(notify)))) }
        if let backup = environment.backup { entries.append(("backup", self.backup(backup))) }
        return .map(entries)
    }

    static func ssh(_ settings: SSHSettings) -> ConfigValue {
        var entries: [(String, ConfigValue)] = []
        if let user = settings.user { entries.append(("user", .string(user))) }
        if let port = settings.port { entries.append(("port", .int(port))) }
        if let identity = settings.identityFile { entries.append(("identity_file", .string(identity))) }
        if let file = settings.configFile { entries.append(("config_file", .string(file))) }
        if !settings.options.isEmpty { entries.append(("options", .list(settings.options.map(ConfigValue.string)))) }
        return .map(entries)
    }

    /// A host with what applies to it: its ssh user and port, its roles, and its whole `env`.
    static func host(_ config: ShipConfig, _ environment: Environment, _ host: Host) -> ConfigValue {
        var entries: [(String, ConfigValue)] = [("host", .string(host.description))]
        if !host.roles.isEmpty { entries.append(("roles", .list(host.roles.map(ConfigValue.string)))) }
        if let user = host.user ?? environment.ssh.user { entries.append(("user", .string(user))) }
        if let port = host.port ?? environment.ssh.port { entries.append(("port", .int(port))) }
        if let instance = host.instanceId { entries.append(("instance_id", .string(instance))) }
        if !host.env.isEmpty { entries.append(("env", .map(environment.variables(for: host).map { ($0.name, .string($0.value)) }))) }
        return .map(entries)
    }

    static func inventory(_ inventory: AWSInventory) -> ConfigValue {
        var aws: [(String, ConfigValue)] = []
        if let region = inventory.region { aws.append(("region", .string(region))) }
        if let endpoint = inventory.endpoint { aws.append(("endpoint", .string(endpoint))) }
        if !inventory.tags.isEmpty { aws.append(("tags", .map(inventory.tags.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) }))) }
        if let group = inventory.autoScalingGroup { aws.append(("auto_scaling_group", .string(group))) }
        aws.append(("address", .string(inventory.address.rawValue)))
        if !inventory.roles.isEmpty { aws.append(("roles", .list(inventory.roles.map(ConfigValue.string)))) }
        return .map([("aws", .map(aws))])
    }

    static func healthCheck(_ check: HealthCheck) -> ConfigValue {
        var entries: [(String, ConfigValue)] = [("url", .string(check.url)), ("expect_status", .list(check.expectStatus.map(ConfigValue.int)))]
        if let body = check.expectBody { entries.append(("expect_body", .string(body))) }
        entries += [("timeout", .int(check.timeout)), ("retries", .int(check.retries)), ("interval", .int(check.interval)),
                    ("from", .string(check.from?.description ?? "local"))]
        return .map(entries)
    }

    static func traffic(_ traffic: TrafficSettings) -> ConfigValue {
        var entries: [(String, ConfigValue)] = [("hosts", .list(traffic.sites.map { .string($0.description) }))]
        switch traffic.provider {
        case .haproxy(let socket, let backend):
            entries += [("socket", .string(socket)), ("backend", .string(backend)),
                        ("drain_timeout", .int(traffic.drainTimeout)), ("ready_timeout", .int(traffic.readyTimeout))]
        case .command(let drain, let undrain):
            entries += [("drain", .string(drain)), ("undrain", .string(undrain)), ("timeout", .int(traffic.commandTimeout))]
        case .awsTargetGroup(let arns, let region, let endpoint):
            entries = [("target_groups", .list(arns.map(ConfigValue.string)))]
            if let region { entries.append(("region", .string(region))) }
            if let endpoint { entries.append(("endpoint", .string(endpoint))) }
            entries += [("drain_timeout", .int(traffic.drainTimeout)), ("ready_timeout", .int(traffic.readyTimeout))]
        }
        if !traffic.servers.isEmpty {
            entries.append((traffic.name == "aws_target_group" ? "instances" : "servers",
                            .map(traffic.servers.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })))
        }
        if !traffic.roles.isEmpty { entries.append(("roles", .list(traffic.roles.map(ConfigValue.string)))) }
        return .map([(traffic.name, .map(entries))])
    }

    /// A webhook written in ship.yml is shown by its scheme and host only: its path often holds a token.
    static func notify(_ target: NotifyTarget) -> ConfigValue {
        var entries: [(String, ConfigValue)] = []
        switch target.webhook {
        case .url(let url):
            let components = URLComponents(string: url)
            entries.append(("webhook", .string("\(components?.scheme ?? "https")://\(components?.host ?? "?")/…")))
        case .environment(let name):
            entries.append(("webhook_env", .string(name)))
        }
        entries.append(("events", .list((target.events.isEmpty ? NotifyTarget.Event.allCases : target.events.sorted { $0.rawValue < $1.rawValue })
            .map { .string($0.rawValue) })))
        return .map(entries)
    }

    static func backup(_ backup: BackupConfig) -> ConfigValue {
        var entries: [(String, ConfigValue)] = []
        switch backup.store {
        case .local(let path): entries.append(("store", .string(path)))
        case .s3(let bucket, let prefix): entries.append(("store", .string("s3://\(bucket)/\(prefix)")))
        }
        if let s3 = backup.s3 {
            entries.append(("s3", .map([("region", .string(s3.region))] + (s3.endpoint.map { [("endpoint", ConfigValue.string($0))] } ?? []))))
        }
        entries += [("keep", .int(backup.keep)), ("keep_daily", .int(backup.keepDaily)), ("keep_weekly", .int(backup.keepWeekly)),
                    ("keep_monthly", .int(backup.keepMonthly)), ("before_migrate", .bool(backup.beforeMigrate))]
        if let encryption = backup.encryption {
            func source(_ key: BackupConfig.KeySource) -> (String, ConfigValue) {
                switch key {
                case .environment(let name): ("key_env", .string(name))
                case .file(let path): ("key_file", .string(path))
                }
            }
            entries.append(("encryption", .map([source(encryption.key)])))
        }
        if let db = backup.db {
            var fields: [(String, ConfigValue)] = [("host", .string(db.site.description)), ("engine", .string(db.engine.rawValue))]
            if let name = db.name { fields.append(("name", .string(name))) }
            if let user = db.user { fields.append(("user", .string(user))) }
            if let address = db.address { fields.append(("address", .string(address))) }
            if let password = db.passwordEnv { fields.append(("password_env", .string(password))) }
            if let dump = db.dumpCommand { fields.append(("dump_command", .string(dump))) }
            if let restore = db.restoreCommand { fields.append(("restore_command", .string(restore))) }
            fields.append(("timeout", .int(db.timeout ?? BackupConfig.Database.defaultTimeout)))
            entries.append(("db", .map(fields)))
        }
        if let assets = backup.assets {
            entries.append(("assets", .map([("host", .string(assets.site.description)), ("dirs", .list(assets.dirs.map(ConfigValue.string)))])))
        }
        return .map(entries)
    }
}
