import Foundation
import Hooks
import Testing
@testable import Shipper

/// `traffic:` over simulated hosts and a simulated balancer host: when each host leaves the
/// rotation and comes back, in deployments that succeed, fail, lose a host or are interrupted.
@Suite("traffic control over simulated hosts")
struct TrafficOrchestrationTests {
    let repo: TestRepository
    let pool: SimulatedPool

    init() throws {
        repo = try TestRepository()
        pool = SimulatedPool(count: 3, others: ["lb"])
        try repo.write("appspec.yml", """
            version: 1
            hooks:
              stop: [echo stop]
              install: [echo install]
              start: [echo start]
              validate: [echo validate]

            """)
        try repo.write("ship.yml", """
            app: shop
            deploy_to: /srv/shop
            environments:
              prod:
                hosts: [web1, web2, web3]
                traffic:
                  command:
                    hosts: [lb]
                    drain: drain-it
                    undrain: undrain-it
                    servers: { web2: app2 }

            """)
        try repo.commitAll("v1")
    }

    func deploy(interruption: Interruption = Interruption(), reporter: (any Reporter)? = nil) async throws -> (DeploymentResult, CollectingReporter) {
        let config = try ConfigLoader.load(currentDirectory: repo.path)
        let collector = CollectingReporter()
        useTestBundleCache()
        let pool = self.pool
        let deployment = Deployment(config: config, environment: try config.environment(named: nil), request: DeployRequest(),
                                    agents: try testAgents(), reporter: reporter ?? collector, interruption: interruption,
                                    makeTransport: { pool.transport(for: $0) })
        return (await deployment.run(), collector)
    }

    func nextRevision(_ text: String) throws {
        try repo.write("index.html", text + "\n")
        try repo.commitAll(text)
    }

    var balancerLog: [String] { pool["lb"].withLock { $0.trafficLog } }

    /// A host's steps and hooks in order: "out", "back", "hook:stop"…
    func sequence(_ events: [Event], _ host: String, includeSwitch: Bool = false) -> [String] {
        events.filter { $0.host == host }.compactMap { event in
            switch event.kind {
            case .hostStep(let step) where step.hasPrefix("out of rotation"): "out"
            case .hostStep(let step) where step.hasPrefix("back in rotation"): "back"
            case .hookStarted(let lifecycle, _): "hook:" + lifecycle.rawValue
            case .hostSwitched where includeSwitch: "switch"
            default: nil
            }
        }
    }

    @Test("each host leaves the rotation before its stop and rejoins it after validate, one batch after another; servers maps names")
    func rolling() async throws {
        _ = try await deploy()
        try nextRevision("v2")
        let start = balancerLog.count
        let (result, reporter) = try await deploy()
        #expect(result.status == .succeeded)
        #expect(Array(balancerLog.dropFirst(start)) == ["out web1", "back web1", "out app2", "back app2", "out web3", "back web3"])
        for host in ["web1", "web2", "web3"] {
            #expect(sequence(reporter.events, host) == ["out", "hook:stop", "hook:install", "hook:start", "hook:validate", "back"])
        }
    }

    @Test("a failed validate: switched hosts leave the rotation again for their rollback, and every host comes back")
    func rollback() async throws {
        _ = try await deploy()
        try nextRevision("v2")
        pool["web3"].withLock { $0.failing = [.validate] }
        let start = balancerLog.count
        let (result, reporter) = try await deploy()
        #expect(result.status == .rolledBack)
        #expect(result.message?.contains("out of rotation") == false, "\(result.message ?? "")")
        let log = Array(balancerLog.dropFirst(start))
        #expect(log.prefix(5) == ["out web1", "back web1", "out app2", "back app2", "out web3"], "\(log)")
        for server in ["web1", "app2", "web3"] { #expect(log.last { $0.hasSuffix(" " + server) } == "back \(server)", "\(log)") }
        #expect(sequence(reporter.events, "web1").suffix(5) == ["out", "hook:stop", "hook:start", "hook:validate", "back"],
                "the rollback's own dance: \(sequence(reporter.events, "web1"))")
    }

    @Test("a host lost after its stop stays out of the rotation, and the result says so")
    func lostHostStaysOut() async throws {
        _ = try await deploy()
        try nextRevision("v2")
        pool["web2"].withLock { $0.lostAtEvent = .stop }
        let (result, reporter) = try await deploy()
        #expect(result.exitCode != nil)
        #expect(result.message?.contains("out of rotation: web2") == true, "\(result.message ?? "")")
        #expect(balancerLog.last { $0.hasSuffix(" app2") } == "out app2")
        #expect(balancerLog.last { $0.hasSuffix(" web1") } == "back web1", "web1, rolled back, serves again")
        #expect(reporter.events.contains { event in
            if case .hostWarning(let message) = event.kind { event.host == "web2" && message.hasPrefix("left out of rotation") } else { false }
        })
    }

    @Test("CodeDeploy's traffic events wrap the balancer: BeforeBlockTraffic, out, AfterBlockTraffic … BeforeAllowTraffic, back, AfterAllowTraffic")
    func codeDeployTrafficEvents() async throws {
        try repo.write("appspec.yml", "version: 0.0\nos: linux\nhooks:\n  BeforeInstall:\n    - { location: hook.sh, once: true }\n" + ["BeforeBlockTraffic", "AfterBlockTraffic", "ApplicationStop", "AfterInstall",
                                                                              "ApplicationStart", "ValidateService", "BeforeAllowTraffic", "AfterAllowTraffic"]
            .map { "  \($0):\n    - location: hook.sh\n" }.joined())
        try repo.write("hook.sh", "#!/bin/sh\n", executable: true)
        try repo.commitAll("CodeDeploy")
        _ = try await deploy()
        try nextRevision("v2")
        let (result, reporter) = try await deploy()
        #expect(result.status == .succeeded)
        #expect(reporter.events.filter { if case .hookStarted(.migrate, _) = $0.kind { true } else { false } }.map(\.host) == ["web1"],
                "once: true ran on one host")
        #expect(sequence(reporter.events, "web1", includeSwitch: true) == ["hook:before_block_traffic", "out", "hook:after_block_traffic", "hook:stop", "hook:migrate", "switch",
                                                      "hook:after_install", "hook:start", "hook:validate", "hook:before_allow_traffic", "back", "hook:after_allow_traffic"])
    }

    @Test("an interrupt leaves no host out of rotation: the stopped host is started again and put back")
    func interrupt() async throws {
        _ = try await deploy()
        try nextRevision("v2")
        let interruption = Interruption()
        let collector = CollectingReporter()
        let start = balancerLog.count
        let (result, _) = try await deploy(interruption: interruption, reporter: OrchestrationTests.InterruptingReporter(interruption, collector))
        #expect(result.exitCode == .interrupted)
        #expect(Array(balancerLog.dropFirst(start)) == ["out web1", "back web1"])
        #expect(sequence(collector.events, "web1") == ["out", "hook:stop", "hook:install", "hook:start", "hook:validate", "back"])
    }
}
