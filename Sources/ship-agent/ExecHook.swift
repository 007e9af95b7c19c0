#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Hooks

/// `ship-agent exec-hook`: what `sudo -n -u RUNAS` starts for a hook when the agent is not root
/// (the one command the sudoers line of docs/installing.md allows). It reads an `ExecSpec` from
/// stdin, then becomes the hook: chdir to the release, stdin from /dev/null, exec with the
/// hook's environment (plus HOME, USER, LOGNAME and SHELL of the target user, from sudo).
/// Empty stdin only proves that sudo lets it run (the preflight's check).
enum ExecHook {
    static func run() -> Never {
        var input: [UInt8] = []
        _ = POSIXIO.readToEnd(0) { input += $0 }
        guard !input.isEmpty else {
            print("ship-agent exec-hook: ok as uid \(geteuid())")
            exit(0)
        }
        guard var spec = ExecSpec(decoding: input) else { fail("exec-hook: malformed spec on stdin", code: 2) }
        // Who the hook runs as, as sudo set it for the target user (composer, npm and drush read HOME).
        for name in ["HOME", "USER", "LOGNAME", "SHELL"] where spec.environment[name] == nil {
            if let value = getenv(name) { spec.environment[name] = String(cString: value) }
        }
        let devNull = open("/dev/null", O_RDONLY)
        if devNull >= 0 && devNull != 0 {
            dup2(devNull, 0)
            close(devNull)
        }
        guard chdir(spec.directory) == 0 else { fail("exec-hook: cannot enter \(spec.directory): \(errorText())", code: 126) }
        let environment = spec.environment.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        let arguments = spec.arguments.map { strdup($0) } + [nil]
        execve(spec.arguments[0], arguments, environment)
        let code: Int32 = errno == ENOENT ? 127 : 126
        fail("exec-hook: cannot run \(spec.arguments[0]): \(errorText())", code: code)
    }

    static func fail(_ message: String, code: Int32) -> Never {
        _ = POSIXIO.writeAll(2, Array("ship-agent \(message)\n".utf8))
        exit(code)
    }

    static func errorText() -> String { String(cString: strerror(errno)) }
}
