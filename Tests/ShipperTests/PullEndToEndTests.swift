import Foundation
import Testing
import Hooks
@testable import Shipper

/// `ship-agent pull` on a fresh sandbox host standing in for an EC2 instance: the user-data script
/// of docs/autoscaling.md, run as it is, fetches the agent `ship publish-agent` put in moto's S3,
/// and the agent installs the environment's current release with the instance role's credentials
/// from a loopback instance metadata service, then completes the Auto Scaling lifecycle action.
/// A loopback AWS front (AWSFront) checks every signature (curl's `--aws-sigv4`) with botocore
/// before passing S3 requests on to moto, and answers `CompleteLifecycleAction` itself.
@Suite("ship-agent pull: instances that install themselves", .tags(.endToEnd), .serialized)
struct PullEndToEndTests {
    static let credentials = ["AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing-secret", "API_TOKEN": "controller-secret-value"]

    /// The user-data script of docs/autoscaling.md, with this suite's settings in its first lines.
    static func userData(lifecycleHook: String) throws -> String {
        let doc = try String(contentsOfFile: repositoryRoot + "/docs/autoscaling.md", encoding: .utf8)
        guard let start = doc.range(of: "```sh\n"), let end = doc.range(of: "\n```", range: start.upperBound..<doc.endIndex) else {
            throw TestFailure("docs/autoscaling.md has no sh block")
        }
        var script = String(doc[start.upperBound..<end.lowerBound])
        for (line, replacement) in [("STORE=s3://acme-artifacts/ship", "STORE=s3://fleet-artifacts/ship"),
                                    ("ENV=prod", "ENV=test"), ("LIFECYCLE_HOOK=ship-install", "LIFECYCLE_HOOK=\(lifecycleHook)")] {
            guard script.contains(line) else { throw TestFailure("the user-data script has no `\(line)`") }
            script = script.replacingOccurrences(of: line, with: replacement)
        }
        return script
    }

    /// Makes one instance in moto's EC2 (eu-west-1), tagged Env=test only; its id.
    static func instance(_ moto: MotoServer) throws -> String {
        let python = (MotoServer.executable as NSString).deletingLastPathComponent + "/python"
        let script = """
            import boto3, sys
            ec2 = boto3.client("ec2", endpoint_url=sys.argv[1], region_name="eu-west-1", aws_access_key_id="test", aws_secret_access_key="test")
            r = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1,
                                  TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Env", "Value": "test"}]}])
            print(r["Instances"][0]["InstanceId"])
            """
        let result = try run(python, ["-c", script, moto.endpoint])
        guard result.status == 0 else { throw TestFailure("moto setup failed: \(result.stderr)") }
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test("user-data installs the agent and the current release without migrate, with the role's credentials; ABANDON when validate fails, CONTINUE after; every signature checked; an instance that joined mid-deployment is caught up")
    func pullOnBoot() throws {
        let (moto, client) = try ArtifactsEndToEndTests.store()
        let instance = try Self.instance(moto)
        let scratch = try TemporaryDirectory("ship-pull")
        let aws = try AWSFront(upstream: moto.endpoint, instance: instance, directory: scratch)

        let pool = try SandboxPool(hosts: 3, os: ["bookworm+curl"])
        // web3 stands in for the instance (its ssh alias is the instance id); the environment
        // lists web1 and web2, and the inventory the instances tagged Role=web, Env=test.
        try AWSEndToEndTests.alias(pool, [(instance, "web3")])
        let app = try SandboxApp(pool: pool, extraEnvironment: """
                ssh: { user: deploy }
                artifacts: { store: s3://fleet-artifacts/ship, endpoint: "\(moto.endpoint)" }
                secrets: [API_TOKEN]
                inventory: { aws: { tags: { Role: web, Env: test }, region: eu-west-1, endpoint: "\(moto.endpoint)", address: instance_id, roles: [web] } }

            """, hosts: ["web1", "{ host: web2, roles: [web, migrate] }"])
        let record = #"echo "$SHIP_EVENT $SHIP_RELEASE roles=$SHIP_ROLES token=$API_TOKEN" >> /srv/shop/shared/log/hooks.log"#
        // A deployment that finishes while an instance pulls: where the test left a newer record,
        // validate puts it in the store as current.json.
        let finishMeanwhile = "; if [ -f /srv/shop/shared/next.json ]; then curl -sf --user test:test --aws-sigv4 aws:amz:us-east-1:s3 -X PUT "
            + "-H \"Content-Type: application/json\" --data-binary @/srv/shop/shared/next.json \(moto.endpoint)/fleet-artifacts/ship/envs/shop/test/current.json && rm /srv/shop/shared/next.json; fi"
        func appspec(migrate: String) -> String {
            """
            version: 1
            hooks:
              install: [{ run: '\(record); while [ -e /srv/shop/shared/hold ]; do sleep 0.1; done' }]
              migrate: [{ run: '\(record)\(migrate)' }]
              start: [{ run: '\(record)' }]
              validate: [{ run: '\(record)\(finishMeanwhile); echo "checking with $API_TOKEN"; test ! -e /srv/shop/shared/fail-validate' }]

            """
        }
        try app.writeAppspec(appspec(migrate: ""))
        try app.repo.write("index.html", "v1\n")
        try app.commit("v1")
        let (first, firstEvents) = try app.ship(["deploy", "test"], environment: Self.credentials)
        #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
        let v1 = try #require(named(firstEvents, "deployment_finished").last?["release"] as? String)
        let v1Commit = try app.repo.git(["rev-parse", "HEAD"])

        // The store's record says how to install the release, and holds the secret's name only.
        let currentText = String(decoding: try client.getObject(key: "ship/envs/shop/test/current.json"), as: UTF8.self)
        let current = try #require(try JSONSerialization.jsonObject(with: Data(currentText.utf8)) as? [String: Any])
        let install = try #require(current["install"] as? [String: Any])
        #expect(install["deploy_to"] as? String == "/srv/shop" && install["secret_names"] as? [String] == ["API_TOKEN"])
        #expect((install["environment"] as? [String: String])?["GREETING"] == "hello world")
        #expect(!currentText.contains("controller-secret-value"), "no secret's value in the store")

        // The agent in the store.
        let publish = try ShipperTests.ship(["publish-agent", "test"], in: app.repo.path, environment: Self.credentials)
        #expect(publish.status == 0, "\(publish.stdout)\(publish.stderr)")
        let agentSHA = try #require(try run("sha256sum", [staticAgentPath]).stdout.split(separator: " ").first.map(String.init))
        #expect(String(decoding: try client.getObject(key: "ship/agent/ship-agent-linux-x86_64.sha256"), as: UTF8.self)
                == "\(agentSHA)  ship-agent-linux-x86_64\n")
        #expect(try client.size(of: "ship/agent/0.3.0/ship-agent-linux-x86_64") != nil)
        #expect(publish.stdout.contains("s3://fleet-artifacts/ship/agent/ship-agent-linux-x86_64"), "\(publish.stdout)")

        // Boot 1 of the instance: validate fails there. The user-data runs as root, as cloud-init
        // runs it; the AWS endpoints are the loopback ones.
        let bootEnvironment = "AWS_EC2_METADATA_SERVICE_ENDPOINT=\(aws.url) AWS_ENDPOINT_URL_S3=\(aws.url) "
            + "AWS_ENDPOINT_URL_AUTO_SCALING=\(aws.url) API_TOKEN=instance-secret-value"
        try pool.write("web3", "/root/user-data", try Self.userData(lifecycleHook: "ship-install"))
        _ = try pool.output("web3", "install -d -o deploy -g deploy /srv/shop /srv/shop/shared /srv/shop/shared/log && touch /srv/shop/shared/fail-validate")
        let failed = try pool.ssh("web3", "env \(bootEnvironment) sh /root/user-data")
        #expect(failed.status == 1, "\(failed.stdout)\(failed.stderr)")
        #expect(failed.stderr.contains("release \(v1) was not installed: validate"), "\(failed.stderr)")
        #expect(failed.stdout.contains("lifecycle hook ship-install of shop-web completed for \(instance): ABANDON"), "\(failed.stdout)")
        #expect(try pool.output("web3", "cmp /usr/local/bin/ship-agent /srv/shop/.ship/bin/ship-agent && echo same") == "same")

        // Boot 2: the cause is gone; the same script installs it and says CONTINUE. While it runs
        // (in v1's validate), a deployment of release v1-2 finishes: the pull follows it.
        _ = try pool.output("web3", "rm /srv/shop/shared/fail-validate")
        let next = "\(v1)-2"
        var meanwhile = current
        meanwhile["release"] = next
        meanwhile["deployment_id"] = "d-meanwhile"
        let meanwhileData = try JSONSerialization.data(withJSONObject: meanwhile)
        _ = try JSONDecoder().decode(EnvironmentRecord.self, from: meanwhileData)
        try pool.write("web3", "/srv/shop/shared/next.json", String(decoding: meanwhileData, as: UTF8.self))
        let pulled = try pool.ssh("web3", "env \(bootEnvironment) sh /root/user-data")
        #expect(pulled.status == 0, "\(pulled.stdout)\(pulled.stderr)")
        #expect(pulled.stdout.contains("credentials: the instance's role shop-web"), "\(pulled.stdout)")
        #expect(pulled.stdout.contains("release \(next) (revision \(v1Commit.prefix(12))) is current in the store"), "\(pulled.stdout)")
        #expect(pulled.stdout.contains("done: release \(next) is live on this host (migrate not run"), "\(pulled.stdout)")
        #expect(pulled.stdout.contains("checking with ***") && !pulled.stdout.contains("instance-secret-value"), "the secret is masked: \(pulled.stdout)")
        #expect(try pool.output("web3", "readlink /srv/shop/current") == "releases/\(next)")
        #expect(try pool.output("web3", "cat /srv/shop/current/REVISION") == v1Commit)
        #expect(try pool.output("web3", "stat -c %U /srv/shop/current/index.html") == "deploy", "installed as the deploy user")
        let web3Hooks = try pool.output("web3", "cat /srv/shop/shared/log/hooks.log").split(separator: "\n").map(String.init)
        #expect(web3Hooks == ["install \(v1) roles=web token=instance-secret-value", "start \(v1) roles=web token=instance-secret-value",
                              "validate \(v1) roles=web token=instance-secret-value",
                              "start \(v1) roles=web token=instance-secret-value", "validate \(v1) roles=web token=instance-secret-value",
                              "install \(next) roles=web token=instance-secret-value", "start \(next) roles=web token=instance-secret-value",
                              "validate \(next) roles=web token=instance-secret-value"],
                "boot 1: install, start, failed validate; boot 2 resumes from the switch, then installs the release deployed meanwhile; never migrate: \(web3Hooks)")
        #expect(aws.lifecycle == [
            ["Action": "CompleteLifecycleAction", "Version": "2011-01-01", "AutoScalingGroupName": "shop-web", "LifecycleHookName": "ship-install",
             "InstanceId": instance, "LifecycleActionResult": "ABANDON"],
            ["Action": "CompleteLifecycleAction", "Version": "2011-01-01", "AutoScalingGroupName": "shop-web", "LifecycleHookName": "ship-install",
             "InstanceId": instance, "LifecycleActionResult": "CONTINUE"],
        ])
        let signed = aws.requests
        #expect(!signed.isEmpty && signed.allSatisfy { $0["valid"] as? Bool == true }, "every signature checks: \(signed)")
        #expect(signed.filter { $0["service"] as? String == "s3" && ($0["path"] as? String ?? "").hasSuffix(".tar.gz") }.count == 1,
                "the bundle fetched once: the second boot and release \(next) (the same bundle) had it cached")
        // Run again: nothing to do, and nothing changes.
        let again = try pool.ssh("web3", "env \(bootEnvironment) runuser -u deploy -- /usr/local/bin/ship-agent pull --store s3://fleet-artifacts/ship --app shop --env test")
        #expect(again.status == 0 && again.stdout.contains("this host is on release \(next) already"), "\(again.stdout)\(again.stderr)")
        // As root into the deploy user's deploy_to: refused, with the command that works.
        let asRoot = try pool.ssh("web3", "env \(bootEnvironment) /usr/local/bin/ship-agent pull --store s3://fleet-artifacts/ship --app shop --env test")
        #expect(asRoot.status == 1 && asRoot.stderr.contains("run it as deploy: runuser -u deploy --"), "\(asRoot.stderr)")

        // A pull killed (SIGKILL, as a reboot would) in the middle of its install hook leaves its
        // lock and a half-made release: the next pull takes the lock over and installs.
        let held = "\(v1)-3"
        meanwhile["release"] = held
        meanwhile["deployment_id"] = "d-held"
        try client.putObject(key: "ship/envs/shop/test/current.json", data: try JSONSerialization.data(withJSONObject: meanwhile))
        let pullCommand = "env \(bootEnvironment) runuser -u deploy -- /usr/local/bin/ship-agent pull --store s3://fleet-artifacts/ship --app shop --env test"
        _ = try pool.output("web3", "touch /srv/shop/shared/hold && (\(pullCommand) < /dev/null > /tmp/killed-pull.log 2>&1 &)")
        let inHook = try pool.ssh("web3", "for i in $(seq 600); do grep -q '^install \(held) ' /srv/shop/shared/log/hooks.log && exit 0; sleep 0.1; done; exit 1")
        let killedLog = try pool.output("web3", "cat /tmp/killed-pull.log")
        #expect(inHook.status == 0, "the pull never reached its install hook: \(killedLog)")
        _ = try pool.output("web3", "pkill -KILL -f '[s]hip-agent pull' && rm /srv/shop/shared/hold && test -e /srv/shop/.ship/lock")
        let resumed = try pool.ssh("web3", pullCommand)
        #expect(resumed.status == 0, "\(resumed.stdout)\(resumed.stderr)")
        #expect(resumed.stdout.contains("which is no longer running"), "\(resumed.stdout)")
        #expect(resumed.stdout.contains("done: release \(held) is live on this host"), "\(resumed.stdout)")
        #expect(try pool.output("web3", "readlink /srv/shop/current; test ! -e /srv/shop/.ship/lock && echo unlocked") == "releases/\(held)\nunlocked")

        // v2: its migrate hook tags the instance Role=web mid-deployment, as an autoscaler
        // adding an instance would; once every listed host validated, it is caught up.
        let tag = "; curl -s --user test:test --aws-sigv4 aws:amz:eu-west-1:ec2 "
            + "\"\(moto.endpoint)/?Action=CreateTags&Version=2016-11-15&ResourceId.1=\(instance)&Tag.1.Key=Role&Tag.1.Value=web\" > /dev/null"
        try app.writeAppspec(appspec(migrate: tag))
        try app.repo.write("index.html", "v2\n")
        try app.commit("v2")
        let v2Commit = try app.repo.git(["rev-parse", "HEAD"])
        let (second, secondEvents) = try app.ship(["deploy", "test"], environment: Self.credentials)
        #expect(second.status == 0, "\(second.stdout)\(second.stderr)")
        let finished = try #require(named(secondEvents, "deployment_finished").last)
        #expect(named(secondEvents, "deployment_finished").count == 1 && secondEvents.last?["event"] as? String == "deployment_finished")
        #expect((finished["message"] as? String ?? "").contains("1 host that joined during the deployment (\(instance)) brought to it too"), "\(finished)")
        for host in ["web1", "web2", "web3"] {
            #expect(try pool.output(host, "cat /srv/shop/current/REVISION") == v2Commit, "\(host)")
        }
        let caughtUp = try pool.output("web3", "cat /srv/shop/shared/log/hooks.log")
        #expect(!caughtUp.contains("migrate"), "never migrate on the instance: \(caughtUp)")
        #expect(try pool.output("web2", "grep -c '^migrate' /srv/shop/shared/log/hooks.log") == "2")
    }

    @Test("host_credentials: a host fetches the bundle signed with its instance role's credentials, no link; a host without credentials gets it over ssh")
    func hostCredentials() throws {
        let (moto, _) = try ArtifactsEndToEndTests.store()
        let scratch = try TemporaryDirectory("ship-host-credentials")
        let aws = try AWSFront(upstream: moto.endpoint, instance: "i-0123456789abcdef0", directory: scratch)
        let pool = try SandboxPool(hosts: 2, os: ["bookworm+curl"])
        // web1's sessions carry where its metadata service is (ssh SetEnv; the sandbox's sshd
        // accepts that variable); web2 has none, as a host outside EC2.
        try ("Host web1\n  SetEnv AWS_EC2_METADATA_SERVICE_ENDPOINT=\(aws.url)\n\n" + (try String(contentsOfFile: pool.sshConfig, encoding: .utf8)))
            .write(toFile: scratch.file("ssh_config"), atomically: true, encoding: .utf8)
        // The store's endpoint is the checking front, so every request, the controller's too, is checked.
        let app = try SandboxApp(pool: pool, extraEnvironment: """
                ssh: { user: deploy, config_file: \(scratch.file("ssh_config")) }
                artifacts: { store: s3://fleet-artifacts/ship, endpoint: "\(aws.url)", host_credentials: true }

            """)
        try app.repo.write("index.html", "v1\n")
        try app.commit("v1")
        let (deploy, events) = try app.ship(["deploy", "test"], environment: ["AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing-secret"])
        #expect(deploy.status == 0, "\(deploy.stdout)\(deploy.stderr)")
        let steps = named(events, "host_step").filter { $0["host"] as? String == "web1" }.compactMap { $0["step"] as? String }
        #expect(steps.contains { $0.hasPrefix("bundle fetched from s3://fleet-artifacts/ship/bundles/shop/") }, "\(steps)")
        #expect(named(events, "bundle_sent").filter { $0["host"] as? String == "web1" }.isEmpty, "web1 was sent no bundle over ssh")
        let warnings = named(events, "host_warning").filter { $0["host"] as? String == "web2" }.compactMap { $0["message"] as? String }
        #expect(warnings.contains { $0.contains("no AWS credentials") && $0.hasSuffix("; sending it over ssh") }, "\(warnings)")
        #expect(named(events, "bundle_sent").filter { $0["host"] as? String == "web2" }.count == 1)
        for host in pool.hosts { #expect(try pool.output(host, "cat /srv/shop/current/index.html") == "v1") }
        let requests = aws.requests
        #expect(!requests.isEmpty && requests.allSatisfy { $0["valid"] as? Bool == true }, "every signature checks: \(requests)")
        let fetches = requests.filter { ($0["path"] as? String ?? "").hasSuffix(".tar.gz") && $0["method"] as? String == "GET" }
        #expect(fetches.count == 1 && fetches.first?["key"] as? String == "ASIAROLEKEY" && fetches.first?["token"] as? String == "role-session-token",
                "the one GET of the bundle is web1's, signed with its role: \(fetches)")
        #expect(requests.contains { $0["method"] as? String == "PUT" && $0["key"] as? String == "testing" }, "the controller published with its own keys")
        #expect(!requests.contains { ($0["path"] as? String ?? "").contains("X-Amz-Signature") }, "no presigned link")
    }
}

/// What `ship-agent pull` and `ship publish-agent` say to a mistake, before touching anything.
@Suite("ship-agent pull and ship publish-agent: usage errors")
struct PullUsageTests {
    @Test("a usage error exits 2 naming what is wrong, with the usage; nothing is fetched")
    func usage() throws {
        for (arguments, message) in [
            (["pull"], "--store s3://BUCKET[/PREFIX] is required"),
            (["pull", "--store", "s3://b", "--app", "shop"], "--app and --env are required"),
            (["pull", "--store", "https://b", "--app", "shop", "--env", "prod"], "--store s3://BUCKET[/PREFIX] is required"),
            (["pull", "--store", "s3://b", "--app", "../etc", "--env", "prod"], "--app '../etc' is not a name ship gives"),
            (["pull", "--store", "s3://b", "--app", "shop", "--env", "prod", "--lifecycle-hook", "h"], "--lifecycle-hook and --auto-scaling-group go together"),
            (["pull", "--store", "s3://b", "--app", "shop", "--env", "prod", "--lock-wait", "soon"], "--lock-wait takes seconds, not 'soon'"),
            (["pull", "--store", "s3://b", "--app", "shop", "--env", "prod", "--bogus"], "unknown argument '--bogus'"),
        ] {
            let result = try run(staticAgentPath, arguments)
            #expect(result.status == 2, "\(arguments): \(result.stderr)")
            #expect(result.stderr.contains(message) && result.stderr.contains("usage: ship-agent pull --store"), "\(arguments): \(result.stderr)")
            #expect(result.stdout.isEmpty)
        }
    }

    @Test("without credentials or a region: exit 1 saying which, and how to give them")
    func noCredentials() throws {
        let environment = ["AWS_EC2_METADATA_DISABLED": "true", "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_REGION": "", "AWS_DEFAULT_REGION": ""]
        let noRegion = try run(staticAgentPath, ["pull", "--store", "s3://b", "--app", "shop", "--env", "prod"], environment: environment)
        #expect(noRegion.status == 1 && noRegion.stderr.contains("no AWS region") && noRegion.stderr.contains("hint: pass --region"), "\(noRegion.stderr)")
        let noKeys = try run(staticAgentPath, ["pull", "--store", "s3://b", "--app", "shop", "--env", "prod", "--region", "eu-west-1"], environment: environment)
        #expect(noKeys.status == 1 && noKeys.stderr.contains("no AWS credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set"), "\(noKeys.stderr)")
    }

    @Test("ship publish-agent on an environment without artifacts: exit 2 saying what to add")
    func publishWithoutStore() throws {
        let repo = try TestRepository()
        try repo.write("ship.yml", """
            app: shop
            deploy_to: /srv/shop
            environments:
              prod: { hosts: [web1] }
            """)
        let result = try ShipperTests.ship(["publish-agent", "prod"], in: repo.path)
        #expect(result.status == 2, "\(result.stdout)\(result.stderr)")
        #expect(result.stderr.contains("environment prod has no artifacts: store to publish the agent to"), "\(result.stderr)")
        #expect(result.stderr.contains("artifacts: { store: s3://BUCKET/PREFIX"), "\(result.stderr)")
    }
}
