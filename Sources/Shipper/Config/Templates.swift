import Foundation

/// The commented starting points `ship init` writes. Both pass `ship check` as written.
public enum Templates {
    public static func shipYAML(app: String, sharedDirs: [String] = [], sharedFiles: [String] = [], build: [String] = []) -> String {
        let dirs = sharedDirs.isEmpty ? "[]                         # e.g. [sites/default/files]" : "[" + sharedDirs.joined(separator: ", ") + "]"
        let files = sharedFiles.isEmpty ? "[]                        # e.g. [sites/default/settings.local.php]" : "[" + sharedFiles.joined(separator: ", ") + "]"
        let buildBlock = build.isEmpty
            ? "# build:                            # run once per revision on this machine; the output is bundled (docs/packaging.md)\n#   - composer install --no-dev --no-interaction --optimize-autoloader\n"
            : "build:                             # run once per revision on this machine; the output is bundled (docs/packaging.md)\n"
                + build.map { "  - \($0)\n" }.joined()
        return """
        # ship.yml: how ship deploys \(app). Reference: docs/configuration.md
        app: \(app)                        # [a-z0-9][a-z0-9-]*
        deploy_to: /srv/\(app)             # absolute path on every host
        keep_releases: 5                   # releases kept on each host (current and rollback target never pruned)

        ssh:                               # every key optional; your ~/.ssh/config applies too
          user: deploy
          # port: 22
          # identity_file: ~/.ssh/id_ed25519
          # config_file: ssh_config        # passed to ssh as -F; host aliases come from it
          # options: ["-o", "ConnectTimeout=10"]

        shared:                            # kept across releases under deploy_to/shared, linked into each release
          dirs: \(dirs)
          files: \(files)

        \(buildBlock)
        default_environment: prod

        environments:
          prod:
            revision: main                 # default revision: branch, tag or commit
            hosts:
              - web1.example.com
              - host: web2.example.com
                roles: [web, migrate]      # migrate runs once, on the first host with this role
            batch: [1, "50%"]              # one host first, then half the pool at a time
            max_fail: 0                    # hosts allowed to fail before the deployment stops
            rollback: auto                 # auto | manual
            # deploy_on_push: main         # `git push` of this branch deploys (ship hook install)
            # env: { APP_ENV: prod }       # extra hook environment (no secrets)
            # backup:
            #   store: backups             # a local directory, or s3://bucket/prefix
            #   keep: 7
            #   before_migrate: true
            #   db: { host: web2.example.com, engine: mysql, name: \(app), user: \(app), password_env: DB_PASSWORD }

        """
    }

    public static let appspecYAML = """
        # appspec.yml: lifecycle hooks, run on every host from the release directory.
        # Reference: docs/appspec.md (AWS CodeDeploy's `version: 0.0` files work too).
        version: 1
        hooks:
          # The release being replaced, before the new one is installed (not on a first deploy).
          stop: []
          #  - { run: scripts/maintenance-on.sh, timeout: 60 }
          # After unpacking and linking shared paths, before `current` switches.
          install: []
          #  - { run: composer install --no-dev --no-interaction, timeout: 900 }
          # Once per deployment, before any host switches.
          migrate: []
          #  - { run: vendor/bin/drush updatedb -y }
          # After `current` switched.
          start: []
          #  - { run: sudo systemctl reload php8.2-fpm }
          # A failure here fails the host (and rolls it back).
          validate: []
          #  - { run: curl -fsS http://localhost/health, timeout: 30 }

        """
}

extension Templates {
    /// An app name derived from a directory's name.
    public static func appName(forDirectory directory: String) -> String {
        ShipConfigDecoder.sanitizedAppName((directory as NSString).lastPathComponent)
    }
}
