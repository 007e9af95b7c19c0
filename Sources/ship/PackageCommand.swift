import ArgumentParser
import Foundation
import Shipper

struct PackageCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "package",
        abstract: "Bundle a revision as a deterministic tar.gz; print its path and SHA-256.",
        discussion: """
            The bundle holds the commit's tree (never the work tree): modes and symlinks kept, \
            export-ignore paths left out, and a REVISION file with the full commit id. The same \
            commit always gives a byte-identical bundle.
            """
    )

    @Argument(help: "A branch, tag, commit id or expression such as HEAD~1 (default: HEAD).")
    var revision: String = "HEAD"

    @Option(name: .shortAndLong, help: ArgumentHelp("Where to write the bundle (default: ./APP-COMMIT.tar.gz).", valueName: "FILE"))
    var output: String?

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    @OptionGroup var options: ConfigOptions

    func run() async throws {
        let config = try options.load()
        let bundle = try Packager.package(config: config, revision: revision, output: output)
        if json {
            let object: [String: Any] = [
                "event": "packaged", "time": ISO8601DateFormatter().string(from: Date()),
                "path": bundle.path, "sha256": bundle.sha256, "bytes": bundle.bytes,
                "revision": bundle.revision.commit, "entries": bundle.entries,
            ]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print(bundle.path)
            print(bundle.sha256)
            let summary = "packaged \(config.app) \(bundle.revision.shortCommit) (\(bundle.revision.spec)): "
                + "\(bundle.entries) entries, \(ByteCountFormatter.string(fromByteCount: bundle.bytes, countStyle: .file))\n"
            FileHandle.standardError.writeQuietly(Data(summary.utf8))
        }
    }
}
