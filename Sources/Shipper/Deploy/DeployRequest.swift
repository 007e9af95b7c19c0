import Foundation

/// What `ship deploy` was asked to do.
public struct DeployRequest: Sendable {
    public var environment: String?
    public var revision: String?
    public var ignoreStopFailures: Bool
    /// Seconds to wait for a held lock; nil fails at once (exit 4).
    public var lockWait: Double?
    /// `--batch`, overriding the environment's.
    public var batch: BatchSpec?
    /// `ship sync`: no migrate (the database is on the revision already), and each host's
    /// `current` must still be what the sync saw (host → release), else nothing is done.
    public var sync: [String: String?]?
    /// `--file-exists-behavior`: DISALLOW, OVERWRITE or RETAIN over the appspec's, for this deployment.
    public var fileExistsBehavior: String?

    public init(environment: String? = nil, revision: String? = nil, ignoreStopFailures: Bool = false,
                lockWait: Double? = nil, batch: BatchSpec? = nil) {
        self.environment = environment
        self.revision = revision
        self.ignoreStopFailures = ignoreStopFailures
        self.lockWait = lockWait
        self.batch = batch
    }
}

/// How a deployment ended.
public struct DeploymentResult: Sendable {
    public enum Status: String, Sendable {
        case succeeded
        case failed
        case rolledBack = "rolled_back"
    }

    public var status: Status
    public var exitCode: ShipError.ExitCode?
    public var deploymentId: String
    public var release: String
    public var message: String?
    /// What to do about a failure, when ship knows (shown after the report, on stderr).
    public var hint: String? = nil
}

/// Names shared by every host of one deployment.
public enum ReleaseName {
    /// `YYYYMMDDHHMMSS` in UTC: sorts by time, the same on every host. Later than every
    /// release in `existing`, so two deployments in one second still get distinct names.
    public static func make(at date: Date = Date(), after existing: [String] = []) -> String {
        let formatter = formatter
        let candidate = formatter.string(from: date)
        guard let newest = existing.filter({ formatter.date(from: $0) != nil }).max(), newest >= candidate,
              let newestDate = formatter.date(from: newest) else { return candidate }
        return formatter.string(from: newestDate.addingTimeInterval(1))
    }

    private static var formatter: DateFormatter {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMddHHmmss"
        return formatter
    }

    public static func deploymentId() -> String {
        var generator = SystemRandomNumberGenerator()
        return "d" + String(UInt32.random(in: 0...UInt32.max, using: &generator), radix: 16).leftPadded(to: 8)
    }

    /// `user@machine` of this controller.
    public static var holder: String {
        "\(ProcessInfo.processInfo.userName)@\(ProcessInfo.processInfo.hostName)"
    }
}

extension String {
    func leftPadded(to length: Int) -> String {
        count >= length ? self : String(repeating: "0", count: length - count) + self
    }
}
