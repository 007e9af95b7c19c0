import Foundation
import Hooks

/// Finds and reads ship.yml and the appspec.yml beside it.
public enum ConfigLoader {
    public static let fileName = "ship.yml"
    public static let appspecName = "appspec.yml"

    /// The ship.yml in `directory` or its nearest parent.
    public static func locate(from directory: String) -> String? {
        var current = URL(fileURLWithPath: directory).standardizedFileURL
        while true {
            let candidate = current.appendingPathComponent(fileName).path
            if FileManager.default.fileExists(atPath: candidate) { return candidate }
            let parent = current.deletingLastPathComponent()
            if parent.path == current.path { return nil }
            current = parent
        }
    }

    /// Loads `explicitPath`, or the ship.yml found from the current directory up.
    public static func load(explicitPath: String? = nil,
                            currentDirectory: String = FileManager.default.currentDirectoryPath) throws(ShipError) -> ShipConfig {
        let path: String
        if let explicitPath {
            path = absolute(explicitPath, in: currentDirectory)
        } else if let found = locate(from: currentDirectory) {
            path = found
        } else {
            throw ShipError.usage("no \(fileName) in \(currentDirectory) or any parent directory",
                                  hint: "run `ship init` to write one, or pass --config FILE")
        }
        let text = try readText(path, display: display(path, relativeTo: currentDirectory))
        return try ShipConfigDecoder.decode(yaml: text, file: path, displayName: display(path, relativeTo: currentDirectory))
    }

    /// Decodes ship.yml text; `file` is where it lives (for relative paths), `displayName` what messages call it.
    public static func decode(yaml: String, file: String, displayName: String? = nil) throws(ShipError) -> ShipConfig {
        try ShipConfigDecoder.decode(yaml: yaml, file: file, displayName: displayName ?? (file as NSString).lastPathComponent)
    }

    /// The appspec.yml beside ship.yml, or nil when there is none.
    public static func loadAppspec(besides config: ShipConfig,
                                   currentDirectory: String = FileManager.default.currentDirectoryPath,
                                   warn: (ShipError) -> Void = { _ in }) throws(ShipError) -> Appspec? {
        let path = (config.directory as NSString).appendingPathComponent(appspecName)
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let name = display(path, relativeTo: currentDirectory)
        return try AppspecDecoder.decode(yaml: try readText(path, display: name), file: name, warn: warn)
    }

    /// What the work tree beside ship.yml has at a path of the revision.
    public static func workTreeKind(_ path: String, besides config: ShipConfig) -> GitRepository.EntryKind {
        var info = stat()
        guard lstat((config.directory as NSString).appendingPathComponent(path), &info) == 0 else { return .missing }
        if info.st_mode & S_IFMT == S_IFDIR { return .directory }
        guard info.st_mode & S_IFMT == S_IFREG else { return .other }
        return info.st_mode & 0o111 != 0 ? .executable : .file
    }

    /// Parses a `--batch` value.
    public static func batchSpec(commandLine text: String) throws(ShipError) -> BatchSpec {
        try ShipConfigDecoder.decodeBatchSpec(commandLine: text)
    }

    static func readText(_ path: String, display: String) throws(ShipError) -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            let exists = FileManager.default.fileExists(atPath: path)
            throw ShipError.usage(exists ? "cannot read \(display)" : "\(display) does not exist",
                                  hint: exists ? "check its permissions" : nil)
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ShipError.config("not UTF-8 text", at: .init(file: display, line: nil), key: nil)
        }
        return text
    }

    public static func absolute(_ path: String, in directory: String) -> String {
        let expanded = (path as NSString).expandingTildeInPath
        if expanded.hasPrefix("/") { return (expanded as NSString).standardizingPath }
        return ((directory as NSString).appendingPathComponent(expanded) as NSString).standardizingPath
    }

    /// A path as messages show it: relative to the current directory when inside it.
    public static func display(_ path: String, relativeTo directory: String) -> String {
        let base = (directory as NSString).standardizingPath
        let prefix = base.hasSuffix("/") ? base : base + "/"
        return path.hasPrefix(prefix) ? String(path.dropFirst(prefix.count)) : path
    }
}
