import ArgumentParser
import Foundation
import Shipper

struct Init: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a commented ship.yml and appspec.yml to start from."
    )

    @Flag(help: "Overwrite existing files.")
    var force = false

    func run() async throws {
        let directory = FileManager.default.currentDirectoryPath
        let app = Templates.appName(forDirectory: directory)
        let files = [(ConfigLoader.fileName, Templates.shipYAML(app: app)), (ConfigLoader.appspecName, Templates.appspecYAML)]
        if !force {
            let existing = files.map(\.0).filter { FileManager.default.fileExists(atPath: $0) }
            if !existing.isEmpty {
                throw ShipError.usage("\(existing.joined(separator: " and ")) already exist\(existing.count == 1 ? "s" : "") here; nothing written",
                                      hint: "run `ship check` to validate it, or `ship init --force` to start over")
            }
        }
        for (name, text) in files {
            do {
                try text.write(toFile: name, atomically: true, encoding: .utf8)
            } catch {
                throw ShipError("cannot write \(name): \(error.localizedDescription)")
            }
            print("wrote \(name)")
        }
        print("next: edit the hosts in ship.yml, then `ship check` and `ship deploy prod`")
    }
}
