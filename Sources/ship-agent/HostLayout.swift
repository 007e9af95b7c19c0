import FoundationEssentials
import Hooks

/// The paths of CONTRACT.md section 3 on one host.
struct HostLayout {
    let deployTo: String

    var releases: String { deployTo + "/releases" }
    var current: String { deployTo + "/current" }
    var shared: String { deployTo + "/shared" }
    var state: String { deployTo + "/.ship" }
    var bundles: String { state + "/bundles" }
    var records: String { state + "/releases" }
    var logs: String { state + "/logs" }
    var lock: String { state + "/lock" }
    var journal: String { state + "/journal.jsonl" }
    /// Written when a deployment stops this host's release, until the host is settled (Session.swift).
    var stopped: String { state + "/stopped.json" }
    /// Hook runs hold it shared, a guard starting the host again exclusive.
    var hooksLock: String { state + "/hooks.lock" }
    /// The agent as the controller installs it, and as the sudoers line names it.
    var agent: String { state + "/bin/ship-agent" }

    func release(_ name: String) -> String { releases + "/" + name }
    func record(_ name: String) -> String { records + "/" + name + ".json" }
    func bundle(_ sha256: String) -> String { bundles + "/" + sha256 + ".tar.gz" }

    /// The release `current` points at, if any.
    func currentRelease() -> String? {
        guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: current) else { return nil }
        return target.split(separator: "/").last.map(String.init)
    }

    /// The revision of the release `current` points at, from its REVISION file.
    func currentRevision() -> String? {
        currentRelease().flatMap { try? String(contentsOfFile: release($0) + "/REVISION", encoding: .utf8) }?.trimmed
    }

    /// Release directory names, oldest first (names sort by time).
    func releaseNames() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: releases)) ?? []
        return names.filter { !$0.hasPrefix(".") }.sorted()
    }

    func readRecord(_ name: String) -> ReleaseRecord? {
        guard let data = FileManager.default.contents(atPath: record(name)) else { return nil }
        return try? JSONDecoder().decode(ReleaseRecord.self, from: data)
    }

    /// A release name is a plain directory name: never a path.
    static func validName(_ name: String) -> Bool {
        !name.isEmpty && !name.hasPrefix(".") && name.allSatisfy { $0.isLetter || $0.isNumber || "-_.".contains($0) }
    }
}
