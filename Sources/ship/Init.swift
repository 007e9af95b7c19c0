import ArgumentParser
import Foundation
import Shipper

struct Init: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a commented ship.yml and appspec.yml to start from (with --preset, for a framework).",
        discussion: """
            With --preset, the files follow the framework's conventions: shared paths (uploads, \
            settings), a build step (composer), a run-once migrate with maintenance mode around it, \
            caches and PHP-FPM after the switch, and small hook scripts in deploy/. The web server \
            configuration that goes with them is printed (docs/drupal.md, docs/wordpress.md, \
            docs/laravel.md).

            Examples:
              ship init
              ship init --preset drupal
            """
    )

    @Option(help: ArgumentHelp("drupal, wordpress, laravel or static.", valueName: "PRESET"))
    var preset: String?

    @Flag(help: "Overwrite existing files.")
    var force = false

    func run() async throws {
        let directory = FileManager.default.currentDirectoryPath
        let app = Templates.appName(forDirectory: directory)
        let chosen = try preset.map { name throws(ShipError) -> Preset in
            guard let preset = Preset(rawValue: name.lowercased()) else {
                throw ShipError.usage("unknown preset \(name)", hint: "presets: " + Preset.allCases.map(\.rawValue).joined(separator: ", "))
            }
            return preset
        }
        let files: [Preset.File] = chosen?.files(app: app)
            ?? [Preset.File(path: ConfigLoader.fileName, text: Templates.shipYAML(app: app), executable: false),
                Preset.File(path: ConfigLoader.appspecName, text: Templates.appspecYAML, executable: false)]
        if !force {
            let existing = files.map(\.path).filter { FileManager.default.fileExists(atPath: $0) }
            if !existing.isEmpty {
                throw ShipError.usage("\(existing.joined(separator: ", ")) already exist\(existing.count == 1 ? "s" : "") here; nothing written",
                                      hint: "run `ship check` to validate it, or `ship init --force` to start over")
            }
        }
        for file in files {
            do {
                let parent = (file.path as NSString).deletingLastPathComponent
                if !parent.isEmpty { try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true) }
                try file.text.write(toFile: file.path, atomically: true, encoding: .utf8)
                if file.executable { chmod(file.path, 0o755) }
            } catch {
                throw ShipError("cannot write \(file.path): \(error.localizedDescription)")
            }
            print("wrote \(file.path)")
        }
        if let chosen {
            print("\nthe web server serves each request from the release current points at; for nginx:\n")
            print(chosen.webServer(app: app))
            print("\ndocs/\(chosen == .static ? "getting-started" : chosen.rawValue).md has the rest (Apache, the sudoers line for the PHP-FPM reload)")
        }
        print("next: edit the hosts in ship.yml, then `ship check`, `ship setup prod` and `ship deploy prod`")
    }
}
