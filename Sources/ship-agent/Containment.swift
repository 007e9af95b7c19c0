#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import FoundationEssentials

/// Keeps a release's symlinks inside it. Each symlink's target is resolved the way the kernel
/// would, component by component, following every symlink met on the way (links inside links,
/// chains, `..` after a link), without ever leaving the release: reaching above its root, an
/// absolute target, a loop, or a `..` that climbs back out of a shared path (which becomes a link
/// to `deploy_to/shared`) refuses the bundle. Nothing is read or written outside the release.
/// Only the links the unpack listed are resolved: no directory is walked.
struct Containment {
    /// The unpacked release.
    let root: String
    /// Shared paths, relative to the release: they become links out of it, so a bundle's link may
    /// lead into one but never climb back out of it.
    let sharedPaths: [String]

    static let maximumLinks = 40

    /// Refuses the release if any of its symlinks (`links`, each by component, as the unpack
    /// listed them) resolves outside it. A link inside a shared path is skipped: the agent
    /// replaces what the bundle has there.
    func check(links: [[String]]) throws {
        for link in links where sharedPrefix(of: link) == nil {
            try resolve(link: link)
        }
    }

    /// The components (relative to the root) that the symlink at `link` leads to.
    @discardableResult
    func resolve(link: [String]) throws -> [String] {
        let display = link.joined(separator: "/")
        var links = 0
        var resolved = Array(link.dropLast())
        var pending = try target(of: link, display: display)
        while !pending.isEmpty {
            let part = pending.removeFirst()
            if part == "." || part.isEmpty { continue }
            if part == ".." {
                guard !resolved.isEmpty else { throw escape(display, "it climbs above the release") }
                if let shared = sharedPrefix(of: resolved), shared.count == resolved.count {
                    throw escape(display, "it climbs out of the shared path \(shared.joined(separator: "/")), which links outside the release")
                }
                resolved.removeLast()
                continue
            }
            resolved.append(part)
            // Inside a shared path nothing of the bundle remains to follow: the agent replaces it.
            if sharedPrefix(of: resolved) != nil { continue }
            var info = stat()
            guard lstat(absolute(resolved), &info) == 0 else { continue } // dangling: the rest is lexical
            if info.st_mode & S_IFMT == S_IFLNK {
                links += 1
                guard links <= Self.maximumLinks else { throw escape(display, "too many levels of symbolic links") }
                let next = try target(of: resolved, display: display)
                resolved.removeLast()
                pending = next + pending
            }
        }
        return resolved
    }

    private func target(of components: [String], display: String) throws -> [String] {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink(absolute(components), &buffer, buffer.count - 1)
        guard count >= 0 else { throw AgentError("cannot read the symlink \(display): \(String(cString: strerror(errno)))") }
        let text = String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard !text.hasPrefix("/") else { throw escape(display, "its target \(text) is absolute") }
        return text.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
    }

    private func sharedPrefix(of components: [String]) -> [String]? {
        for shared in sharedPaths {
            let parts = shared.split(separator: "/").map(String.init)
            if components.count >= parts.count && Array(components.prefix(parts.count)) == parts { return parts }
        }
        return nil
    }

    private func absolute(_ components: [String]) -> String {
        components.isEmpty ? root : root + "/" + components.joined(separator: "/")
    }

    private func escape(_ link: String, _ why: String) -> AgentError {
        AgentError("refusing the bundle: symlink \(link) points outside the release (\(why))")
    }

    /// Fails unless every directory above `path` (relative to the root) is a real directory or
    /// missing: a shared path is replaced and linked only through directories of the release
    /// itself, never through a symlink.
    func requireRealParents(of path: String) throws {
        var components: [String] = []
        for part in path.split(separator: "/").dropLast().map(String.init) {
            components.append(part)
            var info = stat()
            guard lstat(absolute(components), &info) == 0 else { return }
            guard info.st_mode & S_IFMT == S_IFDIR else {
                let kind = info.st_mode & S_IFMT == S_IFLNK ? "a symlink" : "not a directory"
                throw AgentError("refusing the bundle: \(components.joined(separator: "/")) is \(kind) in the release, so the shared path \(path) cannot be linked inside it")
            }
        }
    }
}
