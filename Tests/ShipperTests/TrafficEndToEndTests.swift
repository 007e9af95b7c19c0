import Foundation
import Testing
@testable import Shipper

/// A pool behind a real HAProxy: three hosts serving `current/` with nginx, a fourth running
/// HAProxy (Debian's packages, in the hosts' own root filesystem), requests through the balancer
/// all along. With `traffic: haproxy` no request fails while hosts stop, switch and roll back;
/// without it, some do.
@Suite("traffic control behind HAProxy", .tags(.endToEnd), .serialized)
struct TrafficEndToEndTests {
    static let system = WordPressEndToEndTests.system // one cached tree for both suites

    /// web1..web3 serve the app, web4 balances them.
    final class Balanced {
        let pool: SandboxPool
        let app: SandboxApp
        var balancer: String { pool.network + ".14" }
        var url: String { "http://\(balancer):8080/" }
        /// HAProxy's admin socket as this machine reaches it: through the balancer host's root.
        private(set) var socket = ""

        /// What balances web1..web3 on web4, and how ship drives it.
        enum Balancer {
            /// HAProxy, without `traffic:`.
            case haproxyAlone
            /// HAProxy with `traffic: haproxy`.
            case haproxy
            /// nginx with an upstream file, with `traffic: command` running drain/undrain scripts
            /// (docs/load-balancers.md's example).
            case nginxCommand
        }

        init(_ balancer: Balancer) throws {
            pool = try SandboxPool(hosts: 4, os: [TrafficEndToEndTests.system])
            let network = pool.network
            app = try SandboxApp(pool: pool, extraEnvironment: Balanced.environment(balancer, network: network), hosts: ["web1", "web2", "web3"])
            for (index, host) in pool.hosts.enumerated() {
                _ = try pool.output(host, "install -d -o deploy /srv/shop")
                guard index < 3 else { continue }
                // nginx serves current/public; the app's `stop` hook puts it in maintenance (503).
                let address = "\(pool.network).\(11 + index)"
                try pool.write(host, "/etc/nginx/ship-test.conf", """
                    user www-data;
                    worker_processes 1;
                    pid /run/nginx-ship-test.pid;
                    error_log /tmp/nginx-error.log;
                    events { worker_connections 512; }
                    http {
                      access_log off;
                      server {
                        listen \(address):8080;
                        root /srv/shop/current/public;
                        location / {
                          if (-f /srv/shop/shared/maintenance) { return 503; }
                        }
                      }
                    }
                    """)
            }
            try app.writeAppspec("""
                version: 1
                hooks:
                  stop: [{ run: touch "$SHIP_DEPLOY_TO/shared/maintenance" }]
                  install: [{ run: sleep 1 }]
                  start: [{ run: rm -f "$SHIP_DEPLOY_TO/shared/maintenance" }]
                  validate: [{ run: test -f public/index.html }]
                """)
            if case .nginxCommand = balancer {
                try startNginxBalancer()
                return
            }
            let servers = (0..<3).map { "  server web\($0 + 1) \(network).\(11 + $0):8080 check inter 300ms fall 2 rise 1" }
            try pool.write("web4", "/etc/haproxy/ship-test.cfg", """
                global
                  stats socket /run/haproxy/admin.sock mode 660 level admin group deploy
                defaults
                  mode http
                  timeout connect 2s
                  timeout client 10s
                  timeout server 10s
                frontend app
                  bind \(pool.network).14:8080
                  default_backend shop
                backend shop
                  balance roundrobin
                \(servers.joined(separator: "\n"))
                """)
            _ = try pool.output("web4", "mkdir -p /run/haproxy && haproxy -D -f /etc/haproxy/ship-test.cfg")
            let pid = try run(repositoryRoot + "/scripts/sandbox.sh", ["pid", pool.directory.file("pool"), "web4"]).stdout
                .trimmingCharacters(in: .whitespacesAndNewlines)
            socket = "/proc/\(pid)/root/run/haproxy/admin.sock"
        }

        /// nginx on web4 proxying to an upstream file; the drain and undrain scripts mark a
        /// server `down` in it (or not) and reload nginx, returning once the old workers, which
        /// still route to the server, have finished.
        func startNginxBalancer() throws {
            try pool.write("web4", "/etc/nginx/ship-upstream.conf", (0..<3).map { "server \(pool.network).\(11 + $0):8080;" }.joined(separator: "\n"))
            try pool.write("web4", "/etc/nginx/ship-lb.conf", """
                user www-data;
                worker_processes 1;
                pid /run/nginx-lb.pid;
                error_log /tmp/nginx-lb.log;
                events { worker_connections 512; }
                http {
                  access_log off;
                  upstream shop { include /etc/nginx/ship-upstream.conf; }
                  server {
                    listen \(pool.network).14:8080;
                    location / { proxy_pass http://shop; }
                  }
                }
                """)
            for (name, mark) in [("lb-drain", " down"), ("lb-undrain", "")] {
                try pool.write("web4", "/usr/local/bin/" + name, """
                    #!/bin/sh
                    set -eu
                    echo "$SHIP_TRAFFIC $SHIP_SERVER ($SHIP_HOST)" >> /var/log/lb-actions.log
                    sed -i "s/^server $SHIP_SERVER:8080.*;/server $SHIP_SERVER:8080\(mark);/" /etc/nginx/ship-upstream.conf
                    old=$(pgrep -P "$(cat /run/nginx-lb.pid)" || true)
                    nginx -c /etc/nginx/ship-lb.conf -s reload
                    for pid in $old; do
                      while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
                    done
                    """)
                _ = try pool.output("web4", "chmod 755 /usr/local/bin/\(name)")
            }
            _ = try pool.output("web4", "nginx -c /etc/nginx/ship-lb.conf")
        }

        static func environment(_ balancer: Balancer, network: String) -> String {
            var text = "    ssh: { user: deploy }\n    batch: 1\n"
            switch balancer {
            case .haproxyAlone: break
            case .haproxy:
                text += """
                        traffic:
                          haproxy:
                            hosts: [web4]
                            socket: /run/haproxy/admin.sock
                            backend: shop
                            drain_timeout: 5

                    """
            case .nginxCommand:
                text += """
                        traffic:
                          command:
                            hosts: [root@web4]
                            drain: lb-drain
                            undrain: lb-undrain
                            servers: { web1: \(network).11, web2: \(network).12, web3: \(network).13 }

                    """
            }
            return text
        }


        func startWebServers() throws {
            for host in pool.hosts.prefix(3) { _ = try pool.output(host, "nginx -c /etc/nginx/ship-test.conf") }
        }

        /// Web servers started, v1 deployed, and (HAProxy) every server counted up before any load.
        func startWithFirstRelease() throws {
            try startWebServers()
            _ = try page("v1")
            let (first, _) = try app.ship(["deploy", "test"])
            guard first.status == 0 else { throw TestFailure("the first deploy failed: \(first.stdout)\(first.stderr)") }
            if !socket.isEmpty {
                #expect(HAProxySampler.waitUntil(socket: socket, backend: "shop") { $0.values.allSatisfy { $0 == "UP" } && $0.count == 3 })
            }
        }

        func page(_ version: String) throws -> String {
            try app.repo.write("public/index.html", "shop \(version)\n")
            return try app.commit(version)
        }
    }

    /// `ship ARGS` with requests going through the balancer meanwhile: the result, events, what
    /// the requests got, and the states HAProxy's `show stat` gave each server.
    func underLoad(_ pool: Balanced, _ arguments: [String]) throws -> (result: ProcessResult, events: [[String: Any]], load: LoadGenerator.Tally, states: Set<String>) {
        let load = LoadGenerator(url: pool.url)
        let sampler = HAProxySampler(socket: pool.socket, backend: "shop")
        let (result, events) = try pool.app.ship(arguments)
        let tally = load.stop()
        return (result, events, tally, sampler.stop())
    }

    func steps(_ events: [[String: Any]], _ host: String) -> [String] {
        events.filter { $0["host"] as? String == host }.compactMap { event in
            switch event["event"] as? String {
            case "host_step": "step " + (event["step"] as? String ?? "")
            case "hook_started": "hook " + (event["hook"] as? String ?? "")
            default: nil
            }
        }
    }

    @Test("rolling deploy, failed deploy rolled back, and ship rollback through HAProxy: not one request fails")
    func noFailedRequests() throws {
        let pool = try Balanced(.haproxy)
        try pool.startWithFirstRelease()

        // A rolling deployment.
        _ = try pool.page("v2")
        let deploy = try underLoad(pool, ["deploy", "test"])
        #expect(deploy.result.status == 0, "\(deploy.result.stdout)\(deploy.result.stderr)")
        #expect(deploy.load.ok > 50, "the load generator ran: \(deploy.load)")
        #expect(deploy.load.failed.isEmpty, "\(deploy.load)")
        for host in ["web1", "web2", "web3"] {
            #expect(deploy.states.contains("\(host) MAINT"), "HAProxy showed \(host) in maintenance: \(deploy.states.sorted())")
            let order = steps(deploy.events, host)
            let out = order.firstIndex { $0.hasPrefix("step out of rotation: web4: haproxy shop/\(host): drained in ") }
            let stop = order.firstIndex { $0.hasPrefix("hook stop") }
            let validate = order.lastIndex { $0.hasPrefix("hook validate") }
            let back = order.firstIndex { $0.hasPrefix("step back in rotation: web4: haproxy shop/\(host): back in rotation (UP)") }
            #expect(out != nil && stop != nil && validate != nil && back != nil, "\(order)")
            if let out, let stop, let validate, let back { #expect(out < stop && validate < back, "\(order)") }
        }
        #expect(try pool.pool.output("web1", "cat /srv/shop/current/public/index.html") == "shop v2")

        // A deployment whose validate fails on web2 (v3's appspec; v2's, which the rollback
        // runs, has no such check): web1 and web2 are rolled back, out of rotation meanwhile.
        try pool.app.writeAppspec("""
            version: 1
            hooks:
              stop: [{ run: touch "$SHIP_DEPLOY_TO/shared/maintenance" }]
              install: [{ run: sleep 1 }]
              start: [{ run: rm -f "$SHIP_DEPLOY_TO/shared/maintenance" }]
              validate: [{ run: 'test "$SHIP_HOST" != web2 || grep -q v2 public/index.html' }]
            """)
        _ = try pool.page("v3")
        let failed = try underLoad(pool, ["deploy", "test"])
        #expect(failed.result.status == 1, "\(failed.result.stdout)\(failed.result.stderr)")
        #expect(named(failed.events, "deployment_finished").last?["status"] as? String == "rolled_back")
        #expect(failed.load.ok > 50, "\(failed.load)")
        #expect(failed.load.failed.isEmpty, "\(failed.load)")
        #expect(failed.states.contains("web1 MAINT") && failed.states.contains("web2 MAINT"), "\(failed.states.sorted())")
        let web1 = steps(failed.events, "web1")
        #expect(web1.filter { $0.hasPrefix("step out of rotation:") }.count == 2, "out for the deploy, out again for its rollback: \(web1)")
        #expect(web1.last { $0.hasPrefix("step back in rotation:") } != nil, "\(web1)")
        for host in ["web1", "web2", "web3"] {
            #expect(try pool.pool.output(host, "cat /srv/shop/current/public/index.html") == "shop v2")
        }

        // ship rollback: every host back to v1.
        let rollback = try underLoad(pool, ["rollback", "test"])
        #expect(rollback.result.status == 0, "\(rollback.result.stdout)\(rollback.result.stderr)")
        #expect(rollback.load.ok > 50, "\(rollback.load)")
        #expect(rollback.load.failed.isEmpty, "\(rollback.load)")
        #expect(rollback.states.contains("web3 MAINT"), "\(rollback.states.sorted())")
        for host in ["web1", "web2", "web3"] {
            #expect(try pool.pool.output(host, "cat /srv/shop/current/public/index.html") == "shop v1")
        }
        // All back in rotation at the end.
        #expect(HAProxySampler.waitUntil(socket: pool.socket, backend: "shop") { $0.values.allSatisfy { $0 == "UP" } && $0.count == 3 })
    }

    @Test("without traffic control the same rolling deploy fails requests (so the test above can fail)")
    func failedRequestsWithout() throws {
        let pool = try Balanced(.haproxyAlone)
        try pool.startWithFirstRelease()
        _ = try pool.page("v2")
        let deploy = try underLoad(pool, ["deploy", "test"])
        #expect(deploy.result.status == 0, "\(deploy.result.stdout)\(deploy.result.stderr)")
        #expect(!deploy.load.failed.isEmpty, "requests reached hosts in maintenance: \(deploy.load)")
        #expect(!deploy.states.contains { $0.hasSuffix(" MAINT") }, "ship did not touch HAProxy: \(deploy.states.sorted())")
    }
}

extension TrafficEndToEndTests {
    @Test("nginx as the balancer, driven by the command provider's scripts: a rolling deploy fails no request")
    func nginxCommand() throws {
        let pool = try Balanced(.nginxCommand)
        try pool.startWithFirstRelease()
        _ = try pool.page("v2")
        let deploy = try underLoad(pool, ["deploy", "test"])
        #expect(deploy.result.status == 0, "\(deploy.result.stdout)\(deploy.result.stderr)")
        #expect(deploy.load.ok > 50, "\(deploy.load)")
        #expect(deploy.load.failed.isEmpty, "\(deploy.load)")
        let network = pool.pool.network
        let actions = try pool.pool.output("web4", "cat /var/log/lb-actions.log").split(separator: "\n").map(String.init)
        let once = (1...3).flatMap { ["drain \(network).1\($0) (web\($0))", "undrain \(network).1\($0) (web\($0))"] }
        #expect(actions == once + once, "each deploy drained and undrained each host in turn, by its server name: \(actions)")
        #expect(try pool.pool.output("web4", "grep -c down /etc/nginx/ship-upstream.conf || true") == "0")
    }
}

extension TrafficEndToEndTests {
    @Test("health_check.from: the GET goes through the named host, resolving names there; without it the same URL fails and the host is rolled back")
    func healthCheckFrom() throws {
        let pool = try SandboxPool(hosts: 2)
        // Listening on web2's address, named by web2 alone (its /etc/hosts): only a GET made
        // through web2 finds it.
        let server = try PythonHTTPServer(handler: """
            class H(http.server.BaseHTTPRequestHandler):
                def do_GET(self):
                    self.send_response(200)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                def log_message(self, *args):
                    pass
            """, address: pool.network + ".12")
        let app = try SandboxApp(pool: pool, extraEnvironment: """
                health_check: { url: "http://web2:\(server.port)/health", from: web2, retries: 0 }
            """, hosts: ["web1"])
        try app.writeAppspec("version: 1\n")
        try app.commit("v1")
        let (first, events) = try app.ship(["deploy", "test"])
        #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
        let steps = named(events, "host_step").compactMap { $0["step"] as? String }
        #expect(steps.contains("health check: GET http://web2:\(server.port)/health from web2 answered 200"), "\(steps)")
        #expect(try run("pgrep", ["-f", "127.0.0.1:[0-9]* .*web2 cat > /dev/null"]).status == 1, "the tunnel is gone with the run")

        let yml = try String(contentsOfFile: app.repo.directory.file("ship.yml"), encoding: .utf8)
        try app.repo.write("ship.yml", yml.replacingOccurrences(of: ", from: web2", with: ""))
        try app.repo.write("index.html", "v2\n")
        try app.commit("v2")
        let (second, _) = try app.ship(["deploy", "test"])
        #expect(second.status == 3, "the rollback's check fails the same way from here: \(second.stdout)")
        #expect(second.stdout.contains("health check GET http://web2:\(server.port)/health failed after 1 attempt: Could"), "\(second.stdout)")
        _ = server
    }
}

/// Requests through the balancer from two threads, 10 ms apart (gentle on a 2-core CI), until stopped
/// (and at most `limit`): what each got.
final class LoadGenerator: @unchecked Sendable {
    struct Tally: CustomStringConvertible {
        var ok = 0
        var failed: [String] = []
        var description: String { "\(ok) ok, \(failed.count) failed\(failed.isEmpty ? "" : ": " + failed.prefix(5).joined(separator: "; "))" }
    }

    private let lock = NSLock()
    private var stopped = false
    private var tally = Tally()
    private let finished = DispatchGroup()

    init(url: String, workers: Int = 2, limit: Int = 40_000) {
        for _ in 0..<workers {
            finished.enter()
            Thread { [self] in
                var count = 0
                while !lock.withLock({ stopped }) && count < limit {
                    count += 1
                    let outcome: String? = switch HealthProbe.getBlocking(url, timeout: 5) {
                    case .success(let answer) where answer.status == 200: nil
                    case .success(let answer): "status \(answer.status)"
                    case .failure(let error): error.message
                    }
                    lock.withLock {
                        if let outcome { tally.failed.append(outcome) } else { tally.ok += 1 }
                    }
                    usleep(10_000)
                }
                finished.leave()
            }.start()
        }
    }

    func stop() -> Tally {
        lock.withLock { stopped = true }
        finished.wait()
        return lock.withLock { tally }
    }
}

/// `show stat` of HAProxy's admin socket, read every 20 ms until stopped: each server's
/// states seen, as "NAME STATUS".
final class HAProxySampler: @unchecked Sendable {
    private let lock = NSLock()
    private var stopped = false
    private var seen: Set<String> = []
    private let finished = DispatchSemaphore(value: 0)

    init(socket: String, backend: String) {
        Thread { [self] in
            while !lock.withLock({ stopped }) {
                let states = Self.states(socket: socket, backend: backend)
                lock.withLock { for (server, status) in states { seen.insert("\(server) \(status)") } }
                usleep(20_000)
            }
            finished.signal()
        }.start()
    }

    func stop() -> Set<String> {
        lock.withLock { stopped = true }
        finished.wait()
        return lock.withLock { seen }
    }

    /// Polls until `condition` holds for the servers' states (at most 20 s).
    static func waitUntil(socket: String, backend: String, _ condition: ([String: String]) -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            if condition(states(socket: socket, backend: backend)) { return true }
            usleep(50_000)
        }
        return false
    }

    /// Server name → status of the backend's servers; empty when HAProxy cannot be asked.
    static func states(socket path: String, backend: String) -> [String: String] {
        let text = command("show stat", socket: path)
        let lines = text.split(separator: "\n")
        guard let header = lines.first, header.hasPrefix("# ") else { return [:] }
        let columns = header.dropFirst(2).split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard let proxy = columns.firstIndex(of: "pxname"), let server = columns.firstIndex(of: "svname"),
              let status = columns.firstIndex(of: "status") else { return [:] }
        var states: [String: String] = [:]
        for line in lines.dropFirst() {
            let fields = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard fields.count > max(proxy, server, status), fields[proxy] == backend,
                  fields[server] != "BACKEND", fields[server] != "FRONTEND" else { continue }
            states[fields[server]] = fields[status]
        }
        return states
    }

    static func command(_ command: String, socket path: String) -> String {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return "" }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            buffer.copyBytes(from: bytes.prefix(buffer.count - 1))
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else { return "" }
        _ = Array((command + "\n").utf8).withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        var answer = Data()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = read(fd, &buffer, buffer.count)
            guard count > 0 else { break }
            answer.append(contentsOf: buffer[0..<count])
        }
        return String(decoding: answer, as: UTF8.self)
    }
}
