import Foundation
import Testing
@testable import Shipper

/// AWS against moto's server on loopback: EC2 tag and Auto Scaling group inventory, and an ELBv2
/// target group around each host's lifecycle, on real sandbox hosts that stand in for the
/// instances (an ssh alias per instance id).
@Suite("AWS inventory and target groups against moto", .tags(.endToEnd), .serialized)
struct AWSEndToEndTests {
    /// What the setup made in moto: instance ids by purpose, the target group's ARN.
    struct Fleet: Decodable {
        var web: [String]
        var other: [String]
        var scaled: [String]
        var target_group: String
    }

    static let credentials = ["AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"]

    /// Three instances tagged Role=web Env=prod (registered in target group `shop`), two others,
    /// and an Auto Scaling group `shop-web` of two; made with boto3 from moto's own virtualenv.
    static func fleet(_ moto: MotoServer) throws -> Fleet {
        let python = (MotoServer.executable as NSString).deletingLastPathComponent + "/python"
        let script = """
            import boto3, json, sys
            kw = dict(endpoint_url=sys.argv[1], region_name="eu-west-1", aws_access_key_id="test", aws_secret_access_key="test")
            ec2 = boto3.client("ec2", **kw); elb = boto3.client("elbv2", **kw); asg = boto3.client("autoscaling", **kw)
            vpc = [v for v in ec2.describe_vpcs()["Vpcs"] if v.get("IsDefault")][0]["VpcId"]
            def run(count, tags):
                r = ec2.run_instances(ImageId="ami-12c6146b", MinCount=count, MaxCount=count,
                                      TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}])
                return sorted(i["InstanceId"] for i in r["Instances"])
            web = run(3, {"Role": "web", "Env": "prod"})
            other = run(1, {"Role": "worker", "Env": "prod"}) + run(1, {"Role": "web", "Env": "staging"})
            tg = elb.create_target_group(Name="shop", Protocol="HTTP", Port=80, VpcId=vpc, TargetType="instance")["TargetGroups"][0]["TargetGroupArn"]
            elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": i} for i in web])
            asg.create_launch_configuration(LaunchConfigurationName="shop-lc", ImageId="ami-12c6146b", InstanceType="t2.micro")
            asg.create_auto_scaling_group(AutoScalingGroupName="shop-web", LaunchConfigurationName="shop-lc", MinSize=2, MaxSize=4,
                                          DesiredCapacity=2, AvailabilityZones=["eu-west-1a"])
            group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["shop-web"])["AutoScalingGroups"][0]
            print(json.dumps({"web": web, "other": other, "scaled": sorted(i["InstanceId"] for i in group["Instances"]), "target_group": tg}))
            """
        let result = try run(python, ["-c", script, moto.endpoint])
        guard result.status == 0 else { throw TestFailure("moto setup failed: \(result.stderr)") }
        return try JSONDecoder().decode(Fleet.self, from: Data(result.stdout.utf8))
    }

    /// ssh aliases: each instance id reaches the sandbox host standing in for it.
    static func alias(_ pool: SandboxPool, _ pairs: [(instance: String, host: String)]) throws {
        let config = try String(contentsOfFile: pool.sshConfig, encoding: .utf8)
        var text = config
        for (instance, host) in pairs {
            guard let start = config.range(of: "Host \(host)\n") else { throw TestFailure("no \(host) in ssh_config") }
            let block = String(config[start.upperBound...]).components(separatedBy: "\n\n").first ?? ""
            text += "\nHost \(instance)\n" + block + "\n"
        }
        try text.write(toFile: pool.sshConfig, atomically: false, encoding: .utf8)
    }

    /// The target's state in moto's target group.
    static func state(_ moto: MotoServer, _ arn: String, _ instance: String) async throws -> String {
        let aws = try AWSQuery(region: "eu-west-1", endpoint: moto.endpoint, environment: credentials, what: "test")
        return try await TargetGroups(aws: aws, arns: [arn]).health(arn, instance).state
    }

    @Test("EC2 tags and an Auto Scaling group resolve to the right instances, beside the static hosts; ship check --hosts says so")
    func inventory() async throws {
        let moto = try MotoServer()
        let fleet = try Self.fleet(moto)
        let aws = AWSInventory(region: "eu-west-1", endpoint: moto.endpoint)
        var tagged = aws
        tagged.tags = ["Role": "web", "Env": "prod"]
        #expect(try await Inventory.instances(tagged, variables: Self.credentials).map(\.id) == fleet.web)
        var scaled = aws
        scaled.autoScalingGroup = "shop-web"
        #expect(try await Inventory.instances(scaled, variables: Self.credentials).map(\.id) == fleet.scaled)
        var both = scaled
        both.tags = ["Role": "web"]
        #expect(try await Inventory.instances(both, variables: Self.credentials).isEmpty, "in the group and tagged: none is both")
        var missing = aws
        missing.autoScalingGroup = "nope"
        await #expect(throws: ShipError.self) { try await Inventory.instances(missing, variables: Self.credentials) }

        // Beside static hosts: a static host that is also found keeps its entry and gains its id.
        let config = try ShipConfigDecoder.decode(yaml: """
            app: shop
            deploy_to: /srv/shop
            environments:
              prod:
                hosts: [web9, { host: \(fleet.web[0]), roles: [db] }]
                inventory: { aws: { tags: { Role: web, Env: prod }, region: eu-west-1, endpoint: "\(moto.endpoint)", address: instance_id, roles: [web] } }
            """, file: "/x/ship.yml", displayName: "ship.yml")
        let resolved = try await Inventory.resolve(try config.environment(named: "prod"), variables: Self.credentials)
        #expect(resolved.hosts.map(\.name) == ["web9"] + fleet.web)
        #expect(resolved.hosts.map(\.roles) == [[], ["db"], ["web"], ["web"]])
        #expect(resolved.hosts.map(\.instanceId) == [nil] + fleet.web)

        let pool = try SandboxPool(hosts: 3)
        try Self.alias(pool, Array(zip(fleet.web, pool.hosts)))
        let app = try SandboxApp(pool: pool, extraEnvironment: """
                inventory: { aws: { tags: { Role: web, Env: prod }, region: eu-west-1, endpoint: "\(moto.endpoint)", address: instance_id, roles: [web] } }
            """, hosts: [])
        let check = try ShipperTests.ship(["check", "test", "--hosts"], in: app.repo.path, environment: Self.credentials)
        #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
        #expect(check.stdout.contains("test: inventory aws (tags Env=prod, Role=web): 3 instances: " + fleet.web.joined(separator: ", ")), "\(check.stdout)")
        for instance in fleet.web { #expect(check.stdout.contains("test \(instance): "), "\(check.stdout)") }
        let noCredentials = try ShipperTests.ship(["check", "test", "--hosts"], in: app.repo.path,
                                                  environment: ["AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""])
        #expect(noCredentials.status == 2 && noCredentials.stderr.contains("inventory: aws needs AWS_ACCESS_KEY_ID"), "\(noCredentials.stderr)")
    }

    @Test("a target group: each host deregistered (unused) before its stop, registered after validate, in turn; hosts from the inventory")
    func targetGroup() async throws {
        let moto = try MotoServer()
        let fleet = try Self.fleet(moto)
        let pool = try SandboxPool(hosts: 3, os: ["bookworm+rsync+python3"])
        try Self.alias(pool, Array(zip(fleet.web, pool.hosts)))
        for host in pool.hosts { _ = try pool.output(host, "install -d -o deploy /srv/shop") }
        // ship's EC2 and ELBv2 calls go through a front that checks their signatures (moto does not).
        let scratch = try TemporaryDirectory("ship-aws-front")
        let front = try AWSFront(upstream: moto.endpoint, instance: "i-none", directory: scratch)
        let app = try SandboxApp(pool: pool, extraEnvironment: """
                ssh: { user: deploy }
                inventory: { aws: { tags: { Role: web, Env: prod }, region: eu-west-1, endpoint: "\(front.url)", address: instance_id } }
                traffic: { aws_target_group: { target_groups: ["\(fleet.target_group)"], region: eu-west-1, endpoint: "\(front.url)" } }
            """, hosts: [])
        // What the target group says of this host while its hooks run.
        try app.repo.write("bin/tg-state", """
            #!/usr/bin/python3
            import os, re, sys, urllib.parse, urllib.request
            body = urllib.parse.urlencode({"Action": "DescribeTargetHealth", "Version": "2015-12-01", "TargetGroupArn": "\(fleet.target_group)",
                                           "Targets.member.1.Id": os.environ["SHIP_INSTANCE_ID"]}).encode()
            request = urllib.request.Request("\(moto.endpoint)/", data=body, headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Authorization": "AWS4-HMAC-SHA256 Credential=test/20261203/eu-west-1/elasticloadbalancing/aws4_request, SignedHeaders=host, Signature=0"})
            state = re.search(r"<State>(\\w+)</State>", urllib.request.urlopen(request).read().decode()).group(1)
            with open(os.environ["SHIP_DEPLOY_TO"] + "/tg-states.log", "a") as log:
                log.write(sys.argv[1] + " " + state + "\\n")
            """)
        _ = try run("chmod", ["+x", app.repo.directory.file("bin/tg-state")])
        try app.writeAppspec("""
            version: 1
            hooks:
              stop: [{ run: bin/tg-state stop }]
              validate: [{ run: bin/tg-state validate }]
            """)
        try app.commit("v1")
        let (first, _) = try app.ship(["deploy", "test"], environment: Self.credentials)
        #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
        try app.repo.write("index.html", "v2\n")
        try app.commit("v2")
        let (second, events) = try app.ship(["deploy", "test"], environment: Self.credentials)
        #expect(second.status == 0, "\(second.stdout)\(second.stderr)")
        #expect(named(events, "deployment_started").last?["hosts"] as? [String] == fleet.web)
        for (instance, host) in zip(fleet.web, pool.hosts) {
            // v1: validate while out; v2: stop and validate while out.
            #expect(try pool.output(host, "cat /srv/shop/tg-states.log") == "validate unused\nstop unused\nvalidate unused")
            #expect(try await Self.state(moto, fleet.target_group, instance) == "healthy")
            let order = events.filter { $0["host"] as? String == instance }.compactMap { event -> String? in
                switch event["event"] as? String {
                case "host_step": (event["step"] as? String).flatMap { $0.hasPrefix("out of rotation") ? "out" : $0.hasPrefix("back in rotation") ? "back" : nil }
                case "hook_started": event["hook"] as? String
                default: nil
                }
            }
            #expect(order == ["out", "stop", "validate", "back"], "\(instance): \(order)")
        }
        // In turn: each host back before the next one left.
        let turns = events.compactMap { event -> String? in
            guard event["event"] as? String == "host_step", let step = event["step"] as? String, let host = event["host"] as? String else { return nil }
            return step.hasPrefix("out of rotation") ? "out \(host)" : step.hasPrefix("back in rotation") ? "back \(host)" : nil
        }
        #expect(turns == fleet.web.flatMap { ["out \($0)", "back \($0)"] })
        // Every call ship made was signed as AWS checks it.
        let calls = front.requests
        #expect(!calls.isEmpty && calls.allSatisfy { $0["valid"] as? Bool == true }, "\(calls.filter { $0["valid"] as? Bool != true })")
        let actions = Set(calls.compactMap { ($0["params"] as? [String: String])?["Action"] })
        #expect(actions.isSuperset(of: ["DescribeInstances", "DeregisterTargets", "RegisterTargets", "DescribeTargetHealth"]), "\(actions)")
    }
}
