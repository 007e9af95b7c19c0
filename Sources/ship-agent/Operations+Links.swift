#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import FoundationEssentials
import Hooks

/// CodeDeploy `files` destinations of the revision's root: each is a symlink to
/// `<deploy_to>/current`, so what CodeDeploy would have copied there is always the live release,
/// switched and rolled back atomically with `current`.
extension Operations {
    /// Why a destination cannot become the link, with the command that fixes it; nil when each can.
    func linkProblem(_ destinations: [String]) -> (message: String, hint: String)? {
        for destination in destinations where destination != layout.current {
            let parent = Self.parent(of: destination)
            var info = stat()
            guard lstat(destination, &info) == 0 else {
                guard errno == ENOENT else { return ("cannot look at \(destination): \(String(cString: strerror(errno)))", fixHint(destination)) }
                guard access(parent, W_OK) == 0 else {
                    return ("\(parent) does not exist or is not writable by \(Self.userName()): ship cannot make \(destination) a link to \(layout.current)",
                            fixHint(destination))
                }
                continue
            }
            switch info.st_mode & S_IFMT {
            case S_IFLNK:
                if (try? files.destinationOfSymbolicLink(atPath: destination)) == layout.current { continue }
            case S_IFDIR:
                let entries = (try? files.contentsOfDirectory(atPath: destination)) ?? ["?"]
                guard entries.isEmpty else {
                    return ("\(destination) is a directory with files in it (a copy CodeDeploy made?): ship makes it a link to \(layout.current), and never deletes files",
                            "move it aside once, then let ship link it: sudo mv \(destination) \(destination).before-ship")
                }
            default:
                return ("\(destination) is a file: ship makes it a link to \(layout.current), and never deletes files",
                        "move it aside once: sudo mv \(destination) \(destination).before-ship")
            }
            // A link elsewhere, or an empty directory: replaced, which needs the parent writable.
            guard access(parent, W_OK) == 0 else {
                return ("\(parent) is not writable by \(Self.userName()): ship cannot make \(destination) a link to \(layout.current)", fixHint(destination))
            }
        }
        return nil
    }

    func fixHint(_ destination: String) -> String {
        "make the link once as root (ship then keeps it): sudo ln -sfn \(layout.current) \(destination); "
            + "or let \(Self.userName()) write its directory: sudo install -d -o \(Self.userName()) \(Self.parent(of: destination))"
    }

    /// Makes each destination a link to `current` (replacing another link or an empty directory,
    /// atomically); returns what changed.
    func ensureLinks(_ destinations: [String]) throws -> [String] {
        if let problem = linkProblem(destinations) { throw AgentError(problem.message, hint: problem.hint) }
        var made: [String] = []
        for destination in destinations where destination != layout.current {
            if (try? files.destinationOfSymbolicLink(atPath: destination)) == layout.current { continue }
            let temporary = Self.parent(of: destination) + "/.ship-link.\(getpid())"
            unlink(temporary)
            guard symlink(layout.current, temporary) == 0 else {
                throw AgentError("cannot make a link in \(Self.parent(of: destination)): \(String(cString: strerror(errno)))", hint: fixHint(destination))
            }
            var info = stat()
            if lstat(destination, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR { rmdir(destination) }
            guard rename(temporary, destination) == 0 else {
                let reason = String(cString: strerror(errno))
                unlink(temporary)
                throw AgentError("cannot make \(destination) a link to \(layout.current): \(reason)", hint: fixHint(destination))
            }
            fsyncDirectory(Self.parent(of: destination))
            made.append("\(destination) -> \(layout.current)")
        }
        return made
    }

    static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return "/" }
        return String(path[..<slash])
    }
}
