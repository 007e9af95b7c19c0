import Foundation
import Hooks
import Testing
@testable import Shipper

/// Appspecs shaped like the ones CodeDeploy users have in their repositories (one per row of
/// the shapes ship must read as CodeDeploy's agent does), checked the way `ship check` and
/// `ship deploy` check them: decoded, scripts and sources looked up in the revision.
@Suite("CodeDeploy appspecs from the wild")
struct CodeDeployFixtureTests {
    struct Fixture: CustomTestStringConvertible, Sendable {
        var name: String
        var yaml: String
        /// nil: accepted; else the start of the error.
        var refused: String? = nil
        var warnings = 0
        var testDescription: String { name }
    }

    /// What the revision holds: every script executable, `app/` and `public/` directories,
    /// `deploy/nginx.conf` a file.
    static func kind(_ path: String) -> GitRepository.EntryKind {
        switch path {
        case "app", "public", "deploy": .directory
        case "deploy/nginx.conf": .file
        case "scripts/not-executable.sh": .file
        case let script where script.hasPrefix("scripts/"): .executable
        default: .missing
        }
    }

    static let header = "version: 0.0\nos: linux\n"

    static let fixtures: [Fixture] = [
        Fixture(name: "a config file copied to /etc/nginx (a file source: copied at the switch)", yaml: header + """
            files:
              - source: /
                destination: /var/www/app
              - source: deploy/nginx.conf
                destination: /etc/nginx/sites-enabled
            """),
        Fixture(name: "permissions with pattern, mode, owner, group, type", yaml: header + """
            files:
              - source: /
                destination: /var/www/app
            permissions:
              - object: /var/www/app
                pattern: "**"
                owner: ubuntu
                group: www-data
                mode: 755
                type:
                  - directory
              - object: /var/www/app/storage
                pattern: "*.log"
                mode: 664
                type: [file]
            """),
        Fixture(name: "a destination other than deploy_to, scripts that cd there", yaml: header + """
            files:
              - source: /
                destination: /home/ubuntu/app
            hooks:
              AfterInstall:
                - location: scripts/install_dependencies.sh
                  runas: ubuntu
            """),
        Fixture(name: "the load-balancer events", yaml: header + """
            hooks:
              BeforeBlockTraffic:
                - location: scripts/deregister.sh
              AfterBlockTraffic:
                - location: scripts/wait.sh
              BeforeAllowTraffic:
                - location: scripts/warm.sh
              AfterAllowTraffic:
                - location: scripts/register.sh
            """),
        Fixture(name: "several scripts in one event without timeout (AWS's load-balancing sample)", yaml: header + """
            hooks:
              ApplicationStart:
                - location: scripts/start_server.sh
                - location: scripts/register_with_elb.sh
            """, warnings: 1),
        Fixture(name: "file_exists_behavior in capitals", yaml: header + "file_exists_behavior: OVERWRITE\n"),
        Fixture(name: "file_exists_behavior in lower case (CodeDeploy refuses it too)", yaml: header + "file_exists_behavior: overwrite\n",
                refused: #"appspec.yml:3: file_exists_behavior: expected DISALLOW, OVERWRITE or RETAIN, found "overwrite""#),
        Fixture(name: "unknown keys: overwrite and mode on a files entry", yaml: header + """
            files:
              - source: /
                destination: /var/www/html
                overwrite: yes
                mode: 644
            """, warnings: 2),
        Fixture(name: "source . and a quoted timeout", yaml: header + """
            files:
              - source: .
                destination: /var/www/html
            hooks:
              ApplicationStart:
                - location: scripts/start.sh
                  timeout: "60"
            """),
        Fixture(name: "two root entries with different destinations", yaml: header + """
            files:
              - source: /
                destination: /var/www/html
              - source: /
                destination: /srv/legacy/html
            """),
        Fixture(name: "a subdirectory as the app's home", yaml: header + """
            files:
              - source: app/
                destination: /var/www/my-app
              - source: /public
                destination: /var/www/my-app-public
            """),
        Fixture(name: "BeforeInstall and AfterInstall, runas, timeouts, ApplicationStop, ValidateService", yaml: header + """
            hooks:
              ApplicationStop:
                - { location: scripts/stop.sh, timeout: 60, runas: root }
              BeforeInstall:
                - { location: scripts/deps.sh, timeout: 300 }
              AfterInstall:
                - { location: scripts/perms.sh, timeout: 300, runas: root }
              ValidateService:
                - { location: scripts/validate.sh, timeout: 30 }
            """),
        Fixture(name: "a hook location missing from the revision", yaml: header + """
            hooks:
              ApplicationStart:
                - location: bin/start.sh
            """, refused: "appspec.yml:5: hooks.ApplicationStart[0].location: bin/start.sh is not in the revision"),
        Fixture(name: "a hook location not executable", yaml: header + """
            hooks:
              ApplicationStart:
                - location: scripts/not-executable.sh
            """, refused: "appspec.yml:5: hooks.ApplicationStart[0].location: scripts/not-executable.sh is not executable in the revision"),
        Fixture(name: "a Windows appspec", yaml: "version: 0.0\nos: windows\n", refused: "appspec.yml:2: os: ship deploys to Linux hosts only"),
    ]

    @Test("read as CodeDeploy's agent reads them: accepted, with warnings for what is ignored, or refused naming file, line and key",
          arguments: fixtures)
    func fixture(_ fixture: Fixture) throws {
        var warnings: [String] = []
        do throws(ShipError) {
            let appspec = try AppspecDecoder.decode(yaml: fixture.yaml, file: "appspec.yml") { warnings.append($0.description) }
            try AppspecDecoder.checkScripts(appspec, file: "appspec.yml") { Self.kind($0) }
            try AppspecDecoder.checkFiles(appspec, file: "appspec.yml") { Self.kind($0) }
            #expect(fixture.refused == nil, "accepted, but expected: \(fixture.refused ?? "")")
            #expect(warnings.count == fixture.warnings, "\(warnings)")
        } catch {
            let expected = try #require(fixture.refused, "refused: \(error.description)")
            #expect(error.description.hasPrefix(expected), "\(error.description)")
        }
    }
}
