import Foundation
import Shipper

/// `ship --version`: ship's version, and the agent it would install on hosts: where it is, what
/// it says of itself (`ship-agent --version`), and whether it is fully static.
enum VersionReport {
    static func text() async -> String {
        var lines = ["ship \(ShipperVersion.current)"]
        do {
            let agent = try AgentCatalog.locate().primary
            let said = SendableLines()
            let result = await ChildProcess.run(agent.path, ["--version"], input: .none) { said.append($0) }
            let version = said.lines.last { $0.hasPrefix("ship-agent ") } ?? "ship-agent (does not run here: exit \(result.status))"
            let linking = agent.isStatic ? "fully static, runs on any \(agent.machine) Linux with /proc"
                : "dynamically linked: needs the Swift runtime on hosts"
            lines.append("\(version): \(agent.path)")
            lines.append("  \(linking)")
        } catch {
            lines.append("ship-agent: \(error.message)")
            if let hint = error.hint { lines.append("  hint: \(hint)") }
        }
        return lines.joined(separator: "\n")
    }
}

/// Lines collected from a callback that may run on another thread.
final class SendableLines: @unchecked Sendable {
    private let lock = NSLock()
    private var collected: [String] = []

    func append(_ line: String) { lock.withLock { collected.append(line) } }
    var lines: [String] { lock.withLock { collected } }
}
