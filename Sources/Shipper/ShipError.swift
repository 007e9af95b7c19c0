/// A failure a user can act on: the message, where it comes from, a hint, and the exit code.
///
/// `ship` renders it once, as `error: FILE:LINE: KEY: MESSAGE` and `hint: HINT`; nothing in
/// Shipper prints. Config errors carry their source location; runtime errors name the host
/// and command in the message.
public struct ShipError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The process exit codes of CONTRACT.md section 5.
    public enum ExitCode: Int32, Sendable {
        case failed = 1
        case usage = 2
        case rollbackFailed = 3
        case locked = 4
        case preflight = 5
        case interrupted = 130
    }

    /// Where in a file a configuration error is.
    public struct Location: Sendable, Equatable, CustomStringConvertible {
        public var file: String
        public var line: Int?

        public init(file: String, line: Int?) {
            self.file = file
            self.line = line
        }

        public var description: String {
            if let line { return "\(file):\(line)" }
            return file
        }
    }

    public var message: String
    public var location: Location?
    /// The dotted key path the error is about (`environments.prod.batch`).
    public var keyPath: String?
    public var hint: String?
    public var exitCode: ExitCode

    public init(_ message: String, location: Location? = nil, keyPath: String? = nil,
                hint: String? = nil, exitCode: ExitCode = .failed) {
        self.message = message
        self.location = location
        self.keyPath = keyPath
        self.hint = hint
        self.exitCode = exitCode
    }

    /// A configuration or usage error: exit 2, nothing touched.
    public static func config(_ message: String, at location: Location?, key: String?, hint: String? = nil) -> ShipError {
        ShipError(message, location: location, keyPath: key, hint: hint, exitCode: .usage)
    }

    /// A usage error: exit 2.
    public static func usage(_ message: String, hint: String? = nil) -> ShipError {
        ShipError(message, hint: hint, exitCode: .usage)
    }

    /// The one-line message: `FILE:LINE: KEY: MESSAGE`.
    public var description: String {
        var parts: [String] = []
        if let location { parts.append(location.description) }
        if let keyPath, !keyPath.isEmpty { parts.append(keyPath) }
        parts.append(message)
        return parts.joined(separator: ": ")
    }
}
