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

    /// CodeDeploy's in-place events that run scripts, and where they run in ship's lifecycle.
    static let codeDeployEvents: [String: LifecycleEvent] = [
        "BeforeBlockTraffic": .beforeBlockTraffic,
        "AfterBlockTraffic": .afterBlockTraffic,
        "ApplicationStop": .stop,
        "BeforeInstall": .install,
        "AfterInstall": .afterInstall,
        "ApplicationStart": .start,
        "ValidateService": .validate,
        "BeforeAllowTraffic": .beforeAllowTraffic,
        "AfterAllowTraffic": .afterAllowTraffic,
    ]
    /// Event names CodeDeploy knows but never runs scripts for in an in-place deployment.
    static let codeDeployScriptless: [String: String] = [
        "DownloadBundle": "DownloadBundle is the agent's own step and runs no scripts",
        "Install": "Install is the agent's own step (copying the files) and runs no scripts; use BeforeInstall or AfterInstall",
        "BeforeELBRegistration": "a classic ELB event of older agents that ship does not run; use BeforeAllowTraffic",
        "AfterELBRegistration": "a classic ELB event of older agents that ship does not run; use AfterAllowTraffic",
    ]
    static let fileExistsBehaviors = ["DISALLOW", "OVERWRITE", "RETAIN"]

    /// Decodes appspec YAML. `file` names it in messages; `warn` hears what is read but ignored,
    /// or accepted beyond a documented limit (each with file, line and key).
    public static func decode(yaml: String, file: String, warn: (ShipError) -> Void = { _ in }) throws(ShipError) -> Appspec {
        let root = try ConfigNode.parse(yaml: yaml, file: file)
        let entries = try root.mappingEntries(expected: "a mapping with version and hooks")
        guard let versionNode = entries.first(where: { $0.key.text == "version" })?.value, !versionNode.isNull else {
            throw ShipError.config("missing required key (expected 1 for ship's format, or 0.0 for AWS CodeDeploy's)",
                                   at: root.location, key: "version", hint: "start the file with `version: 1`")
        }
        let version = try versionNode.string(expected: "1 or 0.0")
        switch version {
        case "1": return try decodeShip(root)
        case "0.0", "0": return try decodeCodeDeploy(root, warn: warn)
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

    /// Read as CodeDeploy's agent reads it for an in-place Linux deployment: what the agent
    /// ignores is a warning here, what it refuses is an error.
    static func decodeCodeDeploy(_ root: ConfigNode, warn: (ShipError) -> Void) throws(ShipError) -> Appspec {
        let known = ["version", "os", "files", "permissions", "hooks", "file_exists_behavior"]
        let entries = try root.mappingEntries(expected: "a mapping with version, os and hooks")
        // An ECS or Lambda appspec (`Resources:`, `Hooks:` of Lambda functions) deploys no servers.
        if let resources = entries.first(where: { $0.key.text == "Resources" }) {
            throw ConfigNode(node: resources.key.node, file: root.file, path: ["Resources"])
                .error("this appspec is for a CodeDeploy ECS or Lambda deployment, which ship does not do: ship deploys to servers in place",
                       hint: "an in-place appspec has os: linux, files and hooks with script locations")
        }
        for (key, _) in entries where !known.contains(key.text) {
            warn(ConfigNode(node: key.node, file: root.file, path: [key.text])
                .error("unknown key, ignored (as CodeDeploy's agent ignores it)", hint: Suggestion.didYouMean(key.text, among: known)))
        }
        let map = ConfigMapping(node: root, entries: entries)
        let osNode = try map.required("os", expected: "linux")
        let os = try osNode.string(expected: "linux")
        guard os == "linux" else {
            throw osNode.error(os == "windows" ? "ship deploys to Linux hosts only; this appspec is for Windows"
                                              : "expected linux (or windows, which ship does not deploy to), found \(osNode.found)")
        }
        var appspec = Appspec(format: .codeDeploy)
        if let behaviorNode = map["file_exists_behavior"] {
            let behavior = try behaviorNode.string(expected: "DISALLOW, OVERWRITE or RETAIN")
            guard fileExistsBehaviors.contains(behavior) else {
                throw behaviorNode.error("expected DISALLOW, OVERWRITE or RETAIN, found \(behaviorNode.found)",
                                         hint: fileExistsBehaviors.contains(behavior.uppercased()) ? "write it in capitals: \(behavior.uppercased()) (CodeDeploy refuses \(behavior) too)" : nil)
            }
            appspec.fileExistsBehavior = behavior
        }
        if let filesNode = map["files"] {
            for item in try filesNode.list(expected: "a list of { source, destination }") {
                let file = try lenientMapping(item, known: ["source", "destination"], expected: "{ source, destination }", warn: warn)
                let sourceNode = try file.required("source", expected: "a path in the revision, e.g. /")
                var source = try sourceNode.string(expected: "a path in the revision")
                if ["", ".", "./", "/."].contains(source) { source = "/" }
                let destinationNode = try file.required("destination", expected: "an absolute path on the host")
                let destination = try destinationNode.nonEmptyString()
                guard destination.hasPrefix("/") else {
                    throw destinationNode.error("expected an absolute path on the host, found \(destinationNode.found)")
                }
                // A part of the revision: a path inside it (its directories are linked, see checkFiles).
                if source != "/" {
                    let parts = source.split(separator: "/").filter { $0 != "." }
                    guard !parts.isEmpty, !parts.contains("..") else {
                        throw sourceNode.error("a source must be a path inside the revision, found \(sourceNode.found)")
                    }
                    source = parts.joined(separator: "/")
                }
                let normalized = destination.count > 1 && destination.hasSuffix("/") ? String(destination.dropLast()) : destination
                var mapping = Appspec.FileMapping(source: source, destination: normalized, line: destinationNode.location.line)
                mapping.sourceLine = sourceNode.location.line
                appspec.files.append(mapping)
            }
        }
        if let permissionsNode = map["permissions"] {
            appspec.permissions = try decodePermissions(permissionsNode, files: appspec.files, warn: warn)
        }
        guard let hooksNode = map["hooks"] else { return appspec }
        let runnable = Array(codeDeployEvents.keys).sorted()
        for (key, value) in try hooksNode.mappingEntries(expected: "a mapping of CodeDeploy lifecycle events to scripts") {
            let keyNode = ConfigNode(node: key.node, file: root.file, path: hooksNode.path + [key.text])
            guard let event = codeDeployEvents[key.text] else {
                let why = codeDeployScriptless[key.text]
                    ?? "not an event CodeDeploy runs scripts for" + (Suggestion.didYouMean(key.text, among: runnable).map { " (\($0))" } ?? "")
                warn(keyNode.error("its scripts never run: \(why)", hint: "events: \(runnable.joined(separator: ", "))"))
                continue
            }
            if value.isNull { continue }
            var hooks: [HookSpec] = []
            var total = 0
            for item in try value.list(expected: "a list of scripts, e.g. [{ location: scripts/x.sh }]") {
                let hook = try decodeCodeDeployHook(item, event: key.text, warn: warn)
                total += hook.timeout
                hooks.append(hook)
            }
            if total > codeDeployMaxTimeout {
                warn(value.error("the timeouts of this event add up to \(total) s: CodeDeploy documents a limit of \(codeDeployMaxTimeout) s "
                                 + "for one event, which its agent does not enforce; neither does ship",
                                 hint: "give each script a timeout: (the default is \(codeDeployDefaultTimeout) s)"))
            }
            // BeforeInstall scripts with `once: true` are ship's migrate: on the migrate host, once.
            let once = hooks.filter(\.once)
            if !once.isEmpty { appspec.hooks[.migrate] = once }
            appspec.hooks[event] = hooks.filter { !$0.once }
        }
        return appspec
    }

    /// `permissions`, read as the agent reads them. Each object is a path on the host that the
    /// agent maps into the release through the `files` entries (ship-agent's Permissions.swift).
    /// An object neither
    /// at, below nor above any destination holds nothing ship installs: ignored, with a warning
    /// (CodeDeploy would find nothing it copied there either).
    static func decodePermissions(_ node: ConfigNode, files: [Appspec.FileMapping], warn: (ShipError) -> Void) throws(ShipError) -> [Appspec.Permission] {
        let roots = files.map(\.destination)
        var permissions: [Appspec.Permission] = []
        for item in try node.list(expected: "a list of { object, pattern, except, owner, group, mode, type }") {
            let map = try lenientMapping(item, known: ["object", "pattern", "except", "owner", "group", "mode", "type", "acls", "context"],
                                         expected: "{ object, pattern, owner, group, mode, type }", warn: warn)
            let objectNode = try map.required("object", expected: "an absolute path on the host")
            var object = try objectNode.nonEmptyString(expected: "an absolute path on the host").trimmingCharacters(in: .whitespaces)
            if object.count > 1 && object.hasSuffix("/") { object.removeLast() }
            for key in ["acls", "context"] where map[key] != nil {
                throw map[key]!.error("\(key) is not supported by ship: \(key == "acls" ? "POSIX ACLs" : "SELinux contexts") are left to the host",
                                      hint: "set them from an AfterInstall script (setfacl, chcon), or drop \(key):")
            }
            // At, below or above a destination; the agent finds the release paths (CodeDeploy too
            // only touches what it installed).
            let reached = roots.contains { root in
                object == root || object.hasPrefix(root == "/" ? "/" : root + "/") || root.hasPrefix(object == "/" ? "/" : object + "/")
            }
            guard reached else {
                warn(objectNode.error("\(object) is outside the revision's destination\(roots.count == 1 ? "" : "s") (\(roots.joined(separator: ", "))): "
                                      + "ship installs nothing there, so this entry changes nothing"))
                continue
            }
            var permission = Appspec.Permission(object: object)
            permission.line = objectNode.location.line
            if let pattern = map["pattern"] { permission.pattern = try pattern.nonEmptyString(expected: "a name pattern, or **") }
            if let except = map["except"] { permission.except = try except.stringList(expected: "a list of name patterns") }
            if let types = map["type"] {
                let list: [ConfigNode]
                if case .sequence = types.node { list = try types.list() } else { list = [types] }
                permission.types = []
                for typeNode in list {
                    let type = try typeNode.nonEmptyString(expected: "file or directory")
                    guard type == "file" || type == "directory" else { throw typeNode.error("expected file or directory, found \(typeNode.found)") }
                    permission.types.append(type)
                }
            }
            if let owner = map["owner"] { permission.owner = try decodeUser(owner) }
            if let group = map["group"] { permission.group = try decodeUser(group) }
            if let modeNode = map["mode"] {
                var mode = try modeNode.string(expected: "an octal mode such as 644")
                while mode.count < 3 { mode = "0" + mode }
                guard mode.count <= 4, mode.allSatisfy({ ("0"..."7").contains($0) }) else {
                    throw modeNode.error("expected an octal mode of one to four digits 0-7 (as 644 or 2775), found \(modeNode.found)")
                }
                permission.mode = mode
            }
            permissions.append(permission)
        }
        return permissions
    }

    /// A mapping whose unknown keys are warned about, not refused (CodeDeploy's agent ignores them).
    static func lenientMapping(_ node: ConfigNode, known: [String], expected: String, warn: (ShipError) -> Void) throws(ShipError) -> ConfigMapping {
        let entries = try node.mappingEntries(expected: expected)
        for (key, _) in entries where !known.contains(key.text) {
            let keyNode = ConfigNode(node: key.node, file: node.file, path: node.path + [key.text])
            let why = key.text == "overwrite" ? "CodeDeploy has no such key (file_exists_behavior decides)" : "CodeDeploy's agent ignores it"
            warn(keyNode.error("unknown key, ignored: \(why)", hint: Suggestion.didYouMean(key.text, among: known) ?? "keys here: \(known.joined(separator: ", "))"))
        }
        return ConfigMapping(node: node, entries: entries)
    }

    static func decodeCodeDeployHook(_ node: ConfigNode, event: String, warn: (ShipError) -> Void) throws(ShipError) -> HookSpec {
        let map = try lenientMapping(node, known: ["location", "timeout", "runas", "sudo", "once"], expected: "a script: { location: …, timeout: …, runas: … }",
                                     warn: warn)
        let locationNode = try map.required("location", expected: "a script path relative to the revision root")
        let location = try locationNode.string(expected: "a script path").trimmingCharacters(in: .whitespaces)
        let relative = location.hasPrefix("/") ? String(location.drop(while: { $0 == "/" })) : location
        guard !relative.isEmpty, !relative.split(separator: "/").contains("..") else {
            throw locationNode.error("a script location must be a file inside the revision, found \(locationNode.found)")
        }
        var timeout = codeDeployDefaultTimeout
        if let timeoutNode = map["timeout"] {
            // As the agent reads it (Ruby's to_i): 60, "60", 60.5; at least 1.
            let text = try timeoutNode.string(expected: "a timeout in seconds")
            let digits = text.trimmingCharacters(in: .whitespaces).prefix { $0.isNumber }
            guard let seconds = Int(digits), seconds >= 1 else {
                throw timeoutNode.error("expected a timeout in seconds of at least 1, found \(timeoutNode.found)")
            }
            timeout = seconds
            if seconds > maximumTimeout {
                warn(timeoutNode.error("a timeout of \(seconds) s is more than a day: ship stops the script after \(maximumTimeout) s"))
                timeout = maximumTimeout
            }
        }
        if map["sudo"] != nil {
            warn(map["sudo"]!.error("ignored: `sudo` is for Windows instances; use runas"))
        }
        let runas = try map["runas"].map { node throws(ShipError) in try decodeUser(node) }
        var hook = HookSpec(command: .script(path: relative), timeout: timeout, runas: runas, declaredEvent: event)
        hook.line = node.location.line
        if let once = map["once"], try once.bool() {
            // ship's run-once migrate, written the CodeDeploy way (the agent ignores the key).
            guard event == "BeforeInstall" else {
                throw once.error("`once: true` runs a script on one host before any host switches: it belongs under BeforeInstall",
                                 hint: "move this script to BeforeInstall, or drop once:")
            }
            hook.once = true
        }
        return hook
    }
}

extension AppspecDecoder {
    /// Every `files` source that is a part of the revision must be in it: a directory (ship links
    /// the destination to it in the live release) or a file (copied at the switch).
    public static func checkFiles(_ appspec: Appspec, file: String,
                                  kind: (String) throws(ShipError) -> GitRepository.EntryKind) throws(ShipError) {
        for (index, mapping) in appspec.files.enumerated() where mapping.source != "/" {
            let location = ShipError.Location(file: file, line: mapping.sourceLine ?? mapping.line)
            switch try kind(mapping.source) {
            case .directory, .file, .executable: continue
            case .missing:
                throw ShipError.config("\(mapping.source) is not in the revision", at: location, key: "files[\(index)].source",
                                       hint: "fix the path (it is relative to the revision's root)")
            case .other:
                throw ShipError.config("\(mapping.source) is a symlink or submodule: neither linked nor copied", at: location, key: "files[\(index)].source")
            }
        }
    }

    /// Every script `location` must be an executable file of the revision: `kind` says what the
    /// revision has at a path. The first that is not fails, naming file, line and key.
    public static func checkScripts(_ appspec: Appspec, file: String,
                                    kind: (String) throws(ShipError) -> GitRepository.EntryKind) throws(ShipError) {
        for event in LifecycleEvent.order {
            var index: [String: Int] = [:]
            for hook in appspec.hooks(for: event) {
                let position = index[hook.declaredEvent, default: 0]
                index[hook.declaredEvent] = position + 1
                guard case .script(let path) = hook.command else { continue }
                let location = ShipError.Location(file: file, line: hook.line)
                let key = "hooks.\(hook.declaredEvent)[\(position)].location"
                switch try kind(path) {
                case .executable: continue
                case .missing:
                    throw ShipError.config("\(path) is not in the revision", at: location, key: key,
                                           hint: "add it to the repository, or fix the path (it is relative to the revision's root)")
                case .file:
                    throw ShipError.config("\(path) is not executable in the revision", at: location, key: key,
                                           hint: "git update-index --chmod=+x \(path) (or chmod +x and git add), then commit")
                case .other, .directory:
                    throw ShipError.config("\(path) is not a regular file in the revision", at: location, key: key)
                }
            }
        }
    }
}
