import Foundation
import Hooks

extension LockInfo {
    /// `ci@runner (deployment d1a2b3c4, since 2026-12-03T08:00:00Z, 3h12m ago)`, and, when the
    /// holder ran on this machine and its process is gone, that it was killed.
    public func described(now: Date = Date()) -> String {
        var text = "\(holder) (deployment \(deploymentId), since \(started)"
        if let age = age(now: now) { text += ", \(Self.duration(age)) ago" }
        text += ")"
        if controllerGone == true, let pid { text += "; its ship process \(pid) on this machine is gone: the lock is stale" }
        return text
    }

    /// Seconds since the lock was taken, when `started` can be read.
    public func age(now: Date = Date()) -> TimeInterval? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        guard let date = formatter.date(from: started) ?? ISO8601DateFormatter().date(from: started) else { return nil }
        return max(0, now.timeIntervalSince(date))
    }

    /// true when the holder is a process of this machine that no longer runs; nil when that
    /// cannot be told (another machine, or a lock without a pid).
    public var controllerGone: Bool? {
        guard let pid, let machine = holder.split(separator: "@").last, String(machine) == ProcessInfo.processInfo.hostName else {
            return nil
        }
        return kill(pid, 0) != 0 && errno == ESRCH
    }

    static func duration(_ seconds: TimeInterval) -> String {
        let total = Int(seconds)
        if total < 60 { return "\(total)s" }
        if total < 3600 { return "\(total / 60)m\(String(format: "%02d", total % 60))s" }
        if total < 86_400 { return "\(total / 3600)h\(String(format: "%02d", total % 3600 / 60))m" }
        return "\(total / 86_400)d\(total % 86_400 / 3600)h"
    }
}
