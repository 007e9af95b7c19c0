import Foundation
import Hooks

/// `ship setup`: every host of an environment made ready for its first deployment (ship's
/// agent, the deploy_to tree, shared directories for the web user, shared files uploaded), each
/// change reported; run again, it changes nothing.
public enum HostSetup {
    public struct Request: Sendable {
        /// A local directory whose files go to deploy_to/shared at the same relative paths.
        public var sharedFrom: String?
        /// Whose group gets the shared directories (setgid, group-writable).
        public var webUser: String?
        public var overwrite = false

        public init(sharedFrom: String? = nil, webUser: String? = nil) {
            self.sharedFrom = sharedFrom
            self.webUser = webUser
        }
    }

    /// The largest total of shared files sent (they travel inside the agent's request).
    static let uploadLimit = 4 << 20

    /// The files under `directory` as uploads: regular files only; a file's mode is kept when it
    /// was set on purpose, and a file with a default mode (0644, 0664, 0666) becomes 0600.
    public static func uploads(from directory: String) throws(ShipError) -> [SharedUpload] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ShipError.usage("--shared-from \(directory) is not a directory", hint: "give the directory holding the shared files (e.g. .env)")
        }
        var uploads: [SharedUpload] = []
        var total = 0
        var pending = [""]
        while let relative = pending.popLast() {
            let path = relative.isEmpty ? directory : directory + "/" + relative
            let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
            for name in names.sorted() {
                let child = relative.isEmpty ? name : relative + "/" + name
                var info = stat()
                guard lstat(directory + "/" + child, &info) == 0 else { continue }
                switch info.st_mode & S_IFMT {
                case S_IFDIR: pending.append(child)
                case S_IFREG:
                    guard let data = FileManager.default.contents(atPath: directory + "/" + child) else {
                        throw ShipError("cannot read \(directory)/\(child)", exitCode: .usage)
                    }
                    total += data.count
                    guard total <= uploadLimit else {
                        throw ShipError.usage("the files under \(directory) are more than \(uploadLimit >> 20) MB",
                                              hint: "setup uploads configuration (.env, settings.php); copy larger data with rsync or a backup restore")
                    }
                    let mode = Int(info.st_mode & 0o7777)
                    uploads.append(SharedUpload(path: child, content: [UInt8](data), mode: [0o644, 0o664, 0o666].contains(mode) ? 0o600 : mode))
                default:
                    throw ShipError.usage("\(directory)/\(child) is not a regular file", hint: "setup uploads files only: replace the link by the file")
                }
            }
        }
        return uploads.sorted { $0.path < $1.path }
    }

    public struct Outcome: Sendable {
        public var host: String
        public var result: Result<AgentResult, HostError>
    }

    public static func run(config: ShipConfig, environment: Environment, agents: AgentCatalog, request: Request, uploads: [SharedUpload],
                           makeTransport: @escaping @Sendable (Host) -> any Transport) async -> [Outcome] {
        await AgentClient.onEachHost(of: environment, makeTransport: makeTransport) { client throws(HostError) -> AgentResult in
            let probe = try await client.probe()
            let agent = try client.agent(for: probe, in: agents)
            var installed: String?
            if probe.installedAgentSHA256 != agent.sha256 {
                try await client.upload(agent)
                installed = (probe.installedAgentSHA256 == nil ? "installed " : "updated ") + client.agentPath
            }
            var setup = client.request(.setup)
            setup.shared = SharedSpec(dirs: config.shared.dirs, files: config.shared.files)
            setup.uploads = uploads.isEmpty ? nil : uploads
            setup.webUser = request.webUser
            setup.overwrite = request.overwrite
            var result = try await client.call(setup)
            if let installed { result.report = [installed] + (result.report ?? []) }
            return result
        }.map { Outcome(host: $0.host, result: $0.result) }
    }
}
