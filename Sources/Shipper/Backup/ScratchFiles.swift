import Foundation

/// Partial files and staging directories of backups in flight, so an interrupted `ship backup`
/// removes them on its way out instead of leaving half a dump behind.
public enum ScratchFiles {
    nonisolated(unsafe) private static var paths: Set<String> = []
    private static let lock = NSLock()

    static func register(_ path: String) {
        lock.withLock { _ = paths.insert(path) }
    }

    static func unregister(_ path: String) {
        lock.withLock { _ = paths.remove(path) }
    }

    /// Removes whatever is registered (from a signal handler's queue, before exiting).
    public static func removeAll() {
        let all = lock.withLock { paths }
        for path in all { try? FileManager.default.removeItem(atPath: path) } // best effort on the way out
    }
}
