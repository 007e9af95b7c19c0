import Crypto
import Foundation

/// What `build:` made of a revision: its export after the commands ran, and the paths the
/// bundle takes from there rather than from the commit.
public struct BuildOutput: Sendable, Equatable {
    /// The built tree (the revision's files and what the commands produced).
    public var directory: String
    /// Short digest of the revision and the build's settings: names the cached build and bundle.
    public var key: String
    /// Paths new in the built tree (directories, files, symlinks), sorted; `exclude` left out.
    public var added: [String]
    /// Files of the revision the build changed: bundled as the build left them.
    public var changed: Set<String>
    /// Taken from the build cache rather than built now.
    public var reused = false
}

/// Runs `build:` once per revision and settings, on the controller, in a clean export of the
/// revision (never in the work tree), and keeps the result in the build cache so a second
/// deployment of the same revision does not build again.
public enum RevisionBuild {
    struct Manifest: Codable {
        var added: [String]
        var changed: [String]
    }

    /// The revision and everything that decides the build's result that ship can see: the
    /// commands and `exclude` (lock files are in the revision).
    public static func key(_ settings: BuildSettings, commit: String) -> String {
        let input = ([commit] + settings.commands + ["--exclude"] + settings.exclude).joined(separator: "\u{0}")
        return SHA256.hash(data: Data(input.utf8)).prefix(8).map { String(format: "%02x", $0) }.joined()
    }

    static func cacheDirectory() -> String {
        let environment = ProcessInfo.processInfo.environment
        return (environment["XDG_CACHE_HOME"] ?? (NSHomeDirectory() + "/.cache")) + "/ship/builds"
    }

    /// The build of the revision, from the cache or made now; `onLine` gets the commands' output.
    public static func run(_ settings: BuildSettings, repository: GitRepository, revision: ResolvedRevision, app: String,
                           onStep: (String) -> Void, onLine: @escaping @Sendable (String) -> Void) throws(ShipError) -> BuildOutput {
        let key = key(settings, commit: revision.commit)
        let root = cacheDirectory() + "/\(app)-\(revision.shortCommit)-\(key)"
        if let data = FileManager.default.contents(atPath: root + "/manifest.json"),
           let manifest = try? JSONDecoder().decode(Manifest.self, from: data) {
            onStep("build \(key) of \(revision.shortCommit): reused from the build cache")
            return BuildOutput(directory: root + "/tree", key: key, added: manifest.added, changed: Set(manifest.changed), reused: true)
        }
        let work = root + ".\(getpid()).tmp"
        try? FileManager.default.removeItem(atPath: work)
        defer { try? FileManager.default.removeItem(atPath: work) }
        do {
            try FileManager.default.createDirectory(atPath: work + "/tree", withIntermediateDirectories: true)
        } catch {
            throw ShipError("cannot create the build directory \(work): \(error.localizedDescription)")
        }
        // The revision exactly as it is bundled (export-ignore applied), unpacked.
        let export = work + "/export.tar.gz"
        _ = try BundleWriter.write(repository: repository, revision: revision, to: export, level: 1)
        let unpacked = ChildProcess.runBlocking("tar", ["-xzf", export, "-C", work + "/tree"], input: .none, onLine: { (_: String) in })
        unlink(export)
        guard unpacked.status == 0 else { throw ShipError("cannot unpack the revision for its build: \(unpacked.stderr)") }
        let tree = work + "/tree"
        let before = snapshot(tree)
        var environment = ProcessInfo.processInfo.environment
        environment["SHIP_APP"] = app
        environment["SHIP_REVISION"] = revision.commit
        environment["SHIP_BUILD"] = "1"
        for command in settings.commands {
            onStep("build: \(command)")
            // stderr with stdout, in order: the output the user sees is the whole story.
            let result = ChildProcess.runBlocking("/bin/sh", ["-c", "exec 2>&1\n" + command], input: .none, environment: environment,
                                                  directory: tree, onLine: onLine)
            guard result.status == 0 else {
                throw ShipError("the build failed: `\(command)` exited \(result.status); no host was touched",
                                hint: "its output is above; it ran in a clean export of \(revision.shortCommit), as `git archive` gives it",
                                exitCode: .failed)
            }
        }
        let after = snapshot(tree)
        let excluded = { (path: String) in settings.exclude.contains { path == $0 || path.hasPrefix($0 + "/") } }
        var added: [String] = []
        var changed: [String] = []
        for (path, entry) in after where !excluded(path) && path != "REVISION" {
            guard let old = before[path] else {
                added.append(path)
                continue
            }
            guard old.kind == entry.kind else {
                throw ShipError("the build replaced \(path) (a \(old.kind) of the revision) with a \(entry.kind)",
                                hint: "build into a new path, or add \(path) to build.exclude", exitCode: .failed)
            }
            if entry.kind == "file", old != entry { changed.append(path) }
        }
        let manifest = Manifest(added: added.sorted(), changed: changed.sorted())
        do {
            try JSONEncoder().encode(manifest).write(to: URL(fileURLWithPath: work + "/manifest.json"))
            try? FileManager.default.removeItem(atPath: root)
            try FileManager.default.moveItem(atPath: work, toPath: root)
        } catch {
            throw ShipError("cannot keep the build in \(root): \(error.localizedDescription)")
        }
        onStep("build \(key) of \(revision.shortCommit): \(added.count) new path\(added.count == 1 ? "" : "s"), \(changed.count) changed file\(changed.count == 1 ? "" : "s")")
        return BuildOutput(directory: root + "/tree", key: key, added: manifest.added, changed: Set(manifest.changed))
    }

    struct Entry: Equatable {
        var kind: String
        var size: Int64
        var modified: Int64
        var inode: UInt64
    }

    /// Every path below `root` with what tells a change apart (kind, size, mtime, inode).
    static func snapshot(_ root: String) -> [String: Entry] {
        var entries: [String: Entry] = [:]
        var pending = [""]
        while let relative = pending.popLast() {
            let directory = relative.isEmpty ? root : root + "/" + relative
            for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] {
                let path = relative.isEmpty ? name : relative + "/" + name
                var info = stat()
                guard lstat(root + "/" + path, &info) == 0 else { continue }
                let kind: String
                switch info.st_mode & S_IFMT {
                case S_IFDIR: kind = "directory"; pending.append(path)
                case S_IFLNK: kind = "symlink"
                case S_IFREG: kind = "file"
                default: continue // sockets and fifos a tool left behind are not bundled
                }
                entries[path] = Entry(kind: kind, size: Int64(info.st_size),
                                      modified: Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec),
                                      inode: UInt64(info.st_ino))
            }
        }
        return entries
    }
}
