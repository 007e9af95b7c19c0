import CGit2
import Foundation

/// A packaged revision: a deterministic tar.gz of one commit's tree.
public struct RevisionBundle: Sendable, Equatable {
    public var path: String
    /// SHA-256 of the tar.gz file, hex.
    public var sha256: String
    public var bytes: Int64
    public var revision: ResolvedRevision
    /// Files, links and directories in the archive, REVISION included.
    public var entries: Int
}

/// A delta bundle: what a host holding `base`'s release needs to make `bundle.revision`'s.
public struct DeltaBundle: Sendable, Equatable {
    /// The tar.gz: REVISION, every directory and symlink, and the regular files that differ.
    public var bundle: RevisionBundle
    public var base: String
    /// The regular files (paths) the host copies from the base release, in tree order.
    public var unchanged: [String]
    /// Regular files the bundle holds (new or changed, in content or mode).
    public var changedFiles: Int
}

/// Writes a commit's tree as a tar.gz, reading Git objects only (never the work tree).
///
/// Deterministic: entries in tree order, every mtime the commit time, uid/gid 0, modes 0644,
/// 0755 (executables and directories) and 0777 (symlinks), a fixed gzip header. Paths marked
/// `export-ignore` in the commit's `.gitattributes` (or `$GIT_DIR/info/attributes`) are left
/// out, like `git archive`. A `REVISION` file holding the commit id comes first.
public enum BundleWriter {
    /// `level`: zlib's, 0 (stored: no compression, gzip framing only) to 9.
    /// With `build`, the files the build changed come from its tree, and what it added follows
    /// the revision's entries.
    public static func write(repository: GitRepository, revision: ResolvedRevision, to output: String,
                             level: Int32 = 6, build: BuildOutput? = nil) throws(ShipError) -> RevisionBundle {
        var walker = TreeWalker(repository: repository, revision: revision, gzip: nil)
        walker.build = build
        return try write(&walker, to: output, level: level)
    }

    /// Writes the delta from `base` (a commit) to `revision`: the files of `revision` whose path,
    /// mode and blob are the same in `base` (each tree read with its own commit's export-ignore
    /// attributes) are left out and listed instead. Deletions need nothing: the host makes the
    /// new release from the bundle and the listed files only.
    public static func writeDelta(repository: GitRepository, base: String, revision: ResolvedRevision,
                                  to output: String, level: Int32 = 6) throws(ShipError) -> DeltaBundle {
        var walker = TreeWalker(repository: repository, revision: revision, gzip: nil)
        walker.base = try walker.manifest(of: base)
        let bundle = try write(&walker, to: output, level: level)
        return DeltaBundle(bundle: bundle, base: base, unchanged: walker.unchanged, changedFiles: walker.files)
    }

    /// Fails as writing the revision's bundle would (unsafe paths, submodules, LFS pointers,
    /// unsupported modes) without reading or compressing its files.
    public static func check(repository: GitRepository, revision: ResolvedRevision) throws(ShipError) {
        var walker = TreeWalker(repository: repository, revision: revision, gzip: nil)
        walker.validating = true
        defer { walker.close() }
        _ = try walker.manifest(of: revision.commit)
    }

    /// The walker's archive, compressed into a temporary file renamed to `output` once complete.
    private static func write(_ walker: inout TreeWalker, to output: String, level: Int32) throws(ShipError) -> RevisionBundle {
        let directory = (output as NSString).deletingLastPathComponent
        let temporary = (directory.isEmpty ? "." : directory) + "/.\((output as NSString).lastPathComponent).\(UUID().uuidString.prefix(8)).tmp"
        unlink(temporary)
        let gzip = try ParallelGzipWriter(creating: temporary, level: level)
        walker.gzip = gzip
        let sha256: String
        do {
            try walker.writeArchive()
            sha256 = try gzip.finish()
        } catch {
            gzip.abandon()
            unlink(temporary)
            throw error
        }
        guard rename(temporary, output) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw ShipError("cannot write \(output): \(reason)")
        }
        return RevisionBundle(path: output, sha256: sha256, bytes: gzip.bytesWritten, revision: walker.revision, entries: walker.entries)
    }
}

/// The producer side: walk the tree and emit tar bytes in chunks.
private struct TreeWalker {
    /// A regular file as a tree holds it.
    struct Blob: Hashable {
        var id: [UInt8]
        var mode: UInt32
    }

    let repository: GitRepository
    let revision: ResolvedRevision
    /// Where the archive goes (nil while listing a tree's files for `manifest`).
    var gzip: ParallelGzipWriter?
    let blockSize = ParallelGzipWriter.blockSize
    var chunk: [UInt8] = []
    var archiveSize = 0
    var entries = 0
    /// Regular files written.
    var files = 0
    var attributeOptions = git_attr_options()
    /// Writing a delta: the base tree's regular files; those the same here are listed, not written.
    var base: [[UInt8]: Blob]?
    var unchanged: [String] = []
    private var listing: [[UInt8]: Blob]?
    /// Listing the revision's own tree to check it can be packaged (LFS pointers included).
    var validating = false
    /// `build:`'s output, bundled with the revision.
    var build: BuildOutput?
    private var odb: OpaquePointer?

    init(repository: GitRepository, revision: ResolvedRevision, gzip: ParallelGzipWriter?) {
        self.repository = repository
        self.revision = revision
        self.gzip = gzip
        chunk.reserveCapacity(blockSize)
    }

    mutating func close() {
        if let odb { git_odb_free(odb) }
        odb = nil
    }

    /// The regular files of `commit`'s tree as it would be packaged (export-ignore applied).
    mutating func manifest(of commit: String) throws(ShipError) -> [[UInt8]: Blob] {
        listing = [:]
        defer { listing = nil }
        try withTree(of: commit) { walker, tree throws(ShipError) in try walker.walk(tree: tree, prefix: []) }
        return listing ?? [:]
    }

    /// Runs `body` with the commit's tree, and its attributes loaded for export-ignore.
    mutating func withTree(of commitId: String, _ body: (inout TreeWalker, OpaquePointer) throws(ShipError) -> Void) throws(ShipError) {
        let commit = try repository.lookupCommit(commitId)
        defer { git_commit_free(commit) }
        var tree: OpaquePointer?
        guard git_commit_tree(&tree, commit) == 0, let tree else {
            throw GitRepository.failure("cannot read the tree of \(commitId)")
        }
        defer { git_tree_free(tree) }

        // Attributes come from the commit being packaged (and $GIT_DIR/info/attributes), never from
        // the work tree or the on-disk index: the repository gets an in-memory index holding just
        // the commit's .gitattributes files, which libgit2 reads and caches by blob id.
        var index: OpaquePointer?
        guard git_index_new(&index) == 0, let index else { throw GitRepository.failure("cannot create an index") }
        defer { git_index_free(index) }
        try addAttributeFiles(of: tree, prefix: "", to: index)
        git_repository_set_index(repository.pointer, index)
        attributeOptions.version = UInt32(GIT_ATTR_OPTIONS_VERSION)
        attributeOptions.flags = UInt32(GIT_ATTR_CHECK_INDEX_ONLY)
        try body(&self, tree)
    }

    mutating func writeArchive() throws(ShipError) {
        try withTree(of: revision.commit) { walker, tree throws(ShipError) in try walker.writeEntries(of: tree) }
    }

    private mutating func writeEntries(of tree: OpaquePointer) throws(ShipError) {
        let revisionFile = Array((revision.commit + "\n").utf8)
        try emitHeader(path: Array("REVISION".utf8), type: .file, mode: 0o644, size: revisionFile.count)
        try emitData(revisionFile)
        try walk(tree: tree, prefix: [])
        if let build { try writeBuilt(build.added, of: build) }
        try emit(TarFormat.trailer(archiveSizeSoFar: archiveSize))
        if !chunk.isEmpty { try gzip?.write(chunk) }
    }

    mutating func walk(tree: OpaquePointer, prefix: [UInt8]) throws(ShipError) {
        let count = git_tree_entrycount(tree)
        for i in 0..<count {
            guard let entry = git_tree_entry_byindex(tree, i) else { continue }
            let name = Array(UnsafeBufferPointer(start: git_tree_entry_name(entry), count: strlen(git_tree_entry_name(entry))))
                .map { UInt8(bitPattern: $0) }
            let path = prefix + name
            try checkSafe(name: name, path: path)
            if prefix.isEmpty && name == Array("REVISION".utf8) { continue } // ship writes its own
            let mode = git_tree_entry_filemode(entry)
            if isExportIgnored(path) { continue }
            switch mode {
            case GIT_FILEMODE_TREE:
                var subtree: OpaquePointer?
                guard git_tree_lookup(&subtree, repository.pointer, git_tree_entry_id(entry)) == 0, let subtree else {
                    throw GitRepository.failure("cannot read tree \(display(path))")
                }
                defer { git_tree_free(subtree) }
                if listing == nil { try emitHeader(path: path + [0x2F], type: .directory, mode: 0o755, size: 0) }
                try walk(tree: subtree, prefix: path + [0x2F])
            case GIT_FILEMODE_BLOB, GIT_FILEMODE_BLOB_EXECUTABLE, GIT_FILEMODE_LINK:
                if mode != GIT_FILEMODE_LINK, listing != nil || base != nil {
                    let file = Blob(id: withUnsafeBytes(of: git_tree_entry_id(entry).pointee.id) { Array($0) }, mode: mode.rawValue)
                    if listing != nil {
                        if validating { try checkNotLFS(git_tree_entry_id(entry), path: path) }
                        listing![path] = file
                        continue
                    }
                    if base?[path] == file {
                        unchanged.append(display(path))
                        continue
                    }
                }
                if listing != nil { continue }
                if let build, mode != GIT_FILEMODE_LINK, build.changed.contains(display(path)) {
                    try writeBuilt([display(path)], of: build)
                    continue
                }
                var blob: OpaquePointer?
                guard git_blob_lookup(&blob, repository.pointer, git_tree_entry_id(entry)) == 0, let blob else {
                    throw GitRepository.failure("cannot read \(display(path))")
                }
                defer { git_blob_free(blob) }
                let size = Int(git_blob_rawsize(blob))
                let content = UnsafeRawBufferPointer(start: git_blob_rawcontent(blob), count: size)
                if mode == GIT_FILEMODE_LINK {
                    try emitHeader(path: path, type: .symlink, mode: 0o777, size: 0, linkTarget: Array(content))
                } else {
                    if size < 1024 && isLFSPointer(content) { throw lfsPointer(path) }
                    try emitHeader(path: path, type: .file, mode: mode == GIT_FILEMODE_BLOB_EXECUTABLE ? 0o755 : 0o644, size: size)
                    try emitData(content)
                    files += 1
                }
            case GIT_FILEMODE_COMMIT:
                throw ShipError("\(display(path)) at \(revision.shortCommit) is a Git submodule; ship packages one repository and would leave it empty",
                                hint: "vendor the submodule's files into the repository, or add `\(display(path)) export-ignore` to .gitattributes to leave it out")
            default:
                throw ShipError("\(display(path)) at \(revision.shortCommit) has an unsupported mode \(String(mode.rawValue, radix: 8))")
            }
        }
    }

    /// Entries of the build's tree, as the revision's are written: mode 755 or 644, the
    /// revision's time, no owner.
    mutating func writeBuilt(_ paths: [String], of build: BuildOutput) throws(ShipError) {
        for path in paths {
            let full = build.directory + "/" + path
            let bytes = Array(path.utf8)
            var info = stat()
            guard lstat(full, &info) == 0 else { throw ShipError("the build's \(path) is gone from \(build.directory)") }
            switch info.st_mode & S_IFMT {
            case S_IFDIR:
                try emitHeader(path: bytes + [0x2F], type: .directory, mode: 0o755, size: 0)
            case S_IFLNK:
                guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: full) else {
                    throw ShipError("cannot read the build's link \(path)")
                }
                try emitHeader(path: bytes, type: .symlink, mode: 0o777, size: 0, linkTarget: Array(target.utf8))
            case S_IFREG:
                guard let handle = FileHandle(forReadingAtPath: full) else { throw ShipError("cannot read the build's \(path)") }
                defer { try? handle.close() }
                try emitHeader(path: bytes, type: .file, mode: info.st_mode & 0o111 != 0 ? 0o755 : 0o644, size: Int(info.st_size))
                var left = Int(info.st_size)
                while left > 0 {
                    let data = handle.readData(ofLength: min(left, 1 << 20))
                    guard !data.isEmpty else { throw ShipError("the build's \(path) changed while it was bundled") }
                    try emit([UInt8](data))
                    left -= data.count
                }
                try emit(TarFormat.padding(Int(info.st_size)))
                files += 1
            default:
                continue
            }
        }
    }

    /// Adds every `.gitattributes` blob of the tree to `index`, recursing into subtrees.
    func addAttributeFiles(of tree: OpaquePointer, prefix: String, to index: OpaquePointer) throws(ShipError) {
        for i in 0..<git_tree_entrycount(tree) {
            guard let entry = git_tree_entry_byindex(tree, i) else { continue }
            let name = String(cString: git_tree_entry_name(entry))
            let mode = git_tree_entry_filemode(entry)
            if mode == GIT_FILEMODE_TREE {
                var subtree: OpaquePointer?
                guard git_tree_lookup(&subtree, repository.pointer, git_tree_entry_id(entry)) == 0, let subtree else {
                    throw GitRepository.failure("cannot read tree \(prefix)\(name)")
                }
                defer { git_tree_free(subtree) }
                try addAttributeFiles(of: subtree, prefix: prefix + name + "/", to: index)
            } else if name == ".gitattributes" && (mode == GIT_FILEMODE_BLOB || mode == GIT_FILEMODE_BLOB_EXECUTABLE) {
                var indexEntry = git_index_entry()
                indexEntry.mode = UInt32(GIT_FILEMODE_BLOB.rawValue)
                indexEntry.id = git_tree_entry_id(entry).pointee
                let status = (prefix + name).withCString { path -> Int32 in
                    indexEntry.path = path
                    return git_index_add(index, &indexEntry)
                }
                guard status == 0 else { throw GitRepository.failure("cannot read \(prefix)\(name)") }
            }
        }
    }

    func checkSafe(name: [UInt8], path: [UInt8]) throws(ShipError) {
        let lowered = name.map { $0 >= 0x41 && $0 <= 0x5A ? $0 + 0x20 : $0 }
        if name.isEmpty || name == [0x2E] || name == [0x2E, 0x2E] || lowered == Array(".git".utf8) || name.contains(0x2F) {
            throw ShipError("revision \(revision.shortCommit) holds an unsafe path '\(display(path))'",
                            hint: "git fsck reports such trees; ship refuses to package them")
        }
    }

    mutating func isExportIgnored(_ path: [UInt8]) -> Bool {
        var value: UnsafePointer<CChar>?
        let status = path.withUnsafeBufferPointer { buffer -> Int32 in
            var cPath = buffer.map { CChar(bitPattern: $0) }
            cPath.append(0)
            return git_attr_get_ext(&value, repository.pointer, &attributeOptions, cPath, "export-ignore")
        }
        return status == 0 && git_attr_value(value) == GIT_ATTR_VALUE_TRUE
    }

    func lfsPointer(_ path: [UInt8]) -> ShipError {
        ShipError("\(display(path)) at \(revision.shortCommit) is a Git LFS pointer, not the file itself",
                  hint: "ship packages what the commit stores and does not fetch LFS objects: commit the file itself, or mark it export-ignore in .gitattributes")
    }

    /// Reads a blob's size from its header, and the blob itself only when it is small enough to
    /// be an LFS pointer.
    mutating func checkNotLFS(_ id: UnsafePointer<git_oid>, path: [UInt8]) throws(ShipError) {
        if odb == nil {
            guard git_repository_odb(&odb, repository.pointer) == 0 else { throw GitRepository.failure("cannot open the object database") }
        }
        var size = 0
        var type = GIT_OBJECT_ANY
        guard git_odb_read_header(&size, &type, odb, id) == 0 else { throw GitRepository.failure("cannot read \(display(path))") }
        guard size < 1024 else { return }
        var blob: OpaquePointer?
        guard git_blob_lookup(&blob, repository.pointer, id) == 0, let blob else { throw GitRepository.failure("cannot read \(display(path))") }
        defer { git_blob_free(blob) }
        if isLFSPointer(UnsafeRawBufferPointer(start: git_blob_rawcontent(blob), count: Int(git_blob_rawsize(blob)))) { throw lfsPointer(path) }
    }

    func isLFSPointer(_ content: UnsafeRawBufferPointer) -> Bool {
        let marker = Array("version https://git-lfs.github.com/spec/v1".utf8)
        return content.count >= marker.count && content.prefix(marker.count).elementsEqual(marker)
    }

    func display(_ path: [UInt8]) -> String {
        String(decoding: path, as: UTF8.self)
    }

    // MARK: - Output

    mutating func emitHeader(path: [UInt8], type: TarFormat.EntryType, mode: Int, size: Int,
                             linkTarget: [UInt8] = []) throws(ShipError) {
        entries += 1
        try emit(TarFormat.headers(path: path, type: type, mode: mode, size: size, mtime: revision.time, linkTarget: linkTarget))
    }

    mutating func emitData(_ bytes: [UInt8]) throws(ShipError) {
        try emit(bytes)
        try emit(TarFormat.padding(bytes.count))
    }

    mutating func emitData(_ content: UnsafeRawBufferPointer) throws(ShipError) {
        try emit(content)
        try emit(TarFormat.padding(content.count))
    }

    /// Appends bytes, handing every full block to the compressor. Blocks are cut at exact
    /// multiples of the block size, so the compressed output depends on the tar bytes alone.
    mutating func emit(_ bytes: [UInt8]) throws(ShipError) {
        archiveSize += bytes.count
        var offset = 0
        while offset < bytes.count {
            let take = min(blockSize - chunk.count, bytes.count - offset)
            chunk.append(contentsOf: bytes[offset..<(offset + take)])
            offset += take
            if chunk.count == blockSize { try flush() }
        }
    }

    mutating func emit(_ bytes: UnsafeRawBufferPointer) throws(ShipError) {
        archiveSize += bytes.count
        var offset = 0
        while offset < bytes.count {
            let take = min(blockSize - chunk.count, bytes.count - offset)
            chunk.append(contentsOf: UnsafeBufferPointer(rebasing: bytes.assumingMemoryBound(to: UInt8.self)[offset..<(offset + take)]))
            offset += take
            if chunk.count == blockSize { try flush() }
        }
    }

    mutating func flush() throws(ShipError) {
        try gzip?.write(chunk)
        chunk = []
        chunk.reserveCapacity(blockSize)
    }
}
