import CGit2
import Foundation

/// A commit a revision resolved to.
public struct ResolvedRevision: Sendable, Equatable {
    /// What the user asked for (`main`, `v1.2`, `HEAD~1`, `3f2a1c9`).
    public var spec: String
    /// The full commit id (40 hex digits for SHA-1 repositories).
    public var commit: String
    /// The committer time, seconds since the epoch: the mtime of every bundle entry.
    public var time: Int64
    /// The first line of the commit message.
    public var summary: String

    public var shortCommit: String { String(commit.prefix(12)) }
}

/// A libgit2 repository handle. Not thread-safe: use it from one thread at a time.
public final class GitRepository {
    let pointer: OpaquePointer
    /// The `.git` directory (or the bare repository's directory).
    public let gitDirectory: String

    private static let initialized: Bool = {
        git_libgit2_init()
        return true
    }()

    private init(pointer: OpaquePointer) {
        self.pointer = pointer
        gitDirectory = String(cString: git_repository_path(pointer))
    }

    deinit {
        git_repository_free(pointer)
    }

    /// Opens the repository holding `path` (searching parent directories, like git itself).
    public static func open(containing path: String) throws(ShipError) -> GitRepository {
        _ = initialized
        var repo: OpaquePointer?
        let status = git_repository_open_ext(&repo, path, 0, nil)
        guard status == 0, let repo else {
            throw ShipError.usage("\(path) is not inside a Git repository (\(lastErrorMessage()))",
                                  hint: "ship packages commits; run it inside the repository holding ship.yml, or `git init` one")
        }
        return GitRepository(pointer: repo)
    }

    /// Opens a repository at exactly this directory (a bare repository or a `.git` directory).
    public static func open(at path: String) throws(ShipError) -> GitRepository {
        _ = initialized
        var repo: OpaquePointer?
        let status = git_repository_open_ext(&repo, path, UInt32(GIT_REPOSITORY_OPEN_NO_SEARCH.rawValue), nil)
        guard status == 0, let repo else {
            throw ShipError.usage("\(path) is not a Git repository (\(lastErrorMessage()))")
        }
        return GitRepository(pointer: repo)
    }

    public var isBare: Bool { git_repository_is_bare(pointer) == 1 }

    /// Resolves a branch, tag, short or full commit id, or any revision expression libgit2
    /// understands (`HEAD~1`, `main^`, `v1.0^{commit}`) to a commit.
    public func resolve(_ spec: String) throws(ShipError) -> ResolvedRevision {
        guard !spec.isEmpty, !spec.hasPrefix("-"), spec.rangeOfCharacter(from: .controlCharacters.union(.whitespaces)) == nil else {
            throw ShipError.usage("'\(spec)' is not a revision", hint: "give a branch, tag or commit id")
        }
        var object: OpaquePointer?
        let status = git_revparse_single(&object, pointer, spec)
        guard status == 0, let object else {
            let detail = Self.lastErrorMessage()
            if status == GIT_EAMBIGUOUS.rawValue {
                throw ShipError.usage("revision '\(spec)' is ambiguous (\(detail))", hint: "give more digits of the commit id")
            }
            throw ShipError.usage("unknown revision '\(spec)': no branch, tag or commit by that name in \(gitDirectory)",
                                  hint: "`git branch -a`, `git tag` and `git log --oneline` list what exists; fetch first if it was pushed elsewhere")
        }
        defer { git_object_free(object) }
        var peeled: OpaquePointer?
        guard git_object_peel(&peeled, object, GIT_OBJECT_COMMIT) == 0, let commit = peeled else {
            throw ShipError.usage("revision '\(spec)' does not name a commit (\(Self.lastErrorMessage()))",
                                  hint: "give a branch, tag or commit id")
        }
        defer { git_object_free(commit) }
        let id = Self.hex(git_commit_id(commit))
        let time = Int64(git_commit_time(commit))
        let summary = git_commit_summary(commit).map { String(cString: $0) } ?? ""
        return ResolvedRevision(spec: spec, commit: id, time: time, summary: summary)
    }

    /// The contents of `path` in the commit's tree, or nil when the commit has no such file.
    public func fileContents(_ path: String, at commit: String) throws(ShipError) -> Data? {
        try withEntry(path, at: commit) { entry throws(ShipError) -> Data? in
            guard let entry, git_tree_entry_type(entry) == GIT_OBJECT_BLOB else { return nil }
            var blob: OpaquePointer?
            guard git_blob_lookup(&blob, pointer, git_tree_entry_id(entry)) == 0, let blob else {
                throw Self.failure("cannot read \(path) at \(commit)")
            }
            defer { git_blob_free(blob) }
            let size = Int(git_blob_rawsize(blob))
            guard size > 0, let raw = git_blob_rawcontent(blob) else { return Data() }
            return Data(bytes: raw, count: size)
        }
    }

    /// Runs `body` with the tree entry at `path` in the commit (nil when there is none).
    private func withEntry<T>(_ path: String, at commit: String, _ body: (OpaquePointer?) throws(ShipError) -> T) throws(ShipError) -> T {
        let commitObject = try lookupCommit(commit)
        defer { git_commit_free(commitObject) }
        var tree: OpaquePointer?
        guard git_commit_tree(&tree, commitObject) == 0, let tree else { throw Self.failure("cannot read the tree of \(commit)") }
        defer { git_tree_free(tree) }
        var entry: OpaquePointer?
        guard git_tree_entry_bypath(&entry, tree, path) == 0, let entry else { return try body(nil) }
        defer { git_tree_entry_free(entry) }
        return try body(entry)
    }

    /// What the commit's tree has at `path`.
    public enum EntryKind: Sendable, Equatable {
        case missing
        case executable
        /// A regular file without the executable bit.
        case file
        case directory
        /// A symlink or submodule.
        case other
    }

    public func entryKind(_ path: String, at commit: String) throws(ShipError) -> EntryKind {
        try withEntry(path, at: commit) { entry throws(ShipError) -> EntryKind in
            guard let entry else { return .missing }
            switch git_tree_entry_filemode(entry) {
            case GIT_FILEMODE_BLOB_EXECUTABLE: return .executable
            case GIT_FILEMODE_BLOB: return .file
            case GIT_FILEMODE_TREE: return .directory
            default: return .other
            }
        }
    }

    func lookupCommit(_ commit: String) throws(ShipError) -> OpaquePointer {
        var oid = git_oid()
        guard git_oid_fromstr(&oid, commit) == 0 else { throw Self.failure("'\(commit)' is not a commit id") }
        var object: OpaquePointer?
        guard git_commit_lookup(&object, pointer, &oid) == 0, let object else {
            throw Self.failure("commit \(commit) is not in \(gitDirectory)")
        }
        return object
    }

    // MARK: - Errors

    static func lastErrorMessage() -> String {
        guard let error = git_error_last(), let message = error.pointee.message else { return "unknown libgit2 error" }
        return String(cString: message)
    }

    static func failure(_ what: String) -> ShipError {
        ShipError("\(what): \(lastErrorMessage())")
    }

    static func hex(_ oid: UnsafePointer<git_oid>?) -> String {
        guard let oid else { return "" }
        var buffer = [CChar](repeating: 0, count: Int(GIT_OID_HEXSZ) + 1)
        git_oid_tostr(&buffer, buffer.count, oid)
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
