import CCurl
import Foundation

/// One GET of a health check with libcurl, off the concurrency pool (libcurl blocks).
enum HealthProbe {
    struct Answer: Sendable {
        var status: Int
        var body: String
    }

    /// Keeps the first 64 KiB of the body: enough for any `expect_body`.
    private final class Sink {
        var body = Data()
    }

    static func get(_ url: String, timeout: Int) async -> Result<Answer, ShipError> {
        await withCheckedContinuation { continuation in
            Thread.detachNewThread { continuation.resume(returning: getBlocking(url, timeout: timeout)) }
        }
    }

    static func getBlocking(_ url: String, timeout: Int) -> Result<Answer, ShipError> {
        S3Client.globalInit
        guard let curl = curl_easy_init() else { return .failure(ShipError("cannot start libcurl")) }
        defer { curl_easy_cleanup(curl) }
        let sink = Sink()
        let unmanaged = Unmanaged.passRetained(sink)
        defer { unmanaged.release() }
        ship_curl_set_string(curl, CURLOPT_URL, url)
        ship_curl_set_long(curl, CURLOPT_NOSIGNAL, 1)
        ship_curl_set_long(curl, CURLOPT_TIMEOUT, timeout)
        ship_curl_set_long(curl, CURLOPT_FOLLOWLOCATION, 0)
        ship_curl_set_write(curl, { data, size, count, context in
            let sink = Unmanaged<Sink>.fromOpaque(context!).takeUnretainedValue()
            let room = max(0, (64 << 10) - sink.body.count)
            if room > 0, let data { sink.body.append(UnsafeRawPointer(data).assumingMemoryBound(to: UInt8.self), count: min(room, size * count)) }
            return size * count
        }, unmanaged.toOpaque())
        let code = curl_easy_perform(curl)
        guard code == CURLE_OK else { return .failure(ShipError(String(cString: curl_easy_strerror(code)))) }
        return .success(Answer(status: ship_curl_response_code(curl), body: String(decoding: sink.body, as: UTF8.self)))
    }
}

extension Deployment {
    /// The environment's health check for one host: attempts until one answers as expected, or
    /// fails the host (step `health check`) saying what the last attempt got.
    func checkHealth(_ check: HealthCheck, host: Host) async throws(HostError) {
        let url = check.url(for: host)
        var last = ""
        for attempt in 1...(check.retries + 1) {
            if attempt > 1 { try? await Task.sleep(nanoseconds: UInt64(check.interval) * 1_000_000_000) }
            switch await HealthProbe.get(url, timeout: check.timeout) {
            case .failure(let error):
                last = error.message
            case .success(let answer) where !check.expectStatus.contains(answer.status):
                last = "status \(answer.status), expected \(check.expectStatus.map(String.init).joined(separator: " or "))"
            case .success(let answer):
                if let expected = check.expectBody, !answer.body.contains(expected) {
                    last = "status \(answer.status), but the body does not contain \"\(expected)\""
                } else {
                    reporter.report(Event(host: host.description, .hostStep(step: "health check: GET \(url) answered \(answer.status)"
                        + (attempt > 1 ? " (attempt \(attempt))" : ""))))
                    return
                }
            }
        }
        throw HostError(host: host.description, step: "health check",
                        message: "health check GET \(url) failed after \(check.retries + 1) attempt\(check.retries == 0 ? "" : "s"): \(last)",
                        unreachable: false)
    }
}
