/// What `ship-agent exec-hook` runs when a hook has `runas` and the agent is not root: the
/// program, its directory and its whole environment, written to the child's stdin so that none of
/// it appears on a command line (`ps` shows `sudo -n -u www-data -- …/ship-agent exec-hook`, and
/// sudo's environment reset cannot drop the hook's variables). Fields are NUL-terminated:
/// the format tag, the directory, the argument count, the arguments, then `NAME=value` entries.
public struct ExecSpec: Sendable, Equatable {
    static let tag = "ship-exec-hook/1"

    public var arguments: [String]
    public var directory: String
    public var environment: [String: String]

    public init(arguments: [String], directory: String, environment: [String: String]) {
        self.arguments = arguments
        self.directory = directory
        self.environment = environment
    }

    public var encoded: [UInt8] {
        var fields = [Self.tag, directory, String(arguments.count)] + arguments
        fields += environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        var bytes: [UInt8] = []
        for field in fields {
            bytes += field.utf8.filter { $0 != 0 }
            bytes.append(0)
        }
        return bytes
    }

    /// Reads an encoded spec; nil when the bytes are not one.
    public init?(decoding bytes: [UInt8]) {
        guard bytes.last == 0 else { return nil }
        let fields = bytes.dropLast().split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        guard fields.count >= 3, fields[0] == Self.tag, let count = Int(fields[2]), count >= 1, fields.count >= 3 + count,
              fields[1].hasPrefix("/") else { return nil }
        directory = fields[1]
        arguments = Array(fields[3..<(3 + count)])
        var environment: [String: String] = [:]
        for entry in fields[(3 + count)...] {
            guard let equals = entry.firstIndex(of: "="), equals != entry.startIndex else { return nil }
            environment[String(entry[..<equals])] = String(entry[entry.index(after: equals)...])
        }
        self.environment = environment
    }
}
