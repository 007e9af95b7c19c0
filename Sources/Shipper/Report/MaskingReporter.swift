import Foundation
import Hooks

/// Hides secret values as `***` in every event with free text before it is printed or sent to a
/// webhook. The agent masks hook output already; this covers what else might carry a value (a
/// failure message quoting a hook's last line, a command's stderr).
public struct MaskingReporter: Reporter {
    let inner: any Reporter
    let mask: SecretMask

    public init(_ inner: any Reporter, mask: SecretMask) {
        self.inner = inner
        self.mask = mask
    }

    public func report(_ event: Event) {
        inner.report(mask.isEmpty ? event : event.masked(mask))
    }
}

extension Event {
    func masked(_ mask: SecretMask) -> Event {
        let m = mask.apply
        var event = self
        switch kind {
        case .hostStep(let step): event.kind = .hostStep(step: m(step))
        case .hookStarted(let hookEvent, let hook): event.kind = .hookStarted(event: hookEvent, hook: m(hook))
        case .hookOutput(let hookEvent, let line): event.kind = .hookOutput(event: hookEvent, line: m(line))
        case .hookFinished(let hookEvent, let hook, let outcome): event.kind = .hookFinished(event: hookEvent, hook: m(hook), outcome: outcome)
        case .hostFailed(let step, let message): event.kind = .hostFailed(step: step, message: m(message))
        case .hostNotSwitched(let reason): event.kind = .hostNotSwitched(reason: m(reason))
        case .hostWarning(let message): event.kind = .hostWarning(message: m(message))
        case .deploymentFinished(let status, let release, let id, let message):
            event.kind = .deploymentFinished(status: status, release: release, deploymentId: id, message: message.map(m))
        case .rollbackFinished(let status, let release, let id, let message):
            event.kind = .rollbackFinished(status: status, release: release, deploymentId: id, message: message.map(m))
        case .notifyFailed(let webhook, let notified, let message): event.kind = .notifyFailed(webhook: webhook, event: notified, message: m(message))
        case .execStarted(let id, let environment, let command, let hosts):
            event.kind = .execStarted(id: id, environment: environment, command: m(command), hosts: hosts)
        case .execOutput(let line): event.kind = .execOutput(line: m(line))
        case .execFinished(let id, let status, let succeeded, let failed, let message):
            event.kind = .execFinished(id: id, status: status, succeeded: succeeded, failed: failed, message: message.map(m))
        default: break
        }
        return event
    }
}
