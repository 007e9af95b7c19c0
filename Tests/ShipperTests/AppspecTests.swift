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

    @Test("AWS CodeDeploy's format maps onto ship's events; BeforeInstall runs before AfterInstall")
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
        #expect(appspec.hooks(for: .install).map(\.command) == [.script(path: "scripts/before_install.sh"),
                                                                 .script(path: "scripts/after_install.sh")])
        #expect(appspec.hooks(for: .install).map(\.declaredEvent) == ["BeforeInstall", "AfterInstall"])
        #expect(appspec.hooks(for: .install).first?.timeout == 3600)
        #expect(appspec.hooks(for: .install).last?.runas == "root")
        #expect(appspec.hooks(for: .stop) == [HookSpec(command: .script(path: "scripts/stop.sh"), timeout: 60, declaredEvent: "ApplicationStop")])
        #expect(appspec.hooks(for: .start).count == 1)
        #expect(appspec.hooks(for: .validate).first?.timeout == 30)
        #expect(appspec.hooks(for: .migrate).isEmpty)
        #expect(appspec.files == [.init(source: "/", destination: "/var/www/html")])
    }

    static let errorCases: [ErrorCase] = [
        ErrorCase(name: "unknown hook event", yaml: "version: 1\nhooks:\n  instal: [{ run: x }]\n",
                  expected: "appspec.yml:3: hooks.instal: unknown lifecycle event", hint: "did you mean 'install'?"),
        ErrorCase(name: "CodeDeploy event in ship's format", yaml: "version: 1\nhooks:\n  AfterInstall: [{ run: x }]\n",
                  expected: "appspec.yml:3: hooks.AfterInstall: unknown lifecycle event",
                  hint: "that is a CodeDeploy event: use `install` here, or `version: 0.0` for a CodeDeploy appspec"),
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
                  expected: #"appspec.yml:2: os: ship deploys to Linux hosts only; expected linux, found "windows""#),
        ErrorCase(name: "CodeDeploy: missing os", yaml: "version: 0.0\nhooks: {}\n",
                  expected: "appspec.yml:1: os: missing required key (expected linux)"),
        ErrorCase(name: "CodeDeploy: unknown event", yaml: "version: 0.0\nos: linux\nhooks:\n  AfterInstal:\n    - location: x.sh\n",
                  expected: "appspec.yml:4: hooks.AfterInstal: unknown CodeDeploy lifecycle event", hint: "did you mean 'AfterInstall'?"),
        ErrorCase(name: "CodeDeploy: load balancer event", yaml: "version: 0.0\nos: linux\nhooks:\n  BeforeBlockTraffic:\n    - location: x.sh\n",
                  expected: "appspec.yml:4: hooks.BeforeBlockTraffic: lifecycle event not supported by ship",
                  hint: "ship does not drive load balancers; move this script to ApplicationStop"),
        ErrorCase(name: "CodeDeploy: run instead of location", yaml: "version: 0.0\nos: linux\nhooks:\n  ApplicationStart:\n    - run: x.sh\n",
                  expected: "appspec.yml:5: hooks.ApplicationStart[0].run: unknown key"),
        ErrorCase(name: "CodeDeploy: script outside the revision", yaml: "version: 0.0\nos: linux\nhooks:\n  ApplicationStart:\n    - location: ../x.sh\n",
                  expected: #"appspec.yml:5: hooks.ApplicationStart[0].location: a script location must be a file inside the revision, found "../x.sh""#),
        ErrorCase(name: "CodeDeploy: timeouts over an hour", yaml: "version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n    - { location: a.sh, timeout: 3000 }\n    - { location: b.sh, timeout: 3000 }\n",
                  expected: "appspec.yml:5: hooks.AfterInstall: the timeouts of one event add up to 6000s; CodeDeploy allows at most 3600s"),
        ErrorCase(name: "CodeDeploy: permissions", yaml: "version: 0.0\nos: linux\npermissions:\n  - object: /var/www\n    mode: 644\n",
                  expected: "appspec.yml:4: permissions: the permissions section is not supported by ship",
                  hint: "set owners and modes from an AfterInstall script (chown/chmod in the release directory); it runs before `current` switches"),
        ErrorCase(name: "CodeDeploy: files copying part of the revision", yaml: "version: 0.0\nos: linux\nfiles:\n  - source: config/app.ini\n    destination: /etc/app\n",
                  expected: "appspec.yml:4: files[0].source: ship installs the whole revision as a release; copying config/app.ini to /etc/app is not supported"),
        ErrorCase(name: "CodeDeploy: relative destination", yaml: "version: 0.0\nos: linux\nfiles:\n  - source: /\n    destination: www\n",
                  expected: #"appspec.yml:5: files[0].destination: expected an absolute path on the host, found "www""#),
    ]

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
