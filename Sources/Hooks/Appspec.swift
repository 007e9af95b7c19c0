/// The lifecycle hooks of a revision, read from the `appspec.yml` at its root.
///
/// The YAML is parsed by the controller (Shipper); the agent receives this value as JSON,
/// so the agent needs no YAML parser.
public struct Appspec: Codable, Sendable, Equatable {
    public enum Format: String, Codable, Sendable {
        /// ship's own format: `version: 1`.
        case ship = "1"
        /// AWS CodeDeploy's format: `version: 0.0`, `os: linux`.
        case codeDeploy = "0.0"
    }

    /// A CodeDeploy `files` entry. ship accepts only `source: /`, the whole revision, which it
    /// installs as a release; `destination` becomes a symlink to `<deploy_to>/current`.
    public struct FileMapping: Codable, Sendable, Equatable {
        public var source: String
        public var destination: String
        /// The appspec lines of `destination` and `source`, for messages.
        public var line: Int?
        public var sourceLine: Int?

        public init(source: String, destination: String, line: Int? = nil) {
            self.source = source
            self.destination = destination
            self.line = line
        }

        public static func == (lhs: FileMapping, rhs: FileMapping) -> Bool {
            lhs.source == rhs.source && lhs.destination == rhs.destination
        }
    }

    public var format: Format
    public var hooks: [LifecycleEvent: [HookSpec]]
    public var files: [FileMapping]
    /// CodeDeploy's `file_exists_behavior`: DISALLOW, OVERWRITE or RETAIN; nil when not given.
    public var fileExistsBehavior: String?
    /// CodeDeploy's `permissions` that fall inside the release (optional: older records have none).
    public var permissions: [Permission]?

    /// A CodeDeploy `permissions` entry, its `object` mapped into the release.
    public struct Permission: Codable, Sendable, Equatable {
        /// As written: an absolute path on the host, reached through the `files` destinations.
        public var object: String
        /// `**` (everything below, at any depth) or a name pattern with `*` for the entries
        /// directly below the object.
        public var pattern: String = "**"
        /// Name patterns, directly below the object, left alone.
        public var except: [String] = []
        /// `file`, `directory` or both.
        public var types: [String] = ["file", "directory"]
        public var owner: String?
        public var group: String?
        /// Octal digits as written (one to four).
        public var mode: String?
        public var line: Int?

        public init(object: String) {
            self.object = object
        }
    }

    public init(format: Format, hooks: [LifecycleEvent: [HookSpec]] = [:], files: [FileMapping] = []) {
        self.format = format
        self.hooks = hooks
        self.files = files
    }

    /// An appspec with no hooks: what a revision without `appspec.yml` runs.
    public static let empty = Appspec(format: .ship)

    /// The hooks of one event, in the order they are declared.
    public func hooks(for event: LifecycleEvent) -> [HookSpec] {
        hooks[event] ?? []
    }
}
