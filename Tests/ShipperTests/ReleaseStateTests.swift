import Foundation
import Hooks
import Testing
@testable import Shipper

@Suite("release states and rollback targets")
struct ReleaseStateTests {
    static func host(_ name: String, current: String?, _ releases: [(String, ReleaseState)], revision: (String) -> String = { "rev-\($0)" }) -> RollbackTarget.HostReleases {
        RollbackTarget.HostReleases(host: name, current: current,
                                    releases: releases.map { ReleaseInfo(release: $0.0, revision: revision($0.0), state: $0.1) })
    }

    @Test("without --to: the newest release good on every host, older than the newest current")
    func defaultTarget() {
        let hosts = [Self.host("web1", current: "3", [("1", .good), ("2", .good), ("3", .good)]),
                     Self.host("web2", current: "3", [("1", .good), ("2", .good), ("3", .good)])]
        #expect(RollbackTarget.choose(requested: nil, hosts: hosts) == .success("2"))
        // A release that failed on one host is skipped.
        let failedOnOne = [Self.host("web1", current: "3", [("1", .good), ("2", .good), ("3", .good)]),
                           Self.host("web2", current: "3", [("1", .good), ("2", .failed), ("3", .good)])]
        #expect(RollbackTarget.choose(requested: nil, hosts: failedOnOne) == .success("1"))
    }

    @Test("a fleet split by a killed deployment goes back together, to the release they all had good")
    func mixedFleet() {
        let hosts = [Self.host("web1", current: "3", [("1", .good), ("2", .good), ("3", .live)]),
                     Self.host("web2", current: "2", [("1", .good), ("2", .good), ("3", .abandoned)]),
                     Self.host("web3", current: "2", [("1", .good), ("2", .good)])]
        #expect(RollbackTarget.choose(requested: nil, hosts: hosts) == .success("2"))
    }

    @Test("--to: a release must be good on every host; a revision picks its newest good release; refusals say why")
    func requested() {
        let hosts = [Self.host("web1", current: "3", [("1", .good), ("2", .good), ("3", .good)], revision: { $0 == "3" ? "cafe3" : "beef12" }),
                     Self.host("web2", current: "3", [("1", .good), ("2", .failed), ("3", .good)], revision: { $0 == "3" ? "cafe3" : "beef12" })]
        #expect(RollbackTarget.choose(requested: "1", hosts: hosts) == .success("1"))
        #expect(RollbackTarget.choose(requested: "2", hosts: hosts)
            == .failure(RollbackRefusal(message: "release 2 is not complete and good on every host (web2: failed)",
                                        hint: "`ship releases` shows each host's releases and their states")))
        #expect(RollbackTarget.choose(requested: "beef", hosts: hosts) == .success("1"), "release 2 of that revision failed on web2")
        #expect(RollbackTarget.choose(requested: "v1.0", revision: "beef12", hosts: hosts) == .success("1"))
        #expect(throws: RollbackRefusal.self) { try RollbackTarget.choose(requested: "dead", hosts: hosts).get() }
        let nothingOlder = [Self.host("web1", current: "1", [("1", .good)])]
        #expect(throws: RollbackRefusal.self) { try RollbackTarget.choose(requested: nil, hosts: nothingOlder).get() }
    }

    @Test("only good, live and unverified releases count toward keep_releases")
    func counting() {
        #expect(ReleaseState.allCases.filter(\.counts) == [.live, .good, .unverified])
    }
}
