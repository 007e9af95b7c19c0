import Hooks

/// What an appspec will do, in words: per event, in the order they run, the hooks with their
/// timeout and user; where CodeDeploy `files` entries point; the permissions it sets. Shown by
/// `ship check` and by `ship deploy --dry-run`.
public enum AppspecSummary {
    /// Per event, in the order they run: the hooks, each with its timeout and user; then where
    /// CodeDeploy `files` entries point.
    public static func lines(_ appspec: Appspec, copies: Set<String> = []) -> [String] {
        var lines: [String] = []
        for event in LifecycleEvent.order {
            let hooks = appspec.hooks(for: event)
            guard !hooks.isEmpty else { continue }
            let whose = event.runsOnOutgoingRelease ? "; from the release being replaced" : (event == .migrate ? "; once, on the migrate host" : "")
            for declared in hooks.map(\.declaredEvent).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } } {
                let label = declared == event.rawValue ? declared : "\(declared) (\(event.rawValue))"
                lines.append(label + whose + ":")
                for hook in hooks where hook.declaredEvent == declared {
                    lines.append("  \(hook.summary)  (timeout \(hook.timeout) s" + (hook.runas.map { ", as \($0)" } ?? "") + ")")
                }
            }
        }
        if lines.isEmpty { lines.append("no hooks") }
        for file in appspec.files {
            let target = "deploy_to/current" + (file.source == "/" ? "" : "/" + file.source)
            if file.source != "/", !file.source.isEmpty, copies.contains(file.source) {
                lines.append("files: \(file.source) -> \(file.destination): copied at each switch (file_exists_behavior \(appspec.fileExistsBehavior ?? "DISALLOW"))")
            } else if file.source == "/" {
                lines.append("files: \(file.source) -> \(file.destination): a link to \(target), made by ship at the first switch")
            } else {
                lines.append("files: \(file.source) -> \(file.destination): a link to \(target), made by ship at the first switch; "
                             + "if it is a directory with files of its own, the files are copied into it at each switch instead "
                             + "(file_exists_behavior \(appspec.fileExistsBehavior ?? "DISALLOW"))")
            }
        }
        for permission in appspec.permissions ?? [] { lines.append("permissions: " + describe(permission)) }
        return lines
    }

    /// `OBJECT: mode 640, owner www-data (files matching *.log, except keep.log)`.
    public static func describe(_ permission: Appspec.Permission) -> String {
        var changes: [String] = []
        if let mode = permission.mode { changes.append("mode \(mode)") }
        if let owner = permission.owner { changes.append("owner \(owner)") }
        if let group = permission.group { changes.append("group \(group)") }
        let what = permission.types.count == 2 ? "files and directories" : (permission.types == ["file"] ? "files" : "directories")
        var scope = permission.pattern == "**" ? "\(what) below it" : "\(what) matching \(permission.pattern)"
        if !permission.except.isEmpty { scope += ", except \(permission.except.joined(separator: ", "))" }
        return "\(permission.object): \(changes.isEmpty ? "nothing to change" : changes.joined(separator: ", ")) (\(scope); "
            + "only what ship installs there)"
    }
}
