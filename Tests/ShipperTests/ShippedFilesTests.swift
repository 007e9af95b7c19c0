import Foundation
import Testing
@testable import Shipper

/// The files the repository ships to users (example app, reference appspecs, init templates)
/// must pass ship's own validation.
@Suite("shipped examples")
struct ShippedFilesTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    @Test("every appspec in appspec/ and examples/ decodes", arguments: [
        "appspec/appspec.yml", "appspec/reference.yml", "appspec/codedeploy.yml", "examples/shop/appspec.yml",
    ])
    func appspecs(_ relative: String) throws {
        let path = (Self.root as NSString).appendingPathComponent(relative)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let appspec = try AppspecDecoder.decode(yaml: text, file: relative)
        #expect(!appspec.hooks.isEmpty)
    }

    @Test("the example app's ship.yml decodes")
    func exampleConfig() throws {
        let config = try ConfigLoader.load(explicitPath: "examples/shop/ship.yml", currentDirectory: Self.root)
        #expect(config.app == "shop")
        #expect(try config.environment(named: nil).hosts.count == 3)
    }

    @Test("ship init's templates decode")
    func templates() throws {
        let config = try ConfigLoader.decode(yaml: Templates.shipYAML(app: "blog"), file: "/tmp/ship.yml")
        #expect(config.app == "blog")
        _ = try AppspecDecoder.decode(yaml: Templates.appspecYAML, file: "appspec.yml")
    }
}
