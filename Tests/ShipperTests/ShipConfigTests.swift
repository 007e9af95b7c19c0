import Foundation
import Hooks
import Testing
@testable import Shipper

private func decode(_ yaml: String) throws(ShipError) -> ShipConfig {
    try ConfigLoader.decode(yaml: yaml, file: "/work/app/ship.yml", displayName: "ship.yml")
}

/// The error `yaml` gives, as `ship` prints it (`FILE:LINE: KEY: MESSAGE`), and its hint.
private func failure(_ yaml: String) -> ShipError? {
    do {
        _ = try decode(yaml)
        return nil
    } catch {
        return error
    }
}

private let minimal = """
    app: shop
    deploy_to: /srv/shop
    environments:
      prod:
        hosts: [web1]

    """

@Suite("ship.yml")
struct ShipConfigTests {
    @Test("a full configuration decodes into typed values")
    func fullConfiguration() throws {
        let config = try decode("""
            app: shop
            deploy_to: /srv/shop/
            keep_releases: 3
            ssh:
              user: deploy
              port: 2222
              identity_file: keys/id_ed25519
              config_file: ssh_config
              options: ["-o", "ConnectTimeout=10"]
            shared:
              dirs: [sites/default/files]
              files: [sites/default/settings.local.php]
            default_environment: prod
            environments:
              prod:
                revision: main
                hosts:
                  - web1
                  - web3:2200
                  - deploy@10.0.0.5
                  - host: web2
                    roles: [web, migrate]
                batch: [1, "50%"]
                max_fail: 1
                rollback: manual
                deploy_on_push: refs/heads/main
                env: { PATH: "/usr/local/bin:/usr/bin:/bin", APP_ENV: prod, DEBUG: false }
                backup:
                  store: s3://shop-backups/prod
                  keep: 4
                  keep_daily: 7
                  keep_weekly: 4
                  keep_monthly: 12
                  encryption: { key_env: SHOP_BACKUP_KEY, previous: [{ key_file: keys/old.key }] }
                  s3: { endpoint: http://127.0.0.1:9000, region: eu-west-1 }
                  before_migrate: true
                  db: { host: db1, engine: mysql, name: shop, user: shop, address: 127.0.0.1:3306, password_env: SHOP_DB_PASSWORD }
                  assets: { host: web1, dirs: [shared/sites/default/files], timeout: 600 }
              staging:
                hosts: [stage1]
            """)
        #expect(config.app == "shop")
        #expect(config.defaultDeployTo == "/srv/shop")
        #expect(config.defaultKeepReleases == 3)
        #expect(config.defaultSSH == SSHSettings(user: "deploy", port: 2222, identityFile: "/work/app/keys/id_ed25519",
                                                 configFile: "/work/app/ssh_config", options: ["-o", "ConnectTimeout=10"]))
        #expect(config.shared == SharedPaths(dirs: ["sites/default/files"], files: ["sites/default/settings.local.php"]))
        let prod = try config.environment(named: nil)
        #expect(prod.name == "prod")
        #expect(prod.deployTo == "/srv/shop" && prod.keepReleases == 3 && prod.ssh == config.defaultSSH)
        #expect(prod.hosts == [Host(name: "web1"), Host(name: "web3", port: 2200), Host(name: "deploy@10.0.0.5"),
                               Host(name: "web2", roles: ["web", "migrate"])])
        #expect(prod.batch == BatchSpec([.count(1), .percent(50)]))
        #expect(prod.maxFail == 1)
        #expect(prod.rollback == .manual)
        #expect(prod.deployOnPush == "main")
        #expect(prod.env.map(\.name) == ["PATH", "APP_ENV", "DEBUG"])
        #expect(prod.env.map(\.value) == ["/usr/local/bin:/usr/bin:/bin", "prod", "false"])
        let backup = try #require(prod.backup)
        #expect(backup.store == .s3(bucket: "shop-backups", prefix: "prod"))
        #expect(backup.keep == 4)
        #expect(backup.s3 == .init(endpoint: "http://127.0.0.1:9000", region: "eu-west-1"))
        #expect(backup.beforeMigrate)
        #expect(backup.db?.engine == .mysql)
        #expect(backup.db?.passwordEnv == "SHOP_DB_PASSWORD")
        #expect(backup.assets == .init(site: .host(Host(name: "web1")), dirs: ["shared/sites/default/files"], timeout: 600))
        #expect(backup.retention == .init(keep: 4, daily: 7, weekly: 4, monthly: 12))
        #expect(backup.encryption == .init(key: .environment("SHOP_BACKUP_KEY"), previous: [.file("/work/app/keys/old.key")]))
        #expect(try config.environment(named: "staging").hosts == [Host(name: "stage1")])
    }

    @Test("defaults: keep_releases 5, batch 1, max_fail 0, rollback auto, revision HEAD")
    func defaults() throws {
        let config = try decode(minimal)
        let env = try config.environment(named: nil)
        #expect(env.keepReleases == 5)
        #expect(env.batch == .one)
        #expect(env.maxFail == 0)
        #expect(env.rollback == .auto)
        #expect(env.revision == nil)
        #expect(env.ssh == SSHSettings())
        #expect(env.compression == .gzip)
    }

    @Test("compression: at the top level, over it per environment")
    func compression() throws {
        let config = try decode("app: shop\ndeploy_to: /srv/shop\ncompression: none\nenvironments:\n  lan: { hosts: [web1] }\n"
            + "  wan: { hosts: [web2], compression: gzip }\n  ci: { hosts: [web3], compression: fast }\n")
        #expect(try config.environment(named: "lan").compression == .none)
        #expect(try config.environment(named: "wan").compression == .gzip)
        #expect(try config.environment(named: "ci").compression.level == 1)
    }

    @Test("health_check: url with {host}, statuses, body, timeout, retries, interval; defaults")
    func healthCheck() throws {
        let config = try decode(minimal + "    health_check: { url: \"https://{host}:8443/health\", expect_status: [200, 204], expect_body: ok, timeout: 3, retries: 5, interval: 1 }\n")
        let check = try #require(try config.environment(named: nil).healthCheck)
        #expect(check.url(for: Host(name: "web1")) == "https://web1:8443/health")
        #expect(check.expectStatus == [200, 204])
        #expect(check.expectBody == "ok")
        #expect((check.timeout, check.retries, check.interval) == (3, 5, 1))
        let defaults = try #require(try decode(minimal + "    health_check: { url: \"http://{host}/\" }\n").environment(named: nil).healthCheck)
        #expect(defaults.expectStatus == [200] && defaults.expectBody == nil)
        #expect((defaults.timeout, defaults.retries, defaults.interval) == (5, 3, 2))
    }

    @Test("traffic: haproxy on balancer hosts with servers, roles and timeouts; command on local; server names default to the host")
    func traffic() throws {
        let config = try decode("""
            app: shop
            deploy_to: /srv/shop
            environments:
              prod:
                hosts: [{ host: web1, roles: [web] }, { host: web2, roles: [web] }, { host: worker1, roles: [worker] }]
                traffic:
                  haproxy: { hosts: [lb1, "lb2:2222"], socket: /run/haproxy/admin.sock, backend: shop, servers: { web2: s2 },
                             roles: [web], drain_timeout: 10, ready_timeout: 20 }
              staging:
                hosts: [stage1]
                traffic: { command: { hosts: local, drain: "bin/lb off", undrain: "bin/lb on", timeout: 5 } }
            """)
        let prod = try #require(try config.environment(named: "prod").traffic)
        #expect(prod.provider == .haproxy(socket: "/run/haproxy/admin.sock", backend: "shop"))
        #expect(prod.sites == [.host(Host(name: "lb1")), .host(Host(name: "lb2", port: 2222))])
        #expect(prod.server(for: Host(name: "web1", roles: ["web"])) == "web1")
        #expect(prod.server(for: Host(name: "web2", roles: ["web"])) == "s2")
        #expect(prod.server(for: Host(name: "worker1", roles: ["worker"])) == nil, "not behind the balancer")
        #expect((prod.drainTimeout, prod.readyTimeout) == (10, 20))
        let staging = try #require(try config.environment(named: "staging").traffic)
        #expect(staging.provider == .command(drain: "bin/lb off", undrain: "bin/lb on"))
        #expect(staging.sites == [.local])
        #expect(staging.commandTimeout == 5)
    }

    @Test("YAML anchors and merge keys are honoured")
    func mergeKeys() throws {
        let config = try decode("""
            app: shop
            deploy_to: /srv/shop
            environments:
              prod: &base
                hosts: [web1, web2]
                batch: 2
              staging:
                <<: *base
                hosts: [stage1]
            """)
        let staging = try config.environment(named: "staging")
        #expect(staging.hosts == [Host(name: "stage1")])
        #expect(staging.batch == BatchSpec([.count(2)]))
    }

    @Test("deploy_to, ssh and keep_releases per environment over the top level; env, roles and ssh user/port per host")
    func perEnvironmentAndHost() throws {
        let config = try decode("""
            app: shop
            keep_releases: 4
            ssh: { user: deploy, port: 2222, options: ["-o", "ConnectTimeout=5"] }
            environments:
              staging:
                deploy_to: /srv/shop-staging
                keep_releases: 2
                ssh: { user: stage }
                hosts: [web1]
              prod:
                deploy_to: /srv/shop
                hosts:
                  - web1
                  - { host: web2, roles: [migrate], env: { NODE: two }, ssh: { user: admin, port: 22 } }
            """)
        let staging = try config.environment(named: "staging")
        #expect(staging.deployTo == "/srv/shop-staging" && staging.keepReleases == 2)
        #expect(staging.ssh == SSHSettings(user: "stage", port: 2222, options: ["-o", "ConnectTimeout=5"]))
        let prod = try config.environment(named: "prod")
        #expect(prod.deployTo == "/srv/shop" && prod.keepReleases == 4 && prod.ssh.user == "deploy")
        #expect(prod.hosts[1] == Host(name: "web2", port: 22, roles: ["migrate"], user: "admin",
                                      env: [HookVariable(name: "NODE", value: "two")]))
        let transport = OpenSSHTransport(host: prod.hosts[1], settings: prod.ssh, controlDirectory: "/tmp/c")
        #expect(transport.baseArguments.prefix(6) == ["-o", "ConnectTimeout=5", "-l", "admin", "-p", "22"])
    }

    @Test("build: the top level's for every environment, an environment's own over it")
    func buildPerEnvironment() throws {
        let config = try ShipConfigDecoder.decode(yaml: """
            app: shop
            deploy_to: /srv/shop
            build: [composer install --no-dev]
            environments:
              staging:
                hosts: [s1]
              prod:
                hosts: [web1]
                build: { commands: [composer install --no-dev, npm ci], exclude: [node_modules] }
            """, file: "/tmp/ship.yml", displayName: "ship.yml")
        #expect(try config.environment(named: "staging").build == BuildSettings(commands: ["composer install --no-dev"]))
        #expect(try config.environment(named: "prod").build == BuildSettings(commands: ["composer install --no-dev", "npm ci"], exclude: ["node_modules"]))
    }

    static let errorCases: [ErrorCase] = [
        ErrorCase(name: "a webhook given twice", yaml: minimal + "    notify: [{ webhook: \"https://x/y\", webhook_env: HOOK }]\n",
                  expected: "ship.yml:6: environments.prod.notify[0]: expected one of webhook and webhook_env, found both"),
        ErrorCase(name: "an unknown notify event", yaml: minimal + "    notify: [{ webhook_env: HOOK, events: [deployment_failed] }]\n",
                  expected: #"ship.yml:6: environments.prod.notify[0].events[0]: expected one of deployment_started, deployment_finished, rollback_finished, backup_failed, found "deployment_failed""#),
        ErrorCase(name: "a target group that is no ARN", yaml: minimal + "    traffic: { aws_target_group: { target_groups: [shop] } }\n",
                  expected: #"ship.yml:6: environments.prod.traffic.aws_target_group.target_groups[0]: expected a target group ARN (arn:…:targetgroup/NAME/ID), found "shop""#),
        ErrorCase(name: "an instance id that is none",
                  yaml: minimal + "    traffic: { aws_target_group: { target_groups: [\"arn:aws:elasticloadbalancing:eu-west-1:1:targetgroup/a/b\"], instances: { web1: web1 } } }\n",
                  expected: #"ship.yml:6: environments.prod.traffic.aws_target_group.instances.web1: expected an instance id (i-…), found "web1""#),
        ErrorCase(name: "an inventory that names no instances", yaml: minimal + "    inventory: { aws: { region: eu-west-1 } }\n",
                  expected: "ship.yml:6: environments.prod.inventory.aws: expected tags or auto_scaling_group (or both): which instances are hosts"),
        ErrorCase(name: "an inventory address of another kind", yaml: minimal + "    inventory: { aws: { tags: { Role: web }, address: ipv6 } }\n",
                  expected: #"ship.yml:6: environments.prod.inventory.aws.address: expected one of private_ip, public_ip, private_dns, public_dns, instance_id, found "ipv6""#),
        ErrorCase(name: "an AWS region that is none", yaml: minimal + "    inventory: { aws: { tags: { Role: web }, region: Ireland } }\n",
                  expected: #"ship.yml:6: environments.prod.inventory.aws.region: expected an AWS region such as eu-west-1, found "Ireland""#),
        ErrorCase(name: "no hosts and no inventory", yaml: "app: shop\ndeploy_to: /srv/shop\nenvironments:\n  prod:\n    batch: 1\n",
                  expected: "ship.yml:5: environments.prod.hosts: missing required key (expected a list of hosts)"),
        ErrorCase(name: "no new connections at all", yaml: minimal.replacingOccurrences(of: "deploy_to: /srv/shop\n", with: "deploy_to: /srv/shop\nssh: { max_startups: 0 }\n"),
                  expected: "ship.yml:3: ssh.max_startups: expected new connections at once through one jump host, 1 to 1000"),
        ErrorCase(name: "max_fail and max_errors together", yaml: minimal + "    max_fail: 1\n    max_errors: \"10%\"\n",
                  expected: "ship.yml:7: environments.prod.max_errors: max_fail and max_errors say the same thing: give one"),
        ErrorCase(name: "a max_concurrency of none", yaml: minimal + "    max_concurrency: 0\n",
                  expected: #"ship.yml:6: environments.prod.max_concurrency: expected a number of hosts (at least 1) or a percentage such as "25%", found 0"#),
        ErrorCase(name: "a share over the whole pool", yaml: minimal + "    min_healthy_hosts: \"120%\"\n",
                  expected: #"ship.yml:6: environments.prod.min_healthy_hosts: expected a number of hosts (at least 0) or a percentage such as "25%", found "120%""#),
        ErrorCase(name: "two traffic providers", yaml: minimal + "    traffic: { haproxy: {}, command: {} }\n",
                  expected: "ship.yml:6: environments.prod.traffic: expected one provider, found haproxy and command"),
        ErrorCase(name: "an unknown traffic provider", yaml: minimal + "    traffic: { nginx: {} }\n",
                  expected: "ship.yml:6: environments.prod.traffic.nginx: unknown key", hint: "allowed here: haproxy, command, aws_target_group"),
        ErrorCase(name: "a haproxy socket that is not absolute", yaml: minimal + "    traffic: { haproxy: { hosts: [lb1], socket: admin.sock, backend: web } }\n",
                  expected: #"ship.yml:6: environments.prod.traffic.haproxy.socket: expected an absolute path, found "admin.sock""#),
        ErrorCase(name: "a haproxy backend name that could carry a second command",
                  yaml: minimal + "    traffic: { haproxy: { hosts: [lb1], socket: /run/a.sock, backend: \"web; shutdown sessions\" } }\n",
                  expected: "ship.yml:6: environments.prod.traffic.haproxy.backend: expected a backend name of letters, digits and `_.:-`"),
        ErrorCase(name: "traffic servers naming no host", yaml: minimal + "    traffic: { haproxy: { hosts: [lb1], socket: /run/a.sock, backend: web, servers: { web9: s9 } } }\n",
                  expected: "ship.yml:6: environments.prod.traffic.haproxy.servers.web9: not a host of this environment"),
        ErrorCase(name: "traffic without balancer hosts", yaml: minimal + "    traffic: { command: { drain: a, undrain: b } }\n",
                  expected: "ship.yml:6: environments.prod.traffic.command.hosts: missing required key (expected the balancer hosts the provider runs on, or [local])",
                  hint: "e.g. hosts: [lb1]"),
        ErrorCase(name: "a health check URL without a scheme", yaml: minimal + "    health_check: { url: web1/health }\n",
                  expected: #"ship.yml:6: environments.prod.health_check.url: expected an http:// or https:// URL, found "web1/health""#),
        ErrorCase(name: "a health check status out of range", yaml: minimal + "    health_check: { url: \"http://{host}/\", expect_status: [200, 42] }\n",
                  expected: "ship.yml:6: environments.prod.health_check.expect_status[1]: expected an HTTP status from 100 to 599"),
        ErrorCase(name: "an unknown compression", yaml: minimal + "    compression: zstd\n",
                  expected: #"ship.yml:6: environments.prod.compression: expected one of gzip, fast, none, found "zstd""#),
        ErrorCase(name: "deploy_to neither at the top nor in the environment",
                  yaml: "app: shop\nenvironments:\n  prod:\n    hosts: [web1]\n",
                  expected: "ship.yml:4: environments.prod: deploy_to is set neither here nor at the top level",
                  hint: "add `deploy_to: /srv/shop` at the top of ship.yml, or `deploy_to:` in each environment"),
        ErrorCase(name: "dump timeout out of range", yaml: minimal + "    backup: { store: b, db: { host: db1, engine: mysql, name: shop, timeout: 0 } }\n",
                  expected: "ship.yml:6: environments.prod.backup.db.timeout: expected a dump timeout in seconds from 1 to 604800, found 0"),
        ErrorCase(name: "a secret that is not a variable name", yaml: minimal + "    secrets: [db-password]\n",
                  expected: "ship.yml:6: environments.prod.secrets[0]: not a valid environment variable name: db-password"),
        ErrorCase(name: "a secret that is also in env", yaml: minimal + "    env: { TOKEN: abc }\n    secrets: [TOKEN]\n",
                  expected: "ship.yml:7: environments.prod.secrets[0]: TOKEN is also in env:, which would put its value in ship.yml"),
        ErrorCase(name: "secrets_command without secrets", yaml: minimal + "    secrets_command: pass show shop\n",
                  expected: "ship.yml:6: environments.prod.secrets_command: secrets_command without secrets: ship passes on only the names listed in secrets:"),
        ErrorCase(name: "an environment's build without commands", yaml: minimal + "    build: []\n",
                  expected: "ship.yml:6: environments.prod.build: expected at least one command"),
        ErrorCase(name: "a build without commands", yaml: "build: []\n" + minimal,
                  expected: "ship.yml:1: build: expected at least one command"),
        ErrorCase(name: "a build exclude outside the revision", yaml: "build: { commands: [make], exclude: [../x] }\n" + minimal,
                  expected: #"ship.yml:1: build.exclude[0]: expected a path inside the revision, found "../x""#),
        ErrorCase(name: "relative deploy_to in an environment", yaml: minimal + "    deploy_to: srv/x\n",
                  expected: #"ship.yml:6: environments.prod.deploy_to: expected an absolute path, found "srv/x""#),
        ErrorCase(name: "unknown key in a host's ssh", yaml: "app: shop\ndeploy_to: /srv/shop\nenvironments:\n  prod:\n    hosts: [{ host: web1, ssh: { identity_file: k } }]\n",
                  expected: "ship.yml:5: environments.prod.hosts[0].ssh.identity_file: unknown key", hint: "allowed here: user, port"),
        ErrorCase(name: "a host's port given twice", yaml: "app: shop\ndeploy_to: /srv/shop\nenvironments:\n  prod:\n    hosts: [{ host: \"web1:2222\", ssh: { port: 22 } }]\n",
                  expected: "ship.yml:5: environments.prod.hosts[0].ssh.port: the port is given twice"),
        ErrorCase(name: "reserved variable in a host's env", yaml: "app: shop\ndeploy_to: /srv/shop\nenvironments:\n  prod:\n    hosts: [{ host: web1, env: { SHIP_HOST: x } }]\n",
                  expected: "ship.yml:5: environments.prod.hosts[0].env.SHIP_HOST: SHIP_* variables are set by ship itself"),
        ErrorCase(name: "wrong type: batch", yaml: minimal + "    batch: {size: 2}\n",
                  expected: #"ship.yml:6: environments.prod.batch: expected an integer, "N%" or a list, found a mapping"#),
        ErrorCase(name: "wrong type: batch percent out of range", yaml: minimal + "    batch: [1, \"150%\"]\n",
                  expected: #"ship.yml:6: environments.prod.batch[1]: expected a percentage from 1% to 100%, found "150%""#),
        ErrorCase(name: "wrong type: keep_releases", yaml: "keep_releases: five\n" + minimal,
                  expected: #"ship.yml:1: keep_releases: expected an integer >= 1, found "five""#),
        ErrorCase(name: "quoted number is not an integer", yaml: "keep_releases: \"5\"\n" + minimal,
                  expected: #"ship.yml:1: keep_releases: expected an integer >= 1, found "5""#),
        ErrorCase(name: "keep_releases below 1", yaml: "keep_releases: 0\n" + minimal,
                  expected: "ship.yml:1: keep_releases: expected an integer >= 1, found 0"),
        ErrorCase(name: "wrong type: hosts", yaml: "app: shop\ndeploy_to: /srv/shop\nenvironments:\n  prod:\n    hosts: web1\n",
                  expected: #"ship.yml:5: environments.prod.hosts: expected a list of hosts, found "web1""#),
        ErrorCase(name: "missing app", yaml: "deploy_to: /srv/shop\nenvironments:\n  prod:\n    hosts: [web1]\n",
                  expected: "ship.yml:1: app: missing required key (expected the application's name, [a-z0-9][a-z0-9-]*)"),
        ErrorCase(name: "missing hosts", yaml: "app: shop\ndeploy_to: /srv/shop\nenvironments:\n  prod:\n    batch: 1\n",
                  expected: "ship.yml:5: environments.prod.hosts: missing required key (expected a list of hosts)"),
        ErrorCase(name: "missing environments", yaml: "app: shop\ndeploy_to: /srv/shop\n",
                  expected: "ship.yml:1: environments: missing required key (expected a mapping of environment names to hosts)"),
        ErrorCase(name: "unknown key with a suggestion", yaml: "keep_release: 3\n" + minimal,
                  expected: "ship.yml:1: keep_release: unknown key", hint: "did you mean 'keep_releases'?"),
        ErrorCase(name: "unknown nested key", yaml: minimal + "    rollbak: auto\n",
                  expected: "ship.yml:6: environments.prod.rollbak: unknown key", hint: "did you mean 'rollback'?"),
        ErrorCase(name: "unknown key without a close match lists the allowed ones", yaml: minimal.replacingOccurrences(of: "app: shop", with: "app: shop\nssh: { colour: blue }"),
                  expected: "ship.yml:2: ssh.colour: unknown key", hint: "allowed here: user, port, identity_file, config_file, options, max_startups"),
        ErrorCase(name: "malformed YAML", yaml: "app: shop\ndeploy_to: /srv/shop\nenvironments:\n  prod:\n    hosts: [web1\n",
                  expected: "ship.yml:6: malformed YAML"),
        ErrorCase(name: "tab indentation", yaml: "app: shop\nenvironments:\n\tprod: {}\n",
                  expected: "ship.yml:3: malformed YAML"),
        ErrorCase(name: "duplicate key", yaml: "app: shop\napp: other\ndeploy_to: /srv/shop\nenvironments: {prod: {hosts: [a]}}\n",
                  expected: "ship.yml:1: duplicate key 'app' in one mapping"),
        ErrorCase(name: "bad app name", yaml: minimal.replacingOccurrences(of: "app: shop", with: "app: My Shop"),
                  expected: "ship.yml:1: app: expected a name of lowercase letters, digits and '-' starting with a letter or digit, found \"My Shop\"",
                  hint: "e.g. app: my-shop"),
        ErrorCase(name: "relative deploy_to", yaml: minimal.replacingOccurrences(of: "/srv/shop", with: "srv/shop"),
                  expected: #"ship.yml:2: deploy_to: expected an absolute path, found "srv/shop""#),
        ErrorCase(name: "shared path escaping the release", yaml: minimal + "shared:\n  dirs: [../etc]\n",
                  expected: #"ship.yml:7: shared.dirs[0]: expected a path inside the release without '.' or '..', found "../etc""#),
        ErrorCase(name: "unknown default_environment", yaml: minimal + "default_environment: prd\n",
                  expected: "ship.yml:6: default_environment: no environment named 'prd'", hint: "did you mean 'prod'?"),
        ErrorCase(name: "rollback value", yaml: minimal + "    rollback: sometimes\n",
                  expected: #"ship.yml:6: environments.prod.rollback: expected auto or manual, found "sometimes""#),
        ErrorCase(name: "host port", yaml: "app: shop\ndeploy_to: /srv/shop\nenvironments:\n  prod:\n    hosts: [\"web1:99999\"]\n",
                  expected: #"ship.yml:5: environments.prod.hosts[0]: expected "name:port" with a port 1-65535, found "web1:99999""#),
        ErrorCase(name: "duplicate host", yaml: "app: shop\ndeploy_to: /srv/shop\nenvironments:\n  prod:\n    hosts: [web1, web1]\n",
                  expected: "ship.yml:5: environments.prod.hosts[1]: host 'web1' is listed twice"),
        ErrorCase(name: "reserved env var", yaml: minimal + "    env: { SHIP_APP: x }\n",
                  expected: "ship.yml:6: environments.prod.env.SHIP_APP: SHIP_* variables are set by ship itself"),
        ErrorCase(name: "password instead of password_env", yaml: minimal + "    backup:\n      store: backups\n      db: { host: db1, engine: mysql, name: shop, password_env: \"hunter 2\" }\n",
                  expected: "ship.yml:8: environments.prod.backup.db.password_env: expected the name of an environment variable (never the password itself)"),
        ErrorCase(name: "command engine without commands", yaml: minimal + "    backup:\n      store: backups\n      db: { host: local, engine: command }\n",
                  expected: "ship.yml:8: environments.prod.backup.db.dump_command: missing required key (expected a command that writes the dump to stdout, e.g. drush sql-dump)"),
        ErrorCase(name: "a key in ship.yml", yaml: minimal + "    backup: { store: b, encryption: { key: c2VjcmV0 } }\n",
                  expected: "ship.yml:6: environments.prod.backup.encryption.key: unknown key"),
        ErrorCase(name: "encryption naming no key", yaml: minimal + "    backup: { store: b, encryption: {} }\n",
                  expected: "ship.yml:6: environments.prod.backup.encryption: expected key_env: NAME or key_file: PATH"),
        ErrorCase(name: "both key_env and key_file", yaml: minimal + "    backup: { store: b, encryption: { key_env: K, key_file: k } }\n",
                  expected: "ship.yml:6: environments.prod.backup.encryption: expected one of key_env and key_file, found both"),
        ErrorCase(name: "a key value as key_env", yaml: minimal + "    backup: { store: b, encryption: { key_env: \"c2VjcmV0+/==\" } }\n",
                  expected: "ship.yml:6: environments.prod.backup.encryption.key_env: expected the name of an environment variable holding the key"),
        ErrorCase(name: "negative keep_daily", yaml: minimal + "    backup: { store: b, keep_daily: -1 }\n",
                  expected: "ship.yml:6: environments.prod.backup.keep_daily: expected a number of days from 0 to 3650, found -1"),
        ErrorCase(name: "before_migrate without db", yaml: minimal + "    backup:\n      store: backups\n      before_migrate: true\n",
                  expected: "ship.yml:8: environments.prod.backup.before_migrate: before_migrate needs a db section to know what to back up"),
        ErrorCase(name: "not a mapping at all", yaml: "- app\n- shop\n",
                  expected: "ship.yml:1: expected a mapping of settings (app, deploy_to, environments, …), found a list"),
    ]

    @Test("every configuration error names the file, the line and the key", arguments: errorCases)
    func configurationErrors(_ testCase: ErrorCase) throws {
        try testCase.check(failure(testCase.yaml))
    }

    @Test("--batch accepts the same forms as ship.yml")
    func commandLineBatch() throws {
        #expect(try ConfigLoader.batchSpec(commandLine: "2") == BatchSpec([.count(2)]))
        #expect(try ConfigLoader.batchSpec(commandLine: "25%") == BatchSpec([.percent(25)]))
        #expect(try ConfigLoader.batchSpec(commandLine: "1,50%") == BatchSpec([.count(1), .percent(50)]))
        #expect(throws: ShipError.self) { try ConfigLoader.batchSpec(commandLine: "lots") }
    }

    @Test("an unknown environment is a usage error with a suggestion")
    func unknownEnvironment() throws {
        let config = try decode(minimal)
        #expect(throws: ShipError.usage("unknown environment 'prdo' in /work/app/ship.yml", hint: "did you mean 'prod'?")) {
            try config.environment(named: "prdo")
        }
    }
}
