#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CSpawn

/// The one way ship starts a program: posix_spawnp with chosen descriptors as stdin, stdout and
/// stderr, an empty signal mask, chosen signals back at their defaults, and optionally a process
/// group of its own. Used by the hook runner, the agent's helpers and dumps, and the
/// controller's ssh children.
public enum Spawn {
    /// Starts `argv`; `stdin` nil means /dev/null, `environment` nil means this process's.
    /// Returns the pid, or a message naming the program.
    public static func start(_ argv: [String], environment: [String: String]? = nil, directory: String? = nil,
                             stdin: Int32?, stdout: Int32, stderr: Int32, newProcessGroup: Bool = false,
                             defaultSignals: [Int32] = [SIGPIPE]) -> Result<pid_t, SpawnError> {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if let stdin {
            posix_spawn_file_actions_adddup2(&actions, stdin, 0)
        } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        }
        posix_spawn_file_actions_adddup2(&actions, stdout, 1)
        posix_spawn_file_actions_adddup2(&actions, stderr, 2)
        if let directory { ship_spawn_file_actions_addchdir(&actions, directory) }
        // Only stdin, stdout and stderr: a descriptor someone else left inheritable (a pipe
        // whose reader waits for its end) never outlives its owner in one of ship's children.
        ship_spawn_file_actions_closefrom(&actions, 3)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for number in defaultSignals { sigaddset(&defaults, number) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setsigmask(&attributes, &empty)
        var flags = POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK
        if newProcessGroup {
            posix_spawnattr_setpgroup(&attributes, 0)
            flags |= POSIX_SPAWN_SETPGROUP
        }
        posix_spawnattr_setflags(&attributes, Int16(flags))

        let cArguments = argv.map { strdup($0) } + [nil]
        let cEnvironment = environment.map { $0.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil] }
        defer {
            cArguments.forEach { free($0) }
            cEnvironment?.forEach { free($0) }
        }
        var pid: pid_t = 0
        let result = cEnvironment.map { posix_spawnp(&pid, argv[0], &actions, &attributes, cArguments, $0) }
            ?? posix_spawnp(&pid, argv[0], &actions, &attributes, cArguments, environ)
        guard result == 0 else { return .failure(SpawnError(description: "\(argv[0]): \(String(cString: strerror(result)))")) }
        return .success(pid)
    }

    /// Waits for the child (retrying on EINTR) and returns its raw wait status.
    public static func wait(_ pid: pid_t) -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return status
    }

    /// A wait status as a shell reports it: the exit status, or 128 + the signal.
    public static func exitCode(_ status: Int32) -> Int32 {
        (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
    }
}

public struct SpawnError: Error, CustomStringConvertible {
    public var description: String
}
