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

    /// A CodeDeploy `files` entry: copy `source` (relative to the revision root) to `destination`.
    public struct FileMapping: Codable, Sendable, Equatable {
        public var source: String
        public var destination: String
        public var overwrite: Bool

        public init(source: String, destination: String, overwrite: Bool = false) {
            self.source = source
            self.destination = destination
            self.overwrite = overwrite
        }
    }

    /// A CodeDeploy `permissions` entry.
    public struct Permission: Codable, Sendable, Equatable {
        public enum Kind: String, Codable, Sendable, CaseIterable { case file, directory }
        public var object: String
        public var pattern: String
        public var except: [String]
        public var owner: String?
        public var group: String?
        /// Octal mode, e.g. 0o644.
        public var mode: Int?
        public var types: [Kind]

        public init(object: String, pattern: String = "**", except: [String] = [], owner: String? = nil,
                    group: String? = nil, mode: Int? = nil, types: [Kind] = [.file, .directory]) {
            self.object = object
            self.pattern = pattern
            self.except = except
            self.owner = owner
            self.group = group
            self.mode = mode
            self.types = types
        }
    }

    public var format: Format
    public var hooks: [LifecycleEvent: [HookSpec]]
    public var files: [FileMapping]
    public var permissions: [Permission]

    public init(format: Format, hooks: [LifecycleEvent: [HookSpec]] = [:],
                files: [FileMapping] = [], permissions: [Permission] = []) {
        self.format = format
        self.hooks = hooks
        self.files = files
        self.permissions = permissions
    }

    /// An appspec with no hooks: what a revision without `appspec.yml` runs.
    public static let empty = Appspec(format: .ship)

    /// The hooks of one event, in the order they are declared.
    public func hooks(for event: LifecycleEvent) -> [HookSpec] {
        hooks[event] ?? []
    }
}
