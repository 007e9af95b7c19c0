import Foundation

/// Per-host progress built from events: what each host is doing, since when, and how it ended.
/// The terminal view draws it live; every human reporter prints its summary at the end.
struct Progress {
    enum State: Equatable {
        case waiting
        case working(step: String)
        case succeeded
        case failed(step: String)
        case rolledBack
        case notSwitched(reason: String)
    }

    struct Row {
        var host: String
        var state: State = .waiting
        var started: Date?
        var finished: Date?
        var lastLine: String?
        /// The release the host was started again on after its stop ran and it did not switch.
        var restartedOn: String?

        var isFinished: Bool {
            switch state {
            case .succeeded, .failed, .rolledBack, .notSwitched: true
            case .waiting, .working: false
            }
        }
    }

    var rows: [Row] = []
    /// Where each host's row is (a thousand hosts: no search per event).
    private var index: [String: Int] = [:]
    /// Past this many hosts the summary lists only those that did not succeed, with counts.
    static let listedHosts = 40
    /// Warnings, `host: message`, repeated under the summary so no output mode loses them.
    var warnings: [String] = []
    var title = ""
    var batch: (number: Int, of: Int)?
    var started = Date()
    var release: String?

    mutating func apply(_ event: Event) {
        if let host = event.host { add(host) }
        let position = event.host.flatMap { index[$0] }
        func update(_ body: (inout Row) -> Void) {
            guard let position else { return }
            body(&rows[position])
        }
        switch event.kind {
        case .deploymentStarted(_, let environment, let revision, let release, let hosts):
            title = "deploying \(revision.prefix(12)) to \(environment) as \(release)"
            self.release = release
            started = event.time
            for host in hosts { add(host) }
        case .batchStarted(let number, let total, _):
            batch = (number, total)
        case .hostStep(let step):
            update { row in
                if row.started == nil { row.started = event.time }
                // Steps after a host's end (pruning) do not reopen it.
                if !row.isFinished { row.state = .working(step: step) }
            }
        case .hostRestarted(let release):
            update { $0.restartedOn = release }
        case .hostWarning(let message):
            warnings.append((event.host.map { "\($0): " } ?? "") + message)
        case .hostNotSwitched(let reason):
            update { row in
                row.state = .notSwitched(reason: reason)
                row.finished = event.time
            }
        case .hookStarted(let hookEvent, _):
            update { row in
                if row.started == nil { row.started = event.time }
                row.state = .working(step: hookEvent.rawValue)
            }
        case .hookOutput(_, let line):
            update { $0.lastLine = line }
        case .hostSwitched(let release, _):
            update { $0.state = .working(step: "switched to \(release)") }
        case .hostSucceeded:
            update { row in
                row.state = .succeeded
                row.finished = event.time
            }
        case .hostFailed(let step, let message):
            update { row in
                row.state = .failed(step: step)
                row.finished = event.time
                row.lastLine = message
            }
        case .hostRolledBack:
            update { row in
                row.state = .rolledBack
                row.finished = event.time
            }
        default:
            break
        }
    }

    private mutating func add(_ host: String) {
        guard index[host] == nil else { return }
        index[host] = rows.count
        rows.append(Row(host: host))
    }

    /// How many hosts are in each kind of state, in the order they are shown ("3 working").
    func counts() -> [(label: String, count: Int)] {
        var tally: [String: Int] = [:]
        for row in rows { tally[Self.kind(row.state), default: 0] += 1 }
        return ["working", "waiting", "done", "failed", "rolled back", "not switched"].compactMap { label in
            tally[label].map { (label, $0) }
        }
    }

    static func kind(_ state: State) -> String {
        switch state {
        case .waiting: "waiting"
        case .working: "working"
        case .succeeded: "done"
        case .failed: "failed"
        case .rolledBack: "rolled back"
        case .notSwitched: "not switched"
        }
    }

    static func duration(_ seconds: TimeInterval) -> String {
        seconds < 60 ? String(format: "%.1fs", seconds) : String(format: "%dm%02ds", Int(seconds) / 60, Int(seconds) % 60)
    }

    func describe(_ row: Row, now: Date) -> String {
        let elapsed = row.started.map { Progress.duration((row.finished ?? now).timeIntervalSince($0)) } ?? ""
        let state: String
        switch row.state {
        case .waiting: state = "waiting"
        case .working(let step): state = step
        case .succeeded: state = "done"
        case .failed(let step): state = "FAILED at \(step)"
        case .rolledBack: state = "rolled back"
        case .notSwitched: state = "not switched"
        }
        return "\(row.host)  \(state)  \(elapsed)"
    }

    /// The end-of-run summary: per host what happened and how long it took.
    func summary(status: String, now: Date) -> [String] {
        let width = rows.map(\.host.count).max() ?? 0
        var lines = ["summary: \(status), release \(release ?? "-"), \(Progress.duration(now.timeIntervalSince(started)))"]
        // A large pool: the hosts that succeeded as one line, every other host on its own.
        var listed = rows
        if rows.count > Progress.listedHosts {
            let succeeded = rows.filter { $0.state == .succeeded }
            let times = succeeded.compactMap { row in row.started.map { (row.finished ?? now).timeIntervalSince($0) } }
            lines.append("  \(succeeded.count) of \(rows.count) hosts succeeded"
                + (times.isEmpty ? "" : " (\(Progress.duration(times.min()!)) to \(Progress.duration(times.max()!)) each)"))
            listed = rows.filter { $0.state != .succeeded }
        }
        for row in listed {
            let elapsed = row.started.map { Progress.duration((row.finished ?? now).timeIntervalSince($0)) } ?? "-"
            let state: String
            switch row.state {
            case .waiting: state = "not started"
            case .working(let step): state = "stopped at \(step)"
            case .succeeded: state = "succeeded"
            case .failed(let step): state = "failed at \(step)" + (row.lastLine.map { ": \($0)" } ?? "")
            case .rolledBack: state = "rolled back"
            case .notSwitched(let reason): state = "not switched: \(reason)"
            }
            let restarted = row.restartedOn.map { "; restarted on \($0)" } ?? ""
            lines.append("  " + row.host.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + elapsed.padding(toLength: 7, withPad: " ", startingAt: 0) + "  " + state + restarted)
        }
        lines += warnings.map { "  warning: " + $0 }
        return lines
    }
}

/// A live per-host view for a terminal: one line per host (step, elapsed, last output) under a
/// header with the batch bar, redrawn in place; the summary stays on screen at the end.
public final class TerminalReporter: Reporter, @unchecked Sendable {
    private let lock = NSLock()
    private var progress = Progress()
    private var drawnLines = 0
    private let handle: FileHandle
    private let columns: Int
    /// Lines the live view may take: the terminal's height less one, so it never scrolls.
    private let screenLines: Int

    public init(handle: FileHandle = .standardOutput) {
        self.handle = handle
        var size = winsize()
        let known = ioctl(handle.fileDescriptor, UInt(TIOCGWINSZ), &size) == 0
        columns = known && size.ws_col > 20 ? Int(size.ws_col) : 100
        screenLines = known && size.ws_row > 5 ? Int(size.ws_row) - 1 : 23
    }

    public func report(_ event: Event) {
        lock.withLock {
            progress.apply(event)
            switch event.kind {
            case .deploymentFinished(let status, _, _, let message), .rollbackFinished(let status, _, _, let message):
                redraw(final: true)
                var lines = progress.summary(status: status.replacingOccurrences(of: "_", with: " "), now: event.time)
                if let message { lines.append(message) }
                write(lines.joined(separator: "\n") + "\n")
            case .notifyFailed, .syncUnchanged:
                // After the summary: a line of its own, the live view is gone.
                write(event.text + "\n")
            case .plan:
                // Stays on screen above the live view.
                clear()
                write(event.text + "\n")
                redraw(final: false)
            case .lockWaiting, .hostFailed:
                // Worth keeping on screen above the live view.
                clear()
                write(event.text.prefix(columns * 4) + "\n")
                redraw(final: false)
            default:
                redraw(final: false)
            }
        }
    }

    private func clear() {
        if drawnLines > 0 {
            write("\u{1B}[\(drawnLines)A\u{1B}[J")
            drawnLines = 0
        }
    }

    private func redraw(final: Bool) {
        clear()
        let now = Date()
        var lines: [String] = []
        var header = progress.title
        if let batch = progress.batch {
            let done = progress.rows.filter { row in
                if case .waiting = row.state { return false }
                if case .working = row.state { return false }
                return true
            }.count
            let total = max(1, progress.rows.count)
            let filled = done * 20 / total
            header += "  batch \(batch.number)/\(batch.of) [" + String(repeating: "#", count: filled) + String(repeating: "-", count: 20 - filled) + "] \(done)/\(total)"
        }
        header += "  " + Progress.duration(now.timeIntervalSince(progress.started))
        lines.append(header)
        func line(_ row: Progress.Row) -> String {
            var line = "  " + progress.describe(row, now: now)
            if let last = row.lastLine, case .working = row.state { line += "  \(last)" }
            return String(line.prefix(columns - 1))
        }
        if progress.rows.count + 1 <= screenLines {
            lines += progress.rows.map(line)
        } else {
            // More hosts than the screen: counts per state, then failed hosts, then the ones at
            // work, as many as fit; the view never scrolls.
            lines.append("  " + progress.counts().map { "\($0.count) \($0.label)" }.joined(separator: ", "))
            let failed = progress.rows.filter { if case .failed = $0.state { return true }; return false }
            let working = progress.rows.filter { if case .working = $0.state { return true }; return false }
            var room = screenLines - lines.count
            for (kind, group) in [("failed", failed), ("working", working)] where room > 0 && !group.isEmpty {
                let shown = group.count <= room ? group.count : max(0, room - 1)
                lines += group.prefix(shown).map(line)
                room -= shown
                if shown < group.count && room > 0 {
                    lines.append("  … \(group.count - shown) more \(kind)")
                    room -= 1
                }
            }
        }
        if final { lines = [] }
        guard !lines.isEmpty else { return }
        write(lines.joined(separator: "\n") + "\n")
        drawnLines = lines.count
    }

    private func write<S: StringProtocol>(_ text: S) {
        handle.writeQuietly(Data(text.utf8))
    }
}
