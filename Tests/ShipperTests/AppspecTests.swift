import Foundation
import Hooks
import Testing
@testable import Shipper

private func decode(_ yaml: String) throws(ShipError) -> Appspec {
    try AppspecDecoder.decode(yaml: yaml, file: "appspec.yml")
}

@Suite("appspec.yml")
struct AppspecTests {
    @Test("ship's format: every event, timeouts, runas, string shorthand")
    func shipFormat() throws {
        let appspec = try decode("""
            version: 1
            hooks:
              stop:     [{ run: scripts/maintenance-on.sh, timeout: 60 }]
              install:  [{ run: composer install --no-dev, timeout: 900, runas: www-data }]
              migrate:  [{ run: drush updatedb -y }]
              start:    [scripts/reload.sh]
              validate: [{ run: curl -fsS http://localhost/health }]
            """)
        #expect(appspec.format == .ship)
        #expect(appspec.hooks(for: .stop) == [HookSpec(command: .shell("scripts/maintenance-on.sh"), timeout: 60, declaredEvent: "stop")])
        #expect(appspec.hooks(for: .install) == [HookSpec(command: .shell("composer install --no-dev"), timeout: 900,
                                                          runas: "www-data", declaredEvent: "install")])
        #expect(appspec.hooks(for: .migrate).first?.timeout == 300)
        #expect(appspec.hooks(for: .start) == [HookSpec(command: .shell("scripts/reload.sh"), timeout: 300, declaredEvent: "start")])
        #expect(appspec.hooks(for: .validate).count == 1)
    }

    @Test("AWS CodeDeploy's format maps onto ship's events: BeforeInstall before the switch, AfterInstall after it")
    func codeDeployFormat() throws {
        let appspec = try decode("""
            version: 0.0
            os: linux
            files:
              - source: /
                destination: /var/www/html
            hooks:
              AfterInstall:
                - location: scripts/after_install.sh
                  timeout: 300
                  runas: root
              BeforeInstall:
                - location: /scripts/before_install.sh
              ApplicationStop:
                - location: scripts/stop.sh
                  timeout: 60
              ApplicationStart:
                - location: scripts/start.sh
              ValidateService:
                - location: scripts/validate.sh
                  timeout: 30
            """)
        #expect(appspec.format == .codeDeploy)
        #expect(appspec.hooks(for: .install).map(\.command) == [.script(path: "scripts/before_install.sh")])
        #expect(appspec.hooks(for: .afterInstall).map(\.command) == [.script(path: "scripts/after_install.sh")])
        #expect(appspec.hooks(for: .install).map(\.declaredEvent) == ["BeforeInstall"])
        #expect(appspec.hooks(for: .install).first?.timeout == 3600)
        #expect(appspec.hooks(for: .afterInstall).last?.runas == "root")
        #expect(appspec.hooks(for: .stop) == [HookSpec(command: .script(path: "scripts/stop.sh"), timeout: 60, declaredEvent: "ApplicationStop")])
        #expect(appspec.hooks(for: .start).count == 1)
        #expect(appspec.hooks(for: .validate).first?.timeout == 30)
        #expect(appspec.hooks(for: .migrate).isEmpty)
        #expect(appspec.files == [.init(source: "/", destination: "/var/www/html")])
    }

    static let errorCases: [ErrorCase] = [
        ErrorCase(name: "an ECS appspec", yaml: "version: 0.0\nResources:\n  - TargetService:\n      Type: AWS::ECS::Service\n",
                  expected: "appspec.yml:2: Resources: this appspec is for a CodeDeploy ECS or Lambda deployment, which ship does not do"),
        ErrorCase(name: "unknown hook event", yaml: "version: 1\nhooks:\n  instal: [{ run: x }]\n",
                  expected: "appspec.yml:3: hooks.instal: unknown lifecycle event", hint: "did you mean 'install'?"),
        ErrorCase(name: "CodeDeploy event in ship's format", yaml: "version: 1\nhooks:\n  AfterInstall: [{ run: x }]\n",
                  expected: "appspec.yml:3: hooks.AfterInstall: unknown lifecycle event",
                  hint: "that is a CodeDeploy event: use `after_install` here, or `version: 0.0` for a CodeDeploy appspec"),
        ErrorCase(name: "missing run", yaml: "version: 1\nhooks:\n  start: [{ timeout: 5 }]\n",
                  expected: "appspec.yml:3: hooks.start[0].run: missing required key (expected a command line for /bin/sh -c)"),
        ErrorCase(name: "timeout of the wrong type", yaml: "version: 1\nhooks:\n  start: [{ run: x, timeout: soon }]\n",
                  expected: #"appspec.yml:3: hooks.start[0].timeout: expected a timeout in seconds from 1 to 86400, found "soon""#),
        ErrorCase(name: "unknown hook key", yaml: "version: 1\nhooks:\n  start: [{ run: x, user: www-data }]\n",
                  expected: "appspec.yml:3: hooks.start[0].user: unknown key"),
        ErrorCase(name: "missing version", yaml: "hooks: {}\n",
                  expected: "appspec.yml:1: version: missing required key (expected 1 for ship's format, or 0.0 for AWS CodeDeploy's)"),
        ErrorCase(name: "unknown version", yaml: "version: 2\n",
                  expected: #"appspec.yml:1: version: expected 1 (ship's format) or 0.0 (AWS CodeDeploy's), found "2""#),
        ErrorCase(name: "CodeDeploy: windows", yaml: "version: 0.0\nos: windows\n",
                  expected: "appspec.yml:2: os: ship deploys to Linux hosts only; this appspec is for Windows"),
        ErrorCase(name: "CodeDeploy: an os CodeDeploy does not know", yaml: "version: 0.0\nos: ubuntu\n",
                  expected: #"appspec.yml:2: os: expected linux (or windows, which ship does not deploy to), found "ubuntu""#),
        ErrorCase(name: "CodeDeploy: file_exists_behavior in lower case", yaml: "version: 0.0\nos: linux\nfile_exists_behavior: overwrite\n",
                  expected: #"appspec.yml:3: file_exists_behavior: expected DISALLOW, OVERWRITE or RETAIN, found "overwrite""#,
                  hint: "write it in capitals: OVERWRITE (CodeDeploy refuses overwrite too)"),
        ErrorCase(name: "CodeDeploy: a timeout of zero", yaml: "version: 0.0\nos: linux\nhooks:\n  ApplicationStart:\n    - { location: a.sh, timeout: 0 }\n",
                  expected: #"appspec.yml:5: hooks.ApplicationStart[0].timeout: expected a timeout in seconds of at least 1, found "0""#),
        ErrorCase(name: "CodeDeploy: missing os", yaml: "version: 0.0\nhooks: {}\n",
                  expected: "appspec.yml:1: os: missing required key (expected linux)"),
        ErrorCase(name: "CodeDeploy: run instead of location", yaml: "version: 0.0\nos: linux\nhooks:\n  ApplicationStart:\n    - run: x.sh\n",
                  expected: "appspec.yml:5: hooks.ApplicationStart[0].location: missing required key (expected a script path relative to the revision root)"),
        ErrorCase(name: "CodeDeploy: script outside the revision", yaml: "version: 0.0\nos: linux\nhooks:\n  ApplicationStart:\n    - location: ../x.sh\n",
                  expected: #"appspec.yml:5: hooks.ApplicationStart[0].location: a script location must be a file inside the revision, found "../x.sh""#),
        ErrorCase(name: "CodeDeploy: permissions with acls", yaml: "version: 0.0\nos: linux\nfiles:\n  - { source: /, destination: /var/www }\npermissions:\n  - object: /var/www\n    acls: [u:www-data:rw]\n",
                  expected: "appspec.yml:7: permissions[0].acls: acls is not supported by ship: POSIX ACLs are left to the host"),
        ErrorCase(name: "CodeDeploy: a mode that is not octal", yaml: "version: 0.0\nos: linux\nfiles:\n  - { source: /, destination: /var/www }\npermissions:\n  - { object: /var/www, mode: 0x1ff }\n",
                  expected: #"appspec.yml:6: permissions[0].mode: expected an octal mode of one to four digits 0-7 (as 644 or 2775), found "0x1ff""#),
        ErrorCase(name: "CodeDeploy: a permission type that is none", yaml: "version: 0.0\nos: linux\nfiles:\n  - { source: /, destination: /var/www }\npermissions:\n  - { object: /var/www, type: [link] }\n",
                  expected: #"appspec.yml:6: permissions[0].type[0]: expected file or directory, found "link""#),
        ErrorCase(name: "CodeDeploy: a source outside the revision", yaml: "version: 0.0\nos: linux\nfiles:\n  - source: ../etc\n    destination: /etc/app\n",
                  expected: #"appspec.yml:4: files[0].source: a source must be a path inside the revision, found "../etc""#),
        ErrorCase(name: "CodeDeploy: relative destination", yaml: "version: 0.0\nos: linux\nfiles:\n  - source: /\n    destination: www\n",
                  expected: #"appspec.yml:5: files[0].destination: expected an absolute path on the host, found "www""#),
    ]

    @Test("CodeDeploy files read as its agent reads them: what it ignores is a warning naming file, line and key; its spellings accepted")
    func codeDeployLeniency() throws {
        var warnings: [String] = []
        let appspec = try AppspecDecoder.decode(yaml: """
            version: 0.0
            os: linux
            branch_config: ignored
            files:
              - source: .
                destination: /var/www/html
                overwrite: true
            file_exists_behavior: OVERWRITE
            hooks:
              AfterInstal:
                - location: scripts/typo.sh
              Install:
                - location: scripts/never.sh
              BeforeBlockTraffic:
                - location: scripts/deregister.sh
              AfterAllowTraffic:
                - location: scripts/warm.sh
                  timeout: "60"
                  sudo: true
              ApplicationStart:
                - { location: scripts/a.sh, timeout: 3000 }
                - { location: " scripts/b.sh ", timeout: 3000.5 }
            """, file: "appspec.yml") { warnings.append($0.description + ($0.hint.map { " | " + $0 } ?? "")) }
        #expect(appspec.files == [.init(source: "/", destination: "/var/www/html")])
        #expect(appspec.fileExistsBehavior == "OVERWRITE")
        #expect(appspec.hooks(for: .beforeBlockTraffic).map(\.command) == [.script(path: "scripts/deregister.sh")])
        #expect(appspec.hooks(for: .afterAllowTraffic).first?.timeout == 60)
        #expect(appspec.hooks(for: .start).map(\.timeout) == [3000, 3000])
        #expect(appspec.hooks(for: .start).last?.command == .script(path: "scripts/b.sh"))
        #expect(appspec.hooks(for: .install).isEmpty, "Install runs no scripts; AfterInstal is no event")
        #expect(appspec.hooks(for: .start).first?.line == 21)
        let expected = [
            "appspec.yml:3: branch_config: unknown key, ignored (as CodeDeploy's agent ignores it)",
            "appspec.yml:7: files[0].overwrite: unknown key, ignored: CodeDeploy has no such key (file_exists_behavior decides)",
            "appspec.yml:10: hooks.AfterInstal: its scripts never run: not an event CodeDeploy runs scripts for (did you mean 'AfterInstall'?)",
            "appspec.yml:12: hooks.Install: its scripts never run: Install is the agent's own step",
            "appspec.yml:19: hooks.AfterAllowTraffic[0].sudo: ignored: `sudo` is for Windows instances; use runas",
            "appspec.yml:21: hooks.ApplicationStart: the timeouts of this event add up to 6000 s",
        ]
        #expect(warnings.count == expected.count, "\(warnings)")
        for (warning, prefix) in zip(warnings.sorted { $0.localizedStandardCompare($1) == .orderedAscending }, expected) {
            #expect(warning.hasPrefix(prefix), "\(warning)")
        }
    }

    @Test("once: true on a BeforeInstall script makes it ship's migrate (one host, before any switches); elsewhere it is refused")
    func onceIsMigrate() throws {
        let appspec = try decode("""
            version: 0.0
            os: linux
            hooks:
              BeforeInstall:
                - location: scripts/deps.sh
                - location: scripts/migrate.sh
                  once: true
            """)
        #expect(appspec.hooks(for: .install).map(\.command) == [.script(path: "scripts/deps.sh")])
        #expect(appspec.hooks(for: .migrate).map(\.command) == [.script(path: "scripts/migrate.sh")])
        #expect(appspec.hooks(for: .migrate).first?.declaredEvent == "BeforeInstall")
        #expect(throws: ShipError.self) { try decode("version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n    - { location: m.sh, once: true }\n") }
    }

    @Test("DEPLOYMENT_GROUP_ID: a UUID, the same for an app's environment every time, another for another environment")
    func deploymentGroupId() {
        let prod = Deployment.groupId(app: "shop", environment: "prod")
        #expect(prod == Deployment.groupId(app: "shop", environment: "prod"))
        #expect(prod != Deployment.groupId(app: "shop", environment: "staging"))
        #expect(prod.range(of: #"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"#, options: .regularExpression) != nil, "\(prod)")
    }

    @Test("permissions: objects mapped into the release through the root destination, CodeDeploy's defaults; outside it, a warning")
    func permissions() throws {
        var warnings: [String] = []
        let appspec = try AppspecDecoder.decode(yaml: """
            version: 0.0
            os: linux
            files:
              - source: /
                destination: /var/www/html/
            permissions:
              - object: /var/www/html
                owner: deploy
                mode: 755
                type: [directory]
              - object: /var/www/html/storage/
                pattern: "*.log"
                except: [keep.log]
                group: www-data
                mode: 2775
                type: file
              - object: /etc/nginx
                mode: 644
              - object: /var/www
                mode: 644
            """, file: "appspec.yml") { warnings.append($0.description) }
        let permissions = try #require(appspec.permissions)
        #expect(permissions.map(\.object) == ["/var/www/html", "/var/www/html/storage", "/var/www"],
                "a trailing slash is dropped; an object above a destination reaches what is installed below it")
        #expect(permissions[0].pattern == "**" && permissions[0].types == ["directory"] && permissions[0].mode == "755")
        #expect(permissions[1].pattern == "*.log" && permissions[1].except == ["keep.log"] && permissions[1].types == ["file"])
        #expect(permissions[1].group == "www-data" && permissions[1].mode == "2775" && permissions[1].owner == nil)
        #expect(warnings.count == 1 && warnings[0].hasPrefix("appspec.yml:17: permissions[2].object: /etc/nginx is outside the revision's destination (/var/www/html)"),
                "\(warnings)")
    }

    @Test("every appspec error names the file, the line and the key", arguments: errorCases)
    func appspecErrors(_ testCase: ErrorCase) throws {
        var caught: ShipError?
        do { _ = try decode(testCase.yaml) } catch { caught = error }
        try testCase.check(caught)
    }

    @Test("the agent receives the appspec as JSON and reads back the same value")
    func jsonRoundTrip() throws {
        let appspec = try decode("version: 1\nhooks:\n  install: [{ run: make, timeout: 9, runas: app }]\n  start: [x]\n")
        let data = try JSONEncoder().encode(appspec)
        #expect(try JSONDecoder().decode(Appspec.self, from: data) == appspec)
        #expect(String(decoding: data, as: UTF8.self).contains("\"install\""))
    }
}
