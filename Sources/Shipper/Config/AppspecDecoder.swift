import Foundation
import Hooks

/// Reads an `appspec.yml`: ship's own `version: 1`, or AWS CodeDeploy's `version: 0.0`.
public enum AppspecDecoder {
    /// ship's default hook timeout in seconds.
    public static let defaultTimeout = 300
    /// CodeDeploy's default script timeout in seconds, kept for CodeDeploy appspecs.
    public static let codeDeployDefaultTimeout = 3600
    /// The longest timeout a hook may have: a day (so sums of timeouts never overflow).
    static let maximumTimeout = 86_400
    /// CodeDeploy's limit on the sum of one event's script timeouts.
    static let codeDeployMaxTimeout = 3600

    static let codeDeployEvents: [String: LifecycleEvent] = [
        "ApplicationStop": .stop,
        "BeforeInstall": .install,
        "AfterInstall": .install,
        "ApplicationStart": .start,
        "ValidateService": .validate,
    ]
    /// CodeDeploy events ship has no counterpart for, with what to do instead.
    static let codeDeployUnsupported: [String: String] = [
        "BeforeBlockTraffic": "ship does not drive load balancers; move this script to ApplicationStop",
        "AfterBlockTraffic": "ship does not drive load balancers; move this script to ApplicationStop",
        "BeforeAllowTraffic": "ship does not drive load balancers; move this script to ValidateService",
        "AfterAllowTraffic": "ship does not drive load balancers; move this script to ValidateService",
        "DownloadBundle": "DownloadBundle is reserved for the deployment agent and cannot run scripts",
        "Install": "Install is reserved for the deployment agent and cannot run scripts; use BeforeInstall or AfterInstall",
        "BeforeELBRegistration": "ship does not drive load balancers",
        "AfterELBRegistration": "ship does not drive load balancers",
    ]

    /// Decodes appspec YAML. `file` names it in messages.
    public static func decode(yaml: String, file: String) throws(ShipError) -> Appspec {
        let root = try ConfigNode.parse(yaml: yaml, file: file)
        let entries = try root.mappingEntries(expected: "a mapping with version and hooks")
        guard let versionNode = entries.first(where: { $0.key.text == "version" })?.value, !versionNode.isNull else {
            throw ShipError.config("missing required key (expected 1 for ship's format, or 0.0 for AWS CodeDeploy's)",
                                   at: root.location, key: "version", hint: "start the file with `version: 1`")
        }
        let version = try versionNode.string(expected: "1 or 0.0")
        switch version {
        case "1": return try decodeShip(root)
        case "0.0": return try decodeCodeDeploy(root)
        default:
            throw versionNode.error("expected 1 (ship's format) or 0.0 (AWS CodeDeploy's), found \(versionNode.found)")
        }
    }

    // MARK: - ship's format

    static func decodeShip(_ root: ConfigNode) throws(ShipError) -> Appspec {
        let map = try root.mapping(allowed: ["version", "hooks"])
        var appspec = Appspec(format: .ship)
        guard let hooksNode = map["hooks"] else { return appspec }
        let events = LifecycleEvent.order.map(\.rawValue)
        for (key, value) in try hooksNode.mappingEntries(expected: "a mapping of lifecycle events to hooks") {
            guard let event = LifecycleEvent(rawValue: key.text) else {
                let keyNode = ConfigNode(node: key.node, file: root.file, path: hooksNode.path + [key.text])
                let codeDeployHint = codeDeployEvents[key.text].map {
                    "that is a CodeDeploy event: use `\($0.rawValue)` here, or `version: 0.0` for a CodeDeploy appspec"
                }
                throw keyNode.error("unknown lifecycle event",
                                    hint: codeDeployHint ?? Suggestion.didYouMean(key.text, among: events)
                                        ?? "events: \(events.joined(separator: ", "))")
            }
            if value.isNull { continue }
            var hooks: [HookSpec] = []
            for item in try value.list(expected: "a list of hooks, e.g. [{ run: scripts/x.sh }]") {
                hooks.append(try decodeShipHook(item, event: key.text))
            }
            appspec.hooks[event] = hooks
        }
        return appspec
    }

    static func decodeShipHook(_ node: ConfigNode, event: String) throws(ShipError) -> HookSpec {
        if case .scalar = node.node {
            return HookSpec(command: .shell(try node.nonEmptyString(expected: "a hook")), timeout: defaultTimeout, declaredEvent: event)
        }
        let map = try node.mapping(allowed: ["run", "timeout", "runas"], expected: "a hook: { run: …, timeout: …, runas: … }")
        let run = try map.required("run", expected: "a command line for /bin/sh -c").nonEmptyString(expected: "a command line")
        let timeout = try map["timeout"]?.int(in: 1...maximumTimeout, expected: "a timeout in seconds from 1 to \(maximumTimeout)") ?? defaultTimeout
        let runas = try map["runas"].map { node throws(ShipError) in try decodeUser(node) }
        return HookSpec(command: .shell(run), timeout: timeout, runas: runas, declaredEvent: event)
    }

    static func decodeUser(_ node: ConfigNode) throws(ShipError) -> String {
        let user = try node.nonEmptyString(expected: "a user name")
        guard user.range(of: #"^[A-Za-z_][A-Za-z0-9_.-]*\$?$"#, options: .regularExpression) != nil else {
            throw node.error("expected a user name, found \(node.found)")
        }
        return user
    }

    // MARK: - AWS CodeDeploy's format

    static func decodeCodeDeploy(_ root: ConfigNode) throws(ShipError) -> Appspec {
        let map = try root.mapping(allowed: ["version", "os", "files", "permissions", "hooks", "file_exists_behavior"])
        let osNode = try map.required("os", expected: "linux")
        guard try osNode.string(expected: "linux") == "linux" else {
            throw osNode.error("ship deploys to Linux hosts only; expected linux, found \(osNode.found)")
        }
        var appspec = Appspec(format: .codeDeploy)
        if let filesNode = map["files"] {
            for item in try filesNode.list(expected: "a list of { source, destination }") {
                let file = try item.mapping(allowed: ["source", "destination", "overwrite"])
                let sourceNode = try file.required("source", expected: "a path in the revision, e.g. /")
                let source = try sourceNode.nonEmptyString()
                let destinationNode = try file.required("destination", expected: "an absolute path on the host")
                let destination = try destinationNode.nonEmptyString()
                guard destination.hasPrefix("/") else {
                    throw destinationNode.error("expected an absolute path on the host, found \(destinationNode.found)")
                }
                // ship installs the whole revision as a release and points `current` at it; copying
                // parts of it elsewhere would bypass the atomic switch and rollback.
                guard source == "/" || source.isEmpty else {
                    throw sourceNode.error("ship installs the whole revision as a release; copying \(source) to \(destination) is not supported",
                                           hint: "keep `source: /` (serve the site from deploy_to/current), and copy other files from an AfterInstall script")
                }
                let overwrite = try file["overwrite"]?.bool() ?? false
                appspec.files.append(.init(source: source, destination: destination, overwrite: overwrite))
            }
        }
        if let permissionsNode = map["permissions"] {
            throw permissionsNode.error("the permissions section is not supported by ship",
                                        hint: "set owners and modes from an AfterInstall script (chown/chmod in the release directory); it runs before `current` switches")
        }
        guard let hooksNode = map["hooks"] else { return appspec }
        let known = Array(codeDeployEvents.keys).sorted()
        // BeforeInstall hooks run before AfterInstall hooks whatever order the file lists them in.
        var install: [String: [HookSpec]] = [:]
        for (key, value) in try hooksNode.mappingEntries(expected: "a mapping of CodeDeploy lifecycle events to scripts") {
            let keyNode = ConfigNode(node: key.node, file: root.file, path: hooksNode.path + [key.text])
            guard let event = codeDeployEvents[key.text] else {
                if let reason = codeDeployUnsupported[key.text] {
                    throw keyNode.error("lifecycle event not supported by ship", hint: reason)
                }
                throw keyNode.error("unknown CodeDeploy lifecycle event",
                                    hint: Suggestion.didYouMean(key.text, among: known) ?? "events: \(known.joined(separator: ", "))")
            }
            if value.isNull { continue }
            var hooks: [HookSpec] = []
            var total = 0
            for item in try value.list(expected: "a list of scripts, e.g. [{ location: scripts/x.sh }]") {
                let hook = try decodeCodeDeployHook(item, event: key.text)
                total += hook.timeout
                hooks.append(hook)
            }
            if total > codeDeployMaxTimeout {
                throw value.error("the timeouts of one event add up to \(total)s; CodeDeploy allows at most \(codeDeployMaxTimeout)s",
                                  hint: "lower the timeouts, or use ship's own format (version: 1), which has no such limit")
            }
            if event == .install {
                install[key.text] = hooks
            } else {
                appspec.hooks[event] = hooks
            }
        }
        let installHooks = (install["BeforeInstall"] ?? []) + (install["AfterInstall"] ?? [])
        if !installHooks.isEmpty { appspec.hooks[.install] = installHooks }
        return appspec
    }

    static func decodeCodeDeployHook(_ node: ConfigNode, event: String) throws(ShipError) -> HookSpec {
        let map = try node.mapping(allowed: ["location", "timeout", "runas"], expected: "a script: { location: …, timeout: …, runas: … }")
        let locationNode = try map.required("location", expected: "a script path relative to the revision root")
        let location = try locationNode.nonEmptyString(expected: "a script path")
        let relative = location.hasPrefix("/") ? String(location.drop(while: { $0 == "/" })) : location
        guard !relative.isEmpty, !relative.split(separator: "/").contains("..") else {
            throw locationNode.error("a script location must be a file inside the revision, found \(locationNode.found)")
        }
        let timeout = try map["timeout"]?.int(in: 1...maximumTimeout, expected: "a timeout in seconds from 1 to \(maximumTimeout)") ?? codeDeployDefaultTimeout
        let runas = try map["runas"].map { node throws(ShipError) in try decodeUser(node) }
        return HookSpec(command: .script(path: relative), timeout: timeout, runas: runas, declaredEvent: event)
    }
}
