import Foundation
import Testing
@testable import Shipper

/// The human views at fleet size: a live terminal view that never outgrows the screen, and a
/// summary that names only what needs a look.
@Suite("progress at a thousand hosts")
struct ProgressViewTests {
    @Test("a thousand hosts: every frame of the live view fits the screen (counts, failed hosts first); the summary counts the hosts that succeeded and lists the others")
    func thousandHosts() throws {
        let pipe = Pipe()
        let output = LineCollector()
        let done = DispatchSemaphore(value: 0)
        // Read as it is written: a thousand hosts' frames are more than a pipe holds.
        Thread {
            var bytes = Data()
            while true {
                let chunk = pipe.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                bytes.append(chunk)
            }
            output.append(String(decoding: bytes, as: UTF8.self))
            done.signal()
        }.start()
        // Not a terminal: the view takes 23 lines, as on a 24-line screen.
        let reporter = TerminalReporter(handle: pipe.fileHandleForWriting)
        let hosts = (1...1000).map { "web\($0)" }
        let failing: Set<Int> = [7, 257, 507, 757]
        reporter.report(Event(.deploymentStarted(deploymentId: "d1", environment: "prod", revision: "abc123", release: "r1", hosts: hosts)))
        reporter.report(Event(.batchStarted(number: 1, of: 1, hosts: hosts)))
        for (number, host) in zip(1..., hosts) {
            reporter.report(Event(host: host, .hostStep(step: "unpacking")))
            if failing.contains(number) {
                reporter.report(Event(host: host, .hostFailed(step: "validate", message: "health check answered 500")))
            } else if number % 3 == 0 {
                reporter.report(Event(host: host, .hostSucceeded(release: "r1")))
            }
        }
        for (number, host) in zip(1..., hosts) where number % 3 != 0 && !failing.contains(number) {
            reporter.report(Event(host: host, .hostSucceeded(release: "r1")))
        }
        reporter.report(Event(.deploymentFinished(status: "failed", release: "r1", deploymentId: "d1", message: "4 hosts failed")))
        try pipe.fileHandleForWriting.close()
        done.wait()

        let text = output.text
        let frames = text.components(separatedBy: "\u{1B}[J")
        #expect(frames.count > 2000, "one frame per event")
        // A view: its whole lines from the header on (a host's failure is printed above it, to
        // stay on screen; what follows the last newline is the next frame's cursor move).
        let tallest = frames.dropLast().map { frame in
            frame.components(separatedBy: "\n").dropLast().drop { !$0.hasPrefix("deploying ") }.count
        }.max() ?? 0
        #expect(tallest <= 23 && tallest >= 20, "the live view fills a 24-line screen and no more: \(tallest) lines")
        // Mid-run: counts per state, the failed hosts listed before the ones at work.
        let middle = frames[frames.count / 2]
        #expect(middle.contains(" working, ") && middle.contains(" done") && middle.contains("web7  FAILED at validate"), "\(middle)")
        // The summary: one line for the 996 that succeeded, each failed host with its reason.
        let summary = try #require(frames.last).split(separator: "\n").map(String.init)
        #expect(summary.count < 12, "\(summary)")
        #expect(summary.contains { $0.contains("996 of 1000 hosts succeeded") })
        for number in failing.sorted() {
            #expect(summary.contains { $0.contains("web\(number) ") && $0.contains("failed at validate: health check answered 500") }, "\(summary)")
        }
    }
}
