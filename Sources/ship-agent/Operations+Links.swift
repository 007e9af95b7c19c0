#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import FoundationEssentials
import Hooks

/// CodeDeploy `files` destinations of the revision's root, and of its directories when the
/// destination is new or empty: each is a symlink to `<deploy_to>/current` (or a directory in
/// it), so what CodeDeploy would have copied there is always the live release, switched and
/// rolled back atomically with `current`.
extension Operations {
    /// Why a destination cannot become the link, with the command that fixes it; nil when each can.
    func linkProblem(_ links: [DestinationLink]) -> (message: String, hint: String)? {
        for link in links where link.destination != link.target && !merged(link) {
            let destination = link.destination
            let parent = Self.parent(of: destination)
            var info = stat()
            guard lstat(destination, &info) == 0 else {
                guard errno == ENOENT else { return ("cannot look at \(destination): \(String(cString: strerror(errno)))", fixHint(link)) }
                guard access(parent, W_OK) == 0 else {
                    return ("\(parent) does not exist or is not writable by \(Self.userName()): ship cannot make \(destination) a link to \(link.target)",
                            fixHint(link))
                }
                continue
            }
            switch info.st_mode & S_IFMT {
            case S_IFLNK:
                if (try? files.destinationOfSymbolicLink(atPath: destination)) == link.target { continue }
            case S_IFDIR:
                let entries = (try? files.contentsOfDirectory(atPath: destination)) ?? ["?"]
                guard entries.isEmpty else {
                    return ("\(destination) is a directory with files in it (a copy CodeDeploy made?): ship makes it a link to \(link.target), and never deletes files",
                            "move it aside once, then let ship link it: sudo mv \(destination) \(destination).before-ship")
                }
            default:
                return ("\(destination) is a file: ship makes it a link to \(link.target), and never deletes files",
                        "move it aside once: sudo mv \(destination) \(destination).before-ship")
            }
            // A link elsewhere, or an empty directory: replaced, which needs the parent writable.
            guard access(parent, W_OK) == 0 else {
                return ("\(parent) is not writable by \(Self.userName()): ship cannot make \(destination) a link to \(link.target)", fixHint(link))
            }
        }
        return nil
    }

    /// A directory of the revision (not its root) whose destination already holds files of its
    /// own: its files are merged in by copies (Operations+Copies.swift), not linked.
    func merged(_ link: DestinationLink) -> Bool {
        link.target != layout.current && mergesInto(link.destination)
    }

    func fixHint(_ link: DestinationLink) -> String {
        "make the link once as root (ship then keeps it): sudo ln -sfn \(link.target) \(link.destination); "
            + "or let \(Self.userName()) write its directory: sudo install -d -o \(Self.userName()) \(Self.parent(of: link.destination))"
    }

    /// Makes each destination a link to `current` (replacing another link or an empty directory,
    /// atomically); returns what changed.
    func ensureLinks(_ links: [DestinationLink]) throws -> [String] {
        if let problem = linkProblem(links) { throw AgentError(problem.message, hint: problem.hint) }
        var made: [String] = []
        for link in links where link.destination != link.target && !merged(link) {
            let destination = link.destination
            if (try? files.destinationOfSymbolicLink(atPath: destination)) == link.target { continue }
            let temporary = Self.parent(of: destination) + "/.ship-link.\(getpid())"
            unlink(temporary)
            guard symlink(link.target, temporary) == 0 else {
                throw AgentError("cannot make a link in \(Self.parent(of: destination)): \(String(cString: strerror(errno)))", hint: fixHint(link))
            }
            var info = stat()
            if lstat(destination, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR { rmdir(destination) }
            guard rename(temporary, destination) == 0 else {
                let reason = String(cString: strerror(errno))
                unlink(temporary)
                throw AgentError("cannot make \(destination) a link to \(link.target): \(reason)", hint: fixHint(link))
            }
            fsyncDirectory(Self.parent(of: destination))
            made.append("\(destination) -> \(link.target)")
        }
        return made
    }

    static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return "/" }
        return String(path[..<slash])
    }
}
