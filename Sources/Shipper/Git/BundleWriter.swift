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

/// Writes a commit's tree as a tar.gz, reading Git objects only (never the work tree).
///
/// Deterministic: entries in tree order, every mtime the commit time, uid/gid 0, modes 0644,
/// 0755 (executables and directories) and 0777 (symlinks), a fixed gzip header. Paths marked
/// `export-ignore` in the commit's `.gitattributes` (or `$GIT_DIR/info/attributes`) are left
/// out, like `git archive`. A `REVISION` file holding the commit id comes first.
public enum BundleWriter {
    static let chunkSize = 1 << 20

    public static func write(repository: GitRepository, revision: ResolvedRevision, to output: String) throws(ShipError) -> RevisionBundle {
        let directory = (output as NSString).deletingLastPathComponent
        let temporary = (directory.isEmpty ? "." : directory) + "/.\((output as NSString).lastPathComponent).\(getpid()).tmp"
        unlink(temporary)
        let gzip = try GzipFileWriter(creating: temporary)
        let pipe = ChunkPipe()
        let compressor = CompressorThread(gzip: gzip, pipe: pipe)
        let thread = Thread { compressor.run() }
        thread.start()

        var walker = TreeWalker(repository: repository, revision: revision, pipe: pipe)
        var produceError: ShipError?
        do {
            try walker.writeArchive()
        } catch {
            produceError = error
        }
        pipe.close()
        do {
            try pipe.waitForConsumer()
        } catch {
            produceError = produceError ?? error
        }
        if let produceError {
            unlink(temporary)
            throw produceError
        }
        guard let sha256 = compressor.sha256 else {
            unlink(temporary)
            throw ShipError("writing \(output) failed")
        }
        guard rename(temporary, output) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw ShipError("cannot write \(output): \(reason)")
        }
        return RevisionBundle(path: output, sha256: sha256, bytes: gzip.bytesWritten, revision: revision, entries: walker.entries)
    }
}

/// The consumer side: compress, hash and write every chunk.
private final class CompressorThread: @unchecked Sendable {
    let gzip: GzipFileWriter
    let pipe: ChunkPipe
    var sha256: String?

    init(gzip: GzipFileWriter, pipe: ChunkPipe) {
        self.gzip = gzip
        self.pipe = pipe
    }

    func run() {
        do {
            while let chunk = pipe.take() {
                try gzip.write(chunk)
            }
            sha256 = try gzip.finish()
            pipe.consumerFinished(error: nil)
        } catch {
            pipe.consumerFinished(error: error)
        }
    }
}

/// The producer side: walk the tree and emit tar bytes in chunks.
private struct TreeWalker {
    let repository: GitRepository
    let revision: ResolvedRevision
    let pipe: ChunkPipe
    var chunk: [UInt8] = []
    var archiveSize = 0
    var entries = 0
    var attributeOptions = git_attr_options()

    init(repository: GitRepository, revision: ResolvedRevision, pipe: ChunkPipe) {
        self.repository = repository
        self.revision = revision
        self.pipe = pipe
        chunk.reserveCapacity(BundleWriter.chunkSize)
    }

    mutating func writeArchive() throws(ShipError) {
        let commit = try repository.lookupCommit(revision.commit)
        defer { git_commit_free(commit) }
        var tree: OpaquePointer?
        guard git_commit_tree(&tree, commit) == 0, let tree else {
            throw GitRepository.failure("cannot read the tree of \(revision.commit)")
        }
        defer { git_tree_free(tree) }

        // Attributes come from the commit being packaged (and $GIT_DIR/info/attributes), never from
        // the work tree or the index: give the repository an empty in-memory index for the lookups.
        var index: OpaquePointer?
        guard git_index_new(&index) == 0, let index else { throw GitRepository.failure("cannot create an index") }
        defer { git_index_free(index) }
        git_repository_set_index(repository.pointer, index)
        attributeOptions.version = UInt32(GIT_ATTR_OPTIONS_VERSION)
        attributeOptions.flags = UInt32(GIT_ATTR_CHECK_INDEX_ONLY) | UInt32(GIT_ATTR_CHECK_INCLUDE_COMMIT)
        attributeOptions.attr_commit_id = git_commit_id(commit).pointee

        let revisionFile = Array((revision.commit + "\n").utf8)
        try emitHeader(path: Array("REVISION".utf8), type: .file, mode: 0o644, size: revisionFile.count)
        try emitData(revisionFile)
        try walk(tree: tree, prefix: [])
        try emit(TarFormat.trailer(archiveSizeSoFar: archiveSize))
        if !chunk.isEmpty { try pipe.put(chunk) }
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
                try emitHeader(path: path + [0x2F], type: .directory, mode: 0o755, size: 0)
                try walk(tree: subtree, prefix: path + [0x2F])
            case GIT_FILEMODE_BLOB, GIT_FILEMODE_BLOB_EXECUTABLE, GIT_FILEMODE_LINK:
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
                    if size < 1024 && isLFSPointer(content) {
                        throw ShipError("\(display(path)) at \(revision.shortCommit) is a Git LFS pointer, not the file itself",
                                        hint: "ship packages what the commit stores and does not fetch LFS objects: commit the file itself, or mark it export-ignore in .gitattributes")
                    }
                    try emitHeader(path: path, type: .file, mode: mode == GIT_FILEMODE_BLOB_EXECUTABLE ? 0o755 : 0o644, size: size)
                    try emitData(content)
                }
            case GIT_FILEMODE_COMMIT:
                throw ShipError("\(display(path)) at \(revision.shortCommit) is a Git submodule; ship packages one repository and would leave it empty",
                                hint: "vendor the submodule's files into the repository, or add `\(display(path)) export-ignore` to .gitattributes to leave it out")
            default:
                throw ShipError("\(display(path)) at \(revision.shortCommit) has an unsupported mode \(String(mode.rawValue, radix: 8))")
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

    /// Appends small byte arrays (headers, padding) to the current chunk.
    mutating func emit(_ bytes: [UInt8]) throws(ShipError) {
        archiveSize += bytes.count
        chunk.append(contentsOf: bytes)
        if chunk.count >= BundleWriter.chunkSize { try flush() }
    }

    mutating func flush() throws(ShipError) {
        try pipe.put(chunk)
        chunk = []
        chunk.reserveCapacity(BundleWriter.chunkSize)
    }

    /// Appends to the current chunk, handing full chunks to the compressor.
    mutating func emit(_ bytes: UnsafeRawBufferPointer) throws(ShipError) {
        archiveSize += bytes.count
        var offset = 0
        while offset < bytes.count {
            let room = max(1, BundleWriter.chunkSize - chunk.count)
            let take = min(room, bytes.count - offset)
            chunk.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + take)]))
            offset += take
            if chunk.count >= BundleWriter.chunkSize { try flush() }
        }
    }
}
