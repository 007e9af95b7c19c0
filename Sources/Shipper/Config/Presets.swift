/// `ship init --preset`: a ship.yml, an appspec.yml and small hook scripts that follow each
/// framework's own conventions (docs/drupal.md, docs/wordpress.md, docs/laravel.md).
public enum Preset: String, CaseIterable, Sendable {
    case drupal
    case wordpress
    case laravel
    case `static`

    public struct File: Sendable {
        public var path: String
        public var text: String
        public var executable: Bool

        public init(path: String, text: String, executable: Bool) {
            self.path = path
            self.text = text
            self.executable = executable
        }
    }

    /// Everything `ship init --preset` writes.
    public func files(app: String) -> [File] {
        [File(path: "ship.yml", text: shipYAML(app: app), executable: false), File(path: "appspec.yml", text: appspec, executable: false)]
            + scripts.map { File(path: "deploy/" + $0.name, text: $0.text, executable: !$0.name.hasSuffix(".php")) }
    }

    func shipYAML(app: String) -> String {
        switch self {
        case .drupal:
            Templates.shipYAML(app: app, sharedDirs: ["web/sites/default/files", "private"], sharedFiles: ["web/sites/default/settings.local.php"],
                               build: ["composer install --no-dev --no-interaction --no-progress --optimize-autoloader"])
        case .wordpress:
            Templates.shipYAML(app: app, sharedDirs: ["wp-content/uploads"], sharedFiles: ["wp-config.php"])
        case .laravel:
            Templates.shipYAML(app: app, sharedDirs: ["storage"], sharedFiles: [".env"],
                               build: ["composer install --no-dev --no-interaction --no-progress --optimize-autoloader"])
        case .static:
            Templates.shipYAML(app: app)
        }
    }

    var appspec: String {
        switch self {
        case .drupal:
            """
            # appspec.yml for Drupal (docs/drupal.md). Hooks run in the new release's directory.
            version: 1
            hooks:
              # Once per deployment, on one host, before any host switches: maintenance mode on,
              # `drush deploy` (updatedb, config:import, cache:rebuild, deploy:hook), maintenance off
              # again, even when it fails.
              migrate:
                - { run: deploy/drupal-migrate.sh, timeout: 1800 }
              # Right after `current` switched on each host: caches rebuilt, PHP-FPM told.
              after_install:
                - { run: deploy/drupal-after-switch.sh, timeout: 300 }
                - { run: deploy/php-reload.sh, timeout: 60 }
              validate:
                - { run: deploy/drupal-validate.sh, timeout: 60 }

            """
        case .wordpress:
            """
            # appspec.yml for WordPress (docs/wordpress.md). Hooks run in the new release's directory.
            version: 1
            hooks:
              # Once per deployment, before any host switches: the live site shows WordPress's
              # maintenance page exactly while the database upgrade runs.
              migrate:
                - { run: deploy/wordpress-migrate.sh, timeout: 900 }
              # Right after `current` switched on each host.
              after_install:
                - { run: deploy/wordpress-after-switch.sh, timeout: 300 }
                - { run: deploy/php-reload.sh, timeout: 60 }

            """
        case .laravel:
            """
            # appspec.yml for Laravel (docs/laravel.md). Hooks run in the new release's directory.
            version: 1
            hooks:
              # Once per deployment, before any host switches: `artisan down`, `migrate --force`,
              # `artisan up` again, even when the migration fails (storage/ is shared, so every host
              # is down while it runs).
              migrate:
                - { run: deploy/laravel-migrate.sh, timeout: 1800 }
              # Right after `current` switched on each host: config, route and view caches; queue
              # workers (hosts with role worker) restart on the new code.
              after_install:
                - { run: deploy/laravel-after-switch.sh, timeout: 300 }
                - { run: deploy/php-reload.sh, timeout: 60 }

            """
        case .static:
            """
            # appspec.yml for a static site (docs/getting-started.md): no hooks are needed; the web
            # server serves deploy_to/current, which switches atomically.
            version: 1
            hooks:
              validate: []
              #  - { run: test -f index.html }

            """
        }
    }

    var scripts: [(name: String, text: String)] {
        let reload = (name: "php-reload.sh", text: """
            #!/bin/sh
            # After `current` switched: PHP-FPM reloaded, so no worker keeps serving the old release
            # from its realpath cache or OPcache. With nginx's $realpath_root (docs) new requests use
            # the new release anyway; the reload also frees the old bytecode. As a user other than
            # root it needs one sudoers line (docs): deploy ALL=(root) NOPASSWD: /usr/bin/systemctl reload php8.2-fpm
            # Without it this warns and goes on. PHP_FPM_SERVICE names the service when there are several.
            set -u
            service=${PHP_FPM_SERVICE:-$(ls /lib/systemd/system /etc/systemd/system 2>/dev/null | sed -n 's/^\\(php[0-9.]*-fpm\\)\\.service$/\\1/p' | head -n 1)}
            if [ -z "$service" ]; then
                echo "no php-fpm service on this host: nothing to reload"
                exit 0
            fi
            if [ "$(id -u)" -eq 0 ]; then
                systemctl reload "$service" && echo "reloaded $service" && exit 0
            elif sudo -n systemctl reload "$service" 2>/dev/null; then
                echo "reloaded $service"
                exit 0
            fi
            echo "warning: could not reload $service as $(id -un); see the sudoers line in the docs" >&2
            exit 0

            """)
        switch self {
        case .drupal:
            return [
                (name: "drupal-migrate.sh", text: """
                    #!/bin/sh
                    # ship's migrate, once per deployment: maintenance mode exactly while `drush deploy`
                    # runs, and always off again afterwards, also when it fails.
                    set -eu
                    if [ -x vendor/bin/drush ]; then drush=vendor/bin/drush; else drush=drush; fi
                    "$drush" --yes state:set system.maintenance_mode 1 --input-format=integer
                    trap '"$drush" --yes state:set system.maintenance_mode 0 --input-format=integer; "$drush" --yes cache:rebuild' EXIT
                    "$drush" --yes deploy

                    """),
                (name: "drupal-after-switch.sh", text: """
                    #!/bin/sh
                    # Each host, right after the switch: caches rebuilt for the new code.
                    set -eu
                    if [ -x vendor/bin/drush ]; then drush=vendor/bin/drush; else drush=drush; fi
                    "$drush" --yes cache:rebuild

                    """),
                (name: "drupal-validate.sh", text: """
                    #!/bin/sh
                    # A host whose Drupal cannot bootstrap fails (and is rolled back).
                    set -eu
                    if [ -x vendor/bin/drush ]; then drush=vendor/bin/drush; else drush=drush; fi
                    "$drush" status --field=bootstrap | grep -q Successful

                    """),
                reload,
            ]
        case .wordpress:
            return [
                (name: "wordpress-migrate.sh", text: """
                    #!/bin/sh
                    # ship's migrate, once per deployment: the live release shows WordPress's maintenance
                    # page (its .maintenance file) exactly while the database upgrade runs, and never
                    # afterwards, also when it fails. WP-CLI when the host has it, else deploy/wordpress.php.
                    set -eu
                    live="$SHIP_DEPLOY_TO/current"
                    if [ -d "$live" ]; then
                        echo '<?php $upgrading = time();' > "$live/.maintenance"
                        trap 'rm -f "$live/.maintenance"' EXIT
                    fi
                    if command -v wp >/dev/null 2>&1; then
                        if wp --path=. core is-installed; then wp --path=. core update-db; else echo "WordPress is not installed yet: nothing to upgrade"; fi
                    else
                        php deploy/wordpress.php upgrade-db
                    fi

                    """),
                (name: "wordpress-after-switch.sh", text: """
                    #!/bin/sh
                    # Each host, right after the switch: the object cache flushed for the new code.
                    set -eu
                    if command -v wp >/dev/null 2>&1; then
                        if wp --path=. core is-installed; then wp --path=. cache flush; fi
                    else
                        php deploy/wordpress.php cache-flush
                    fi

                    """),
                (name: "wordpress.php", text: """
                    <?php
                    // WordPress's own upgrade and cache calls for ship's hooks, on hosts without WP-CLI:
                    //   php deploy/wordpress.php upgrade-db | cache-flush
                    // (what wp-admin/upgrade.php and `wp cache flush` do). Not served over HTTP.
                    if (PHP_SAPI !== 'cli') {
                        http_response_code(404);
                        exit;
                    }
                    $command = $argv[1] ?? '';
                    if (!in_array($command, ['upgrade-db', 'cache-flush'], true)) {
                        fwrite(STDERR, "usage: php deploy/wordpress.php upgrade-db|cache-flush\n");
                        exit(2);
                    }
                    // Loads WordPress without sending a site that is not installed yet to its installer.
                    define('WP_INSTALLING', true);
                    $_SERVER['HTTP_HOST'] = $_SERVER['HTTP_HOST'] ?? 'localhost';
                    require dirname(__DIR__) . '/wp-load.php';
                    if (!is_blog_installed()) {
                        echo "WordPress is not installed yet (its installer makes the tables): nothing to do\n";
                        exit(0);
                    }
                    if ($command === 'cache-flush') {
                        wp_cache_flush();
                        echo "object cache flushed\n";
                        exit(0);
                    }
                    require_once ABSPATH . 'wp-admin/includes/upgrade.php';
                    $before = (int) get_option('db_version');
                    if ($before === (int) $wp_db_version) {
                        echo "database at version $before: nothing to upgrade\n";
                        exit(0);
                    }
                    wp_upgrade();
                    wp_cache_flush();
                    echo "database upgraded from version $before to " . get_option('db_version') . "\n";

                    """),
                reload,
            ]
        case .laravel:
            return [
                (name: "laravel-migrate.sh", text: """
                    #!/bin/sh
                    # ship's migrate, once per deployment: the application is down (storage/ is shared, so
                    # on every host) exactly while the migrations run, and up again, also when they fail.
                    set -eu
                    php artisan down --retry=15
                    trap 'php artisan up' EXIT
                    php artisan migrate --force

                    """),
                (name: "laravel-after-switch.sh", text: """
                    #!/bin/sh
                    # Each host, right after the switch: caches built for the new code; queue workers
                    # (hosts with role worker) restart on it.
                    set -eu
                    php artisan config:cache
                    php artisan route:cache
                    php artisan view:cache
                    case ",${SHIP_ROLES:-}," in
                        *,worker,*) php artisan queue:restart ;;
                    esac

                    """),
                reload,
            ]
        case .static:
            return []
        }
    }

    /// The web server configuration that serves each request from the release `current` points
    /// at when it arrives (nginx's $realpath_root), printed by `ship init`.
    public func webServer(app: String) -> String {
        let root: String
        switch self {
        case .drupal: root = "/srv/\(app)/current/web"
        case .wordpress: root = "/srv/\(app)/current"
        case .laravel: root = "/srv/\(app)/current/public"
        case .static: root = "/srv/\(app)/current"
        }
        if self == .static {
            return """
                server {
                    root \(root);    # the symlink: each request follows it to the live release
                    location / { try_files $uri $uri/ =404; }
                }
                """
        }
        return """
            server {
                root \(root);
                index index.php;
                location / { try_files $uri $uri/ /index.php?$query_string; }
                location ~ \\.php$ {
                    include fastcgi_params;
                    fastcgi_pass unix:/run/php/php8.2-fpm.sock;
                    # The release `current` points at now, resolved per request: PHP never mixes two releases.
                    fastcgi_param SCRIPT_FILENAME $realpath_root$fastcgi_script_name;
                    fastcgi_param DOCUMENT_ROOT $realpath_root;
                }
            }
            """
    }
}
