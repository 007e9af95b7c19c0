import Foundation
import Hooks

/// An environment's `secrets:`, resolved on the controller: each name from ship's own
/// environment (a CI secret, an exported variable), else from the `NAME=value` lines that
/// `secrets_command` prints (run once, and only when some name is not in the environment).
/// Values travel to hosts only inside requests on the agent's stdin, never on a command line.
public enum Secrets {
    public static func resolve(_ environment: Environment, directory: String,
                               processEnvironment: [String: String] = ProcessInfo.processInfo.environment) throws(ShipError) -> [String: String] {
        guard !environment.secrets.isEmpty else { return [:] }
        var values: [String: String] = [:]
        for name in environment.secrets { values[name] = processEnvironment[name] }
        let missing = environment.secrets.filter { values[$0] == nil }
        if !missing.isEmpty, let command = environment.secretsCommand {
            let printed = try run(command, directory: directory)
            for name in missing { values[name] = printed[name] }
        }
        for name in environment.secrets {
            guard let value = values[name] else {
                throw ShipError("secret \(name) is not set: it is not in ship's environment"
                                + (environment.secretsCommand == nil ? "" : ", and secrets_command printed no \(name)=… line"),
                                hint: environment.secretsCommand == nil
                                    ? "export \(name) before running ship (a CI secret variable), or set secrets_command in ship.yml"
                                    : "make secrets_command print a line \(name)=VALUE, or export \(name)",
                                exitCode: .preflight)
            }
            guard !value.isEmpty else {
                throw ShipError("secret \(name) is empty", hint: "give it a value (an unset CI secret often arrives as an empty variable)",
                                exitCode: .preflight)
            }
        }
        return values
    }

    /// Runs `secrets_command` with `/bin/sh -c` in ship.yml's directory; its stdout is read here
    /// only, its stderr shown (masked) when it fails.
    static func run(_ command: String, directory: String) throws(ShipError) -> [String: String] {
        let lines = LinesBox()
        let result = ChildProcess.runBlocking("/bin/sh", ["-c", command], input: .none, directory: directory) { lines.append($0) }
        let printed = parse(lines.all)
        guard result.status == 0 else {
            let said = SecretMask(values: printed.values).apply(result.stderr.trimmingCharacters(in: .whitespacesAndNewlines))
            throw ShipError("secrets_command failed (exit \(result.status))" + (said.isEmpty ? "" : ": \(said)"),
                            hint: "run it by hand to see why: \(command)", exitCode: .preflight)
        }
        return printed
    }

    /// `NAME=value` lines (an `export ` before the name, and quotes around the value, are
    /// dropped); blank lines and `#` comments are skipped.
    public static func parse(_ lines: [String]) -> [String: String] {
        var values: [String: String] = [:]
        for raw in lines {
            var line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("export ") { line = String(line.dropFirst("export ".count)).trimmingCharacters(in: .whitespaces) }
            guard let equals = line.firstIndex(of: "=") else { continue }
            let name = String(line[..<equals])
            guard name.range(of: #"^[A-Za-z_][A-Za-z0-9_]*$"#, options: .regularExpression) != nil else { continue }
            var value = String(line[line.index(after: equals)...])
            if value.count >= 2, let first = value.first, first == "\"" || first == "'", value.last == first {
                value = String(value.dropFirst().dropLast())
            }
            values[name] = value
        }
        return values
    }
}

/// Lines collected from a child's output callback.
final class LinesBox: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []

    func append(_ line: String) { lock.withLock { lines.append(line) } }
    var all: [String] { lock.withLock { lines } }
}
