/// A command to run on a host, built from typed values and rendered into one shell line by
/// `rendered`, the only place ship turns words into shell text.
public struct RemoteCommand: Sendable, Equatable, CustomStringConvertible {
    /// The program and its arguments, each one word.
    public var arguments: [String]
    /// Variables set for the program (`env NAME=value …`). Never secrets: they are on the line.
    public var environment: [(name: String, value: String)]
    /// Directory to `cd` into first.
    public var workingDirectory: String?

    public init(_ arguments: [String], environment: [(name: String, value: String)] = [], workingDirectory: String? = nil) {
        self.arguments = arguments
        self.environment = environment
        self.workingDirectory = workingDirectory
    }

    public static func == (lhs: RemoteCommand, rhs: RemoteCommand) -> Bool {
        lhs.arguments == rhs.arguments && lhs.workingDirectory == rhs.workingDirectory
            && lhs.environment.map(\.name) == rhs.environment.map(\.name)
            && lhs.environment.map(\.value) == rhs.environment.map(\.value)
    }

    /// The line a POSIX shell runs: `cd DIR && env NAME=VALUE PROGRAM ARG…`, every word quoted.
    public var rendered: String {
        var words: [String] = []
        if !environment.isEmpty {
            words.append("env")
            words += environment.map { ShellQuote.quote("\($0.name)=\($0.value)") }
        }
        words += arguments.map(ShellQuote.quote)
        let line = words.joined(separator: " ")
        guard let workingDirectory else { return line }
        return "cd \(ShellQuote.quote(workingDirectory)) && \(line)"
    }

    public var description: String { rendered }
}

/// POSIX shell quoting: safe words stay bare, everything else is single-quoted with embedded
/// single quotes written as `'\''` (as swift-tools-support-core's `shellEscaped()`).
public enum ShellQuote {
    private static let safe = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.,:/@%+=")

    public static func quote(_ word: String) -> String {
        if !word.isEmpty && word.allSatisfy({ safe.contains($0) }) && !word.hasPrefix("=") {
            return word
        }
        return "'" + word.replacingOccurrences(of: "'", with: #"'\''"#) + "'"
    }
}
