/// One hook of an appspec: what to run for a lifecycle event, as whom and for how long.
public struct HookSpec: Codable, Sendable, Equatable {
    /// What the hook runs.
    public enum Command: Codable, Sendable, Equatable {
        /// A command line for `/bin/sh -c`, started in the release directory (ship's `run:`).
        case shell(String)
        /// A script file inside the release, executed directly (CodeDeploy's `location:`).
        case script(path: String)
    }

    public var command: Command
    /// Seconds before the hook's whole process group is killed and the hook fails.
    public var timeout: Int
    /// The user the hook runs as; nil runs it as the deploying user.
    public var runas: String?
    /// The event name as written in the appspec (`install`, `BeforeInstall`, …), for messages.
    public var declaredEvent: String
    /// The appspec line the hook is written on, for messages; nil when unknown.
    public var line: Int?
    /// A CodeDeploy script with `once: true`: ship's migrate, run on one host only (optional, so
    /// that records written before it still decode).
    public var runsOnce: Bool?
    public var once: Bool {
        get { runsOnce ?? false }
        set { runsOnce = newValue ? true : nil }
    }

    public init(command: Command, timeout: Int, runas: String? = nil, declaredEvent: String) {
        self.command = command
        self.timeout = timeout
        self.runas = runas
        self.declaredEvent = declaredEvent
    }

    /// Hooks are the same whatever line they were read from.
    public static func == (lhs: HookSpec, rhs: HookSpec) -> Bool {
        lhs.command == rhs.command && lhs.timeout == rhs.timeout && lhs.runas == rhs.runas && lhs.declaredEvent == rhs.declaredEvent
    }

    /// A one-line description for logs and progress: the command line or the script path.
    public var summary: String {
        switch command {
        case .shell(let line): line
        case .script(let path): path
        }
    }
}
