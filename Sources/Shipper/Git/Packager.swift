import Foundation

/// `ship package`: resolve a revision in the repository holding ship.yml and bundle it.
public enum Packager {
    public static func package(config: ShipConfig, revision: String, output: String?,
                               currentDirectory: String = FileManager.default.currentDirectoryPath) throws(ShipError) -> RevisionBundle {
        let repository = try GitRepository.open(containing: config.directory)
        let resolved = try repository.resolve(revision)
        let path: String
        if let output {
            path = ConfigLoader.absolute(output, in: currentDirectory)
        } else {
            path = (currentDirectory as NSString).appendingPathComponent("\(config.app)-\(resolved.shortCommit).tar.gz")
        }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            throw ShipError.usage("--output \(path) is a directory", hint: "give a file name, e.g. \(path)/\(config.app).tar.gz")
        }
        let parent = (path as NSString).deletingLastPathComponent
        guard FileManager.default.fileExists(atPath: parent, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ShipError.usage("cannot write \(path): \(parent) is not a directory")
        }
        // The bundle a deployment sends: with `build:`'s output (its steps and output on stderr).
        let build = try config.build.map { settings throws(ShipError) in
            try RevisionBuild.run(settings, repository: repository, revision: resolved, app: config.app,
                                  onStep: { FileHandle.standardError.writeQuietly(Data(($0 + "\n").utf8)) },
                                  onLine: { FileHandle.standardError.writeQuietly(Data(("build | " + $0 + "\n").utf8)) })
        }
        return try BundleWriter.write(repository: repository, revision: resolved, to: path, build: build)
    }
}
