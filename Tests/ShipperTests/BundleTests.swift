import Crypto
import Foundation
import Testing
@testable import Shipper

private let shipYAML = "app: shop\ndeploy_to: /srv/shop\nenvironments:\n  prod:\n    hosts: [web1]\n"

/// A repository with ship.yml, an executable, a symlink, nested dirs and a binary file.
private func sampleRepository() throws -> TestRepository {
    let repo = try TestRepository()
    try repo.write("ship.yml", shipYAML)
    try repo.write("index.php", "<?php echo 'hello';\n")
    try repo.write("bin/console", "#!/bin/sh\necho console\n", executable: true)
    try repo.write("web/css/site.css", "body { color: #333; }\n")
    try FileManager.default.createSymbolicLink(atPath: repo.directory.file("web/index.php"), withDestinationPath: "../index.php")
    var binary = Data()
    for i in 0..<4096 { binary.append(UInt8(truncatingIfNeeded: i &* 7919)) }
    try binary.write(to: URL(fileURLWithPath: repo.directory.file("web/logo.png")))
    try repo.commitAll("first")
    return repo
}

private func package(_ repo: TestRepository, _ revision: String = "HEAD", to name: String = "bundle.tar.gz",
                     in output: TemporaryDirectory) throws -> RevisionBundle {
    let config = try ConfigLoader.load(currentDirectory: repo.path)
    return try Packager.package(config: config, revision: revision, output: output.file(name), currentDirectory: output.path)
}

private func sha256(ofFile path: String) throws -> String {
    let data = try Data(contentsOf: URL(fileURLWithPath: path))
    return SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
}

private func extract(_ bundle: RevisionBundle, into directory: TemporaryDirectory) throws {
    let result = try run("tar", ["-xzf", bundle.path, "-C", directory.path])
    guard result.status == 0 else { throw TestFailure("tar -x failed: \(result.stderr)") }
}

@Suite("ship package")
struct BundleTests {
    @Test("the same commit gives a byte-identical bundle, whatever the work tree, index or clone holds")
    func deterministic() throws {
        let repo = try sampleRepository()
        let out = try TemporaryDirectory()
        let first = try package(repo, to: "a.tar.gz", in: out)
        // Uncommitted edits, a staged file and an untracked file must change nothing.
        try repo.write("index.php", "<?php echo 'edited';\n")
        try repo.write("staged.txt", "staged\n")
        try repo.git(["add", "staged.txt"])
        try repo.write("untracked.txt", "untracked\n")
        try repo.write(".gitattributes", "index.php export-ignore\n")
        let second = try package(repo, to: "b.tar.gz", in: out)
        #expect(first.sha256 == second.sha256)
        #expect(try Data(contentsOf: URL(fileURLWithPath: first.path)) == Data(contentsOf: URL(fileURLWithPath: second.path)))
        #expect(try sha256(ofFile: first.path) == first.sha256)

        let clone = try TemporaryDirectory()
        try run("git", ["clone", "-q", repo.path, clone.file("copy")])
        let config = try ConfigLoader.load(currentDirectory: clone.file("copy"))
        let third = try Packager.package(config: config, revision: first.revision.commit, output: out.file("c.tar.gz"))
        #expect(third.sha256 == first.sha256)
    }

    @Test("modes, symlinks, directories, owners and mtimes as the commit has them")
    func modesAndSymlinks() throws {
        let repo = try sampleRepository()
        let out = try TemporaryDirectory()
        let bundle = try package(repo, in: out)
        let listing = try listTar(bundle.path)
        func line(_ path: String) -> String? { listing.first { $0.hasSuffix(" " + path) || $0.contains(" " + path + " -> ") } }
        #expect(line("bin/console")?.hasPrefix("-rwxr-xr-x 0/0") == true)
        #expect(line("index.php")?.hasPrefix("-rw-r--r-- 0/0") == true)
        #expect(line("bin/")?.hasPrefix("drwxr-xr-x 0/0") == true)
        #expect(line("web/index.php")?.hasPrefix("lrwxrwxrwx 0/0") == true)
        #expect(line("web/index.php")?.hasSuffix("web/index.php -> ../index.php") == true)
        #expect(listing.first?.hasSuffix(" REVISION") == true)

        let extracted = try TemporaryDirectory()
        try extract(bundle, into: extracted)
        let revision = try String(contentsOfFile: extracted.file("REVISION"), encoding: .utf8)
        #expect(revision == bundle.revision.commit + "\n")
        #expect(bundle.revision.commit.count == 40)
        let attributes = try FileManager.default.attributesOfItem(atPath: extracted.file("index.php"))
        let mtime = try #require(attributes[.modificationDate] as? Date)
        #expect(Int64(mtime.timeIntervalSince1970) == bundle.revision.time)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: extracted.file("web/index.php")) == "../index.php")
    }

    @Test("contents equal git archive's for the same commit")
    func sameContentsAsGitArchive() throws {
        let repo = try sampleRepository()
        let longDir = String(repeating: "deep-directory-name/", count: 8)
        try repo.write(longDir + "a-file-with-a-rather-long-name-" + String(repeating: "x", count: 90) + ".txt", "long\n")
        try repo.write("ünïcödé/ファイル.txt", "unicode\n")
        try FileManager.default.createSymbolicLink(atPath: repo.directory.file("far-link"),
                                                   withDestinationPath: longDir + String(repeating: "t", count: 40))
        try repo.commitAll("long paths")
        let out = try TemporaryDirectory()
        let bundle = try package(repo, in: out)
        let ours = try TemporaryDirectory(), theirs = try TemporaryDirectory()
        try extract(bundle, into: ours)
        try FileManager.default.removeItem(atPath: ours.file("REVISION"))
        let archive = try run("/bin/sh", ["-c", "git archive --format=tar HEAD | tar -xf - -C '\(theirs.path)'"], in: repo.path)
        #expect(archive.status == 0)
        let diff = try run("diff", ["-r", "--no-dereference", ours.path, theirs.path])
        #expect(diff.status == 0, "\(diff.stdout)")
    }

    @Test("export-ignore in the commit's .gitattributes leaves paths out, files and directories alike")
    func exportIgnore() throws {
        let repo = try sampleRepository()
        try repo.write("tests/unit/FooTest.php", "<?php\n")
        try repo.write("README.md", "# readme\n")
        try repo.write("docs/guide.txt", "guide\n")
        try repo.write("web/css/site.scss", "$c: #333;\n")
        try repo.write(".gitattributes", "/tests export-ignore\n*.md export-ignore\ndocs/ export-ignore\n*.scss export-ignore\n.gitattributes export-ignore\n")
        try repo.commitAll("attributes")
        let out = try TemporaryDirectory()
        let bundle = try package(repo, in: out)
        let paths = try listTar(bundle.path).map { $0.split(separator: " ").last.map(String.init) ?? "" }
        #expect(!paths.contains { $0.hasPrefix("tests") })
        #expect(!paths.contains("README.md"))
        #expect(!paths.contains { $0.hasPrefix("docs") })
        #expect(!paths.contains("web/css/site.scss"))
        #expect(!paths.contains(".gitattributes"))
        #expect(paths.contains("web/css/site.css"))
        #expect(paths.contains("index.php"))
    }

    @Test("branches, tags, short and full ids and relative revisions resolve to the right commit",
          arguments: ["main", "v1.0", "v1.0-annotated", "SHORT", "FULL", "HEAD~1", "main^"])
    func revisions(_ spec: String) throws {
        let repo = try sampleRepository()
        let first = try repo.git(["rev-parse", "HEAD"])
        try repo.git(["tag", "v1.0"])
        try repo.git(["tag", "-a", "v1.0-annotated", "-m", "release"])
        try repo.write("index.php", "<?php echo 'second';\n")
        try repo.commitAll("second")
        let revision = spec == "SHORT" ? String(first.prefix(7)) : spec == "FULL" ? first : spec
        let expected = spec == "main" ? try repo.git(["rev-parse", "HEAD"]) : first
        let out = try TemporaryDirectory()
        let bundle = try package(repo, revision, in: out)
        #expect(bundle.revision.commit == expected)
        let extracted = try TemporaryDirectory()
        try extract(bundle, into: extracted)
        #expect(try String(contentsOfFile: extracted.file("REVISION"), encoding: .utf8) == expected + "\n")
    }

    @Test("an unknown revision is a clear error naming it, and writes nothing")
    func unknownRevision() throws {
        let repo = try sampleRepository()
        let out = try TemporaryDirectory()
        #expect {
            try package(repo, "no-such-branch", in: out)
        } throws: { error in
            let error = error as? ShipError
            return error?.exitCode == .usage && error?.message.contains("unknown revision 'no-such-branch'") == true
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: out.path).isEmpty)
    }

    @Test("a submodule is refused with a hint, unless it is export-ignored")
    func submodule() throws {
        let repo = try sampleRepository()
        let head = try repo.git(["rev-parse", "HEAD"])
        try repo.git(["update-index", "--add", "--cacheinfo", "160000,\(head),vendor/lib"])
        try repo.git(["commit", "-q", "-m", "submodule"])
        let out = try TemporaryDirectory()
        #expect {
            try package(repo, in: out)
        } throws: { error in
            let error = error as? ShipError
            return error?.message.contains("vendor/lib") == true && error?.message.contains("submodule") == true
                && error?.hint?.contains("export-ignore") == true
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: out.path).isEmpty, "no half bundle left behind")
        try repo.write(".gitattributes", "vendor/lib export-ignore\n")
        try repo.commitAll("ignore the submodule")
        let bundle = try package(repo, in: out)
        #expect(try !listTar(bundle.path).contains { $0.contains("vendor/lib") })
    }

    @Test("a Git LFS pointer is refused with a hint")
    func lfsPointer() throws {
        let repo = try sampleRepository()
        try repo.write("web/video.mp4", "version https://git-lfs.github.com/spec/v1\noid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 12345\n")
        try repo.commitAll("lfs")
        let out = try TemporaryDirectory()
        #expect {
            try package(repo, in: out)
        } throws: { error in
            (error as? ShipError)?.message.contains("web/video.mp4") == true && (error as? ShipError)?.message.contains("Git LFS pointer") == true
        }
    }

    @Test("a bare repository packages the same bundle as its source")
    func bareRepository() throws {
        let repo = try sampleRepository()
        let bareDir = try TemporaryDirectory()
        try run("git", ["clone", "-q", "--bare", repo.path, bareDir.file("shop.git")])
        let bare = try GitRepository.open(at: bareDir.file("shop.git"))
        #expect(bare.isBare)
        let revision = try bare.resolve("main")
        let out = try TemporaryDirectory()
        let fromBare = try BundleWriter.write(repository: bare, revision: revision, to: out.file("bare.tar.gz"))
        let fromRepo = try package(repo, in: out)
        #expect(fromBare.sha256 == fromRepo.sha256)
        #expect(try bare.fileContents("ship.yml", at: revision.commit) == Data(shipYAML.utf8))
        #expect(try bare.fileContents("missing.yml", at: revision.commit) == nil)
    }
}

extension BundleTests {
    @Test("a delta holds REVISION, every directory and symlink and the files that differ in content or mode; each tree with its own export-ignore")
    func delta() throws {
        let repo = try sampleRepository()
        let out = try TemporaryDirectory()
        let base = try GitRepository.open(containing: repo.path).resolve("HEAD").commit
        try repo.write("index.php", "<?php echo 'changed';\n")
        _ = try run("chmod", ["-x", repo.directory.file("bin/console")])
        try repo.write("docs/notes.md", "new in the second commit\n")
        try repo.write(".gitattributes", "web/css/site.css export-ignore\n")
        try repo.commitAll("second")
        let repository = try GitRepository.open(containing: repo.path)
        let revision = try repository.resolve("HEAD")
        let delta = try BundleWriter.writeDelta(repository: repository, base: base, revision: revision, to: out.file("delta.tar.gz"))
        #expect(delta.unchanged == ["ship.yml", "web/logo.png"], "unchanged: same path, mode and blob")
        #expect(delta.changedFiles == 4, ".gitattributes, bin/console (mode), docs/notes.md, index.php")
        let listing = try run("tar", ["-tzvf", delta.bundle.path]).stdout
        let names = listing.split(separator: "\n").map { String($0.split(separator: " ", omittingEmptySubsequences: true)[5]) }
        #expect(names == ["REVISION", ".gitattributes", "bin/", "bin/console", "docs/", "docs/notes.md", "index.php", "web/", "web/css/", "web/index.php"],
                "site.css is export-ignored by the new commit; the symlink always travels")
        #expect(try sha256(ofFile: delta.bundle.path) == delta.bundle.sha256)
    }
}
