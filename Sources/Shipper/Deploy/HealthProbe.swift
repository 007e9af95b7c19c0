import Foundation

/// One GET of a health check with libcurl.
enum HealthProbe {
    struct Answer: Sendable {
        var status: Int
        var body: String
    }

    static func get(_ url: String, timeout: Int, proxy: String? = nil) async -> Result<Answer, ShipError> {
        await HTTPRequest(url: url, timeout: timeout, proxy: proxy).send().map(answer)
    }

    /// The same, blocking the calling thread.
    static func getBlocking(_ url: String, timeout: Int) -> Result<Answer, ShipError> {
        HTTPRequest(url: url, timeout: timeout).perform().map(answer)
    }

    private static func answer(_ response: HTTPRequest.Response) -> Answer {
        Answer(status: response.status, body: String(decoding: response.body, as: UTF8.self))
    }
}

extension Deployment {
    /// The environment's health check for one host: attempts until one answers as expected, or
    /// fails the host (step `health check`) saying what the last attempt got.
    func checkHealth(_ check: HealthCheck, host: Host, tunnel: HealthTunnel? = nil) async throws(HostError) {
        let url = check.url(for: host)
        var proxy: String?
        if let tunnel {
            do {
                proxy = try await tunnel.proxy()
            } catch {
                throw HostError(host: host.description, step: "health check", message: error.message, unreachable: false, hint: error.hint)
            }
        }
        let through = check.from.map { " from \($0)" } ?? ""
        var last = ""
        for attempt in 1...(check.retries + 1) {
            if attempt > 1 { try? await Task.sleep(nanoseconds: UInt64(check.interval) * 1_000_000_000) }
            switch await HealthProbe.get(url, timeout: check.timeout, proxy: proxy) {
            case .failure(let error):
                last = error.message
            case .success(let answer) where !check.expectStatus.contains(answer.status):
                last = "status \(answer.status), expected \(check.expectStatus.map(String.init).joined(separator: " or "))"
            case .success(let answer):
                if let expected = check.expectBody, !answer.body.contains(expected) {
                    last = "status \(answer.status), but the body does not contain \"\(expected)\""
                } else {
                    reporter.report(Event(host: host.description, .hostStep(step: "health check: GET \(url)\(through) answered \(answer.status)"
                        + (attempt > 1 ? " (attempt \(attempt))" : ""))))
                    return
                }
            }
        }
        throw HostError(host: host.description, step: "health check",
                        message: "health check GET \(url)\(through) failed after \(check.retries + 1) attempt\(check.retries == 0 ? "" : "s"): \(last)",
                        unreachable: false)
    }
}
