import Foundation
import Testing
@testable import Shipper

/// A real WordPress (Debian's package, scripts/wordpress.sh) made an application repository with
/// `ship init --preset wordpress`, deployed as `deploy` to two hosts with their own root
/// filesystem running nginx (the preset's printed server block) and PHP-FPM, behind HAProxy on a
/// third, with a MariaDB server this suite starts and the uploads on storage both hosts mount (as
/// NFS would be). Installed through WordPress's own installer, written to through its XML-RPC API.
@Suite("a real WordPress behind HAProxy", .tags(.endToEnd), .serialized, .timeLimit(.minutes(10)))
struct WordPressEndToEndTests {
    /// The hosts' system: the web stack and the database client (the backup's dump runs on web1).
    static let system = "bookworm+nginx-light+haproxy+php8.2-fpm+php8.2-cli+php8.2-mysql+php8.2-xml+mariadb-client"
    static let password = "wp-admin-Secret-8k2"

    final class Site {
        let db: MariaDBServer
        let pool: SandboxPool
        let repo: TestRepository
        let uploads: TemporaryDirectory
        /// Port 80: Debian's fastcgi_params pass nginx's $host as HTTP_HOST, without a port, and
        /// WordPress would redirect a site on another port to itself.
        var balancer: String { pool.network + ".13" }
        var url: String { "http://\(balancer)" }
        var secret: [String: String] { ["WP_DB_PASSWORD": db.password, "XDG_CACHE_HOME": repo.directory.file(".cache")] }

        init() throws {
            db = try MariaDBServer()
            pool = try SandboxPool(hosts: 3, os: [WordPressEndToEndTests.system])
            repo = try TestRepository()
            uploads = try TemporaryDirectory("ship-wp-uploads")
            let tree = try run(repositoryRoot + "/scripts/wordpress.sh", [])
            guard tree.status == 0 else { throw TestFailure("scripts/wordpress.sh: \(tree.stderr)") }
            let wordpress = tree.stdout.trimmingCharacters(in: .whitespacesAndNewlines)

            // The application repository: WordPress, the preset's files, a theme of the site's own,
            // and a page that prints a constant of the release it runs from.
            let copy = try run("cp", ["-a", wordpress + "/.", repo.path])
            guard copy.status == 0 else { throw TestFailure("cp: \(copy.stderr)") }
            try FileManager.default.removeItem(atPath: repo.directory.file(".ship-wordpress-1"))
            let initialized = try ShipperTests.ship(["init", "--preset", "wordpress", "--force"], in: repo.path)
            guard initialized.status == 0 else { throw TestFailure("ship init: \(initialized.stderr)") }
            #expect(initialized.stdout.contains("$realpath_root"))
            let preset = try String(contentsOfFile: repo.directory.file("ship.yml"), encoding: .utf8)
            // The preset's settings, with the app's name, the sandbox's ssh config and its hosts.
            let top = preset.components(separatedBy: "default_environment:")[0]
                .split(separator: "\n", omittingEmptySubsequences: false).map { line in
                    line.hasPrefix("app:") ? "app: wp" : line.hasPrefix("deploy_to:") ? "deploy_to: /srv/wp" : String(line)
                }.joined(separator: "\n")
                .replacingOccurrences(of: "  user: deploy\n", with: "  user: deploy\n  config_file: \(pool.sshConfig)\n")
            try repo.write("ship.yml", top + """
                environments:
                  test:
                    hosts:
                      - { host: web1, roles: [web, migrate] }
                      - web2
                    batch: 1
                    traffic:
                      haproxy: { hosts: [web3], socket: /run/haproxy/admin.sock, backend: wp, drain_timeout: 5 }
                    backup:
                      store: backups
                      db: { host: web1, engine: mysql, name: \(db.database), user: \(db.user), address: "\(db.address)", password_env: WP_DB_PASSWORD }

                """)
            try repo.write("wp-content/themes/shipshop/style.css", "/*\nTheme Name: Ship Shop\n*/\n")
            try repo.write("wp-content/themes/shipshop/index.php", """
                <!DOCTYPE html>
                <html><head><title><?php bloginfo('name'); ?></title></head>
                <body><h1><?php bloginfo('name'); ?></h1>
                <?php while (have_posts()) : the_post(); ?><h2><?php the_title(); ?></h2><?php endwhile; ?>
                </body></html>
                """)
            try repo.write("version.php", """
                <?php
                require __DIR__ . '/inc/version.php';
                header('Content-Type: text/plain');
                echo APP_VERSION, ' ', basename(readlink('/srv/wp/current')), "\\n";
                """)
            try version("v1")
            try repo.write(".gitignore", "backups/\n")

            // Each host: deploy may give files the web server's group; /srv/wp is deploy's; the
            // uploads are one directory both hosts mount.
            _ = try run("chown", ["33:33", uploads.path])
            _ = try run("chmod", ["2775", uploads.path])
            for host in ["web1", "web2"] {
                _ = try pool.output(host, "usermod -aG www-data deploy && install -d -o deploy /srv/wp")
            }
            let shared = try TemporaryDirectory("ship-wp-shared")
            try wpConfig().write(toFile: shared.file("wp-config.php"), atomically: true, encoding: .utf8)
            _ = try run("chmod", ["640", shared.file("wp-config.php")])
            try repo.commitAll("WordPress \(wordpress) with ship's WordPress preset")
            let setup = try ShipperTests.ship(["setup", "test", "--shared-from", shared.path, "--web-user", "www-data"], in: repo.path, environment: secret)
            guard setup.status == 0 else { throw TestFailure("ship setup: \(setup.stdout)\(setup.stderr)") }
            for host in ["web1", "web2"] {
                let pid = try run(repositoryRoot + "/scripts/sandbox.sh", ["pid", pool.directory.file("pool"), host]).stdout
                    .trimmingCharacters(in: .whitespacesAndNewlines)
                let mountPoint = pool.directory.file("pool/\(host)/root/srv/wp/shared/wp-content/uploads")
                let mounted = try run("nsenter", ["-t", pid, "-m", "--", "mount", "--bind", uploads.path, mountPoint])
                guard mounted.status == 0 else { throw TestFailure("mount: \(mounted.stderr)") }
                try startWebServer(host)
            }
            try startBalancer()
        }

        func version(_ value: String) throws {
            try repo.write("inc/version.php", "<?php\ndefine('APP_VERSION', '\(value)');\n")
        }

        func wpConfig() -> String {
            let salts = ["AUTH_KEY", "SECURE_AUTH_KEY", "LOGGED_IN_KEY", "NONCE_KEY", "AUTH_SALT", "SECURE_AUTH_SALT", "LOGGED_IN_SALT", "NONCE_SALT"]
                .map { "define('\($0)', '\(UUID().uuidString)');" }.joined(separator: "\n")
            return """
                <?php
                define('DB_NAME', '\(db.database)');
                define('DB_USER', '\(db.user)');
                define('DB_PASSWORD', '\(db.password)');
                define('DB_HOST', '\(db.address)');
                define('DB_CHARSET', 'utf8mb4');
                define('DB_COLLATE', '');
                define('WP_HOME', '\(url)');
                define('WP_SITEURL', '\(url)');
                define('WP_DEFAULT_THEME', 'shipshop');
                \(salts)
                $table_prefix = 'wp_';
                if (!defined('ABSPATH')) {
                    define('ABSPATH', __DIR__ . '/');
                }
                require_once ABSPATH . 'wp-settings.php';

                """
        }

        /// nginx with the preset's server block (listening on the host's own address), and PHP-FPM.
        func startWebServer(_ host: String) throws {
            let address = "\(pool.network).\(10 + Int(host.dropFirst(3))!)"
            let server = Preset.wordpress.webServer(app: "wp").replacingOccurrences(of: "server {\n", with: "server {\n    listen \(address):80;\n")
            try pool.write(host, "/etc/nginx/ship-wp.conf", """
                user www-data;
                worker_processes 2;
                pid /run/nginx-wp.pid;
                error_log /tmp/nginx-error.log;
                events { worker_connections 512; }
                http {
                  include /etc/nginx/mime.types;
                  access_log off;
                \(server)
                }
                """)
            _ = try pool.output(host, "mkdir -p /run/php && php-fpm8.2 --daemonize && nginx -c /etc/nginx/ship-wp.conf")
        }

        func startBalancer() throws {
            try pool.write("web3", "/etc/haproxy/ship-wp.cfg", """
                global
                  stats socket /run/haproxy/admin.sock mode 660 level admin group deploy
                defaults
                  mode http
                  timeout connect 2s
                  timeout client 20s
                  timeout server 20s
                frontend site
                  bind \(balancer):80
                  default_backend wp
                backend wp
                  balance roundrobin
                  server web1 \(pool.network).11:80 check inter 300ms fall 2 rise 1
                  server web2 \(pool.network).12:80 check inter 300ms fall 2 rise 1
                """)
            _ = try pool.output("web3", "mkdir -p /run/haproxy && haproxy -D -f /etc/haproxy/ship-wp.cfg")
        }


        func ship(_ arguments: [String]) throws -> (result: ProcessResult, events: [[String: Any]]) {
            var arguments = arguments
            arguments.append("--json")
            let result = try ShipperTests.ship(arguments, in: repo.path, environment: secret)
            let events = result.stdout.split(separator: "\n").compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
            return (result, events)
        }

        /// An HTTP request with curl: the status and the body.
        func http(_ path: String, form: [String]? = nil, xml: String? = nil, host: String? = nil) throws -> (status: Int, body: String) {
            var arguments = ["-s", "-o", "-", "-w", "\n%{redirect_url}\n%{http_code}", "--max-time", "30"]
            if let form { arguments += form.flatMap { ["--data-urlencode", $0] } }
            if xml != nil { arguments += ["-H", "Content-Type: text/xml", "--data-binary", "@-"] }
            let result = try run("curl", arguments + ["http://\(host ?? balancer)\(path)"], input: xml)
            let lines = result.stdout.trimmingCharacters(in: .newlines).components(separatedBy: "\n")
            let status = Int(lines.last ?? "") ?? 0
            // A redirect says where to (as the body).
            let body = (300..<400).contains(status) ? "redirect to " + lines[lines.count - 2] : lines.dropLast(2).joined(separator: "\n")
            return (status, body)
        }

        /// An XML-RPC call to WordPress as its administrator; the response body.
        func xmlrpc(_ method: String, _ parameters: String) throws -> String {
            let call = """
                <?xml version="1.0"?><methodCall><methodName>\(method)</methodName><params>
                <param><value><int>1</int></value></param>
                <param><value><string>admin</string></value></param>
                <param><value><string>\(WordPressEndToEndTests.password)</string></value></param>
                <param><value>\(parameters)</value></param>
                </params></methodCall>
                """
            let (status, body) = try http("/xmlrpc.php", xml: call)
            guard status == 200, !body.contains("<fault>") else { throw TestFailure("\(method): \(status) \(body)") }
            return body
        }

        func option(_ name: String) throws -> String {
            try db.sql("SELECT option_value FROM wp_options WHERE option_name = '\(name)'")
        }
    }

    /// Requests in a loop until stopped, each with when it was sent and answered.
    final class Poller: @unchecked Sendable {
        struct Answer {
            var sent: Date
            var received: Date
            var status: Int
            var body: String
        }

        private let lock = NSLock()
        private var stopped = false
        private var answers: [Answer] = []
        private let finished = DispatchSemaphore(value: 0)

        init(_ url: String) {
            Thread { [self] in
                while !lock.withLock({ stopped }) {
                    let sent = Date()
                    let answer: Answer = switch HealthProbe.getBlocking(url, timeout: 20) {
                    case .success(let got): Answer(sent: sent, received: Date(), status: got.status, body: got.body)
                    case .failure(let error): Answer(sent: sent, received: Date(), status: 0, body: error.message)
                    }
                    lock.withLock { answers.append(answer) }
                    usleep(5_000)
                }
                finished.signal()
            }.start()
        }

        func stop() -> [Answer] {
            lock.withLock { stopped = true }
            finished.wait()
            return lock.withLock { answers }
        }
    }

    @Test("installed over HTTP, deployed, rolled back, backed up and restored: title through HAProxy, uploads kept, the new code right after each host's switch, 503 only while the database upgrade runs")
    func wordpress() throws {
        let site = try Site()
        let (first, _) = try site.ship(["deploy", "test"])
        #expect(first.status == 0, "\(first.stdout)\(first.stderr)")

        // WordPress's own installer, over HTTP through the balancer.
        let installer = try site.http("/wp-admin/install.php?step=2", form: [
            "weblog_title=Ship Shop", "user_name=admin", "admin_password=\(Self.password)", "admin_password2=\(Self.password)",
            "pw_weak=1", "admin_email=admin@example.com", "blog_public=0",
        ])
        #expect(installer.status == 200 && installer.body.contains("Success!"), "\(installer.status) \(installer.body.suffix(2000))")
        let front = try site.http("/")
        #expect(front.status == 200 && front.body.contains("<title>Ship Shop</title>"), "\(front.status) \(front.body.prefix(2000))")

        // Posts and an upload, through WordPress's XML-RPC API.
        for number in 1...3 {
            _ = try site.xmlrpc("wp.newPost", """
                <struct><member><name>post_title</name><value><string>Post \(number)</string></value></member>
                <member><name>post_content</name><value><string>Body \(number)</string></value></member>
                <member><name>post_status</name><value><string>publish</string></value></member></struct>
                """)
        }
        let uploaded = "uploaded before the second deploy \(UUID().uuidString)"
        let response = try site.xmlrpc("wp.uploadFile", """
            <struct><member><name>name</name><value><string>note.txt</string></value></member>
            <member><name>type</name><value><string>text/plain</string></value></member>
            <member><name>bits</name><value><base64>\(Data(uploaded.utf8).base64EncodedString())</base64></value></member></struct>
            """)
        let uploadURL = try #require(response.components(separatedBy: "<name>url</name><value><string>").dropFirst().first?
            .components(separatedBy: "</string>").first, "\(response)")
        let uploadPath = try #require(uploadURL.components(separatedBy: site.balancer).last)
        #expect(uploadPath.hasPrefix("/wp-content/uploads/"))
        #expect(try site.http(uploadPath).body.trimmingCharacters(in: .newlines) == uploaded)
        #expect(try site.http("/").body.contains("<h2>Post 3</h2>"))

        // The second revision: new code, a database WordPress must upgrade (its recorded version
        // set back), and a site migration of its own that takes a while.
        try site.version("v2")
        let migrate = try String(contentsOfFile: site.repo.directory.file("deploy/wordpress-migrate.sh"), encoding: .utf8)
        try site.repo.write("deploy/wordpress-migrate.sh", migrate + "sleep 1.5 # the site's own data migration\n", executable: true)
        try site.repo.commitAll("v2")
        try site.db.sql("UPDATE wp_options SET option_value = '51917' WHERE option_name = 'db_version'")
        // Through the balancer (the migrate host is out of rotation while it migrates), and on the
        // migrate host itself (its login page: no canonical redirect to the balancer's name).
        let front2 = Poller(site.url + "/")
        let migrateHost = Poller("http://\(site.pool.network).11/wp-login.php")
        let hosts = ["web1": Poller("http://\(site.pool.network).11/version.php"), "web2": Poller("http://\(site.pool.network).12/version.php")]
        let (second, events) = try site.ship(["deploy", "test"])
        let pages = front2.stop()
        let direct = migrateHost.stop()
        let versions = hosts.mapValues { $0.stop() }
        #expect(second.status == 0, "\(second.stdout)\(second.stderr)")
        let release = try #require(named(events, "deployment_finished").last?["release"] as? String)
        #expect(try site.option("db_version") == "53496", "the database upgrade ran")

        // The new code right after the switch: once a host's answer showed `current` at the new
        // release, every later answer of that host is the new code; nothing ever failed.
        for (host, answers) in versions {
            #expect(answers.allSatisfy { $0.status == 200 }, "\(host): \(answers.filter { $0.status != 200 }.prefix(3).map(\.body))")
            let said = answers.map { $0.body.trimmingCharacters(in: .whitespacesAndNewlines) }
            #expect(said.first?.hasPrefix("v1 ") == true && said.last == "v2 \(release)", "\(host): \(said.first ?? "") … \(said.last ?? "")")
            for index in said.indices.dropFirst() where said[index - 1].hasSuffix(" \(release)") {
                #expect(said[index].hasPrefix("v2 "), "\(host): \(said[index]) after \(said[index - 1])")
            }
        }
        // Maintenance: on the migrate host, 503 only while the migrate hook ran, and then it did
        // show; through the balancer, never an error at all.
        let started = try #require(events.first { $0["event"] as? String == "hook_started" && $0["hook"] as? String == "migrate" })
        let ended = try #require(events.first { $0["event"] as? String == "hook_finished" && $0["hook"] as? String == "migrate" })
        let parse = ISO8601DateFormatter()
        parse.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let from = try #require(parse.date(from: started["time"] as? String ?? "")).addingTimeInterval(-0.5)
        let until = try #require(parse.date(from: ended["time"] as? String ?? "")).addingTimeInterval(0.5)
        let maintenance = direct.filter { $0.status == 503 }
        #expect(!maintenance.isEmpty, "the maintenance page showed while the database upgrade ran: \(Dictionary(grouping: direct, by: \.status).mapValues(\.count))")
        #expect(maintenance.allSatisfy { $0.received >= from && $0.sent <= until }, "503 outside the migrate step")
        #expect(maintenance.allSatisfy { $0.body.contains("Briefly unavailable for scheduled maintenance") })
        #expect(direct.allSatisfy { $0.status == 200 || $0.status == 503 }, "\(direct.filter { ![200, 503].contains($0.status) }.prefix(3).map { "\($0.status) \($0.body.prefix(200))" })")
        #expect(pages.allSatisfy { $0.status == 200 }, "\(pages.filter { $0.status != 200 }.prefix(3).map { "\($0.status) \($0.body.prefix(200))" })")
        #expect(try site.pool.ssh("web1", "test -e /srv/wp/current/.maintenance").status == 1)

        // The upload is still served after the deploy, and after a rollback.
        #expect(try site.http(uploadPath).body.trimmingCharacters(in: .newlines) == uploaded)
        let (rollback, _) = try site.ship(["rollback", "test"])
        #expect(rollback.status == 0, "\(rollback.stdout)\(rollback.stderr)")
        for host in ["11", "12"] {
            #expect(try site.http("/version.php", host: "\(site.pool.network).\(host)").body.hasPrefix("v1 "))
        }
        #expect(try site.http(uploadPath).body.trimmingCharacters(in: .newlines) == uploaded)
        #expect(try site.http("/").body.contains("<title>Ship Shop</title>"))

        // ship backup db and ship restore db round-trip WordPress's database.
        let count = "SELECT COUNT(*) FROM wp_posts WHERE post_type = 'post' AND post_status = 'publish'"
        let options = "SELECT option_name, option_value FROM wp_options WHERE option_name IN ('blogname', 'siteurl', 'home', 'template', 'db_version') ORDER BY option_name"
        let (posts, values) = (try site.db.sql(count), try site.db.sql(options))
        #expect(posts == "4", "WordPress's own first post and three")
        let (backup, backupEvents) = try site.ship(["backup", "db", "test"])
        #expect(backup.status == 0, "\(backup.stderr)")
        let id = try #require(named(backupEvents, "backup_finished").first?["id"] as? String)
        try site.db.sql("DELETE FROM wp_posts WHERE post_type = 'post'; UPDATE wp_options SET option_value = 'Changed' WHERE option_name = 'blogname'")
        #expect(try site.db.sql(count) == "0")
        let (restore, _) = try site.ship(["restore", "db", "test", id, "--yes"])
        #expect(restore.status == 0, "\(restore.stderr)")
        #expect(try site.db.sql(count) == posts)
        #expect(try site.db.sql(options) == values)
        #expect(try site.http("/").body.contains("<h2>Post 2</h2>"))
    }
}
