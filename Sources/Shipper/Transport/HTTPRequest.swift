import CCurl
import Foundation

/// One small HTTP request with libcurl: health checks, webhooks, AWS query APIs (signed with
/// libcurl's own SigV4). The body answered is kept up to `keep` bytes. `perform()` blocks; `send()`
/// runs it on a thread of its own, off the concurrency pool.
struct HTTPRequest: Sendable {
    struct Response: Sendable {
        var status: Int
        var body: Data
    }

    /// SigV4 signing by libcurl (`CURLOPT_AWS_SIGV4`).
    struct Signature: Sendable {
        /// e.g. `aws:amz:eu-west-1:elasticloadbalancing`.
        var provider: String
        var accessKey: String
        var secretKey: String
        var sessionToken: String?
    }

    var method = "GET"
    var url: String
    var headers: [String] = []
    var body: Data?
    var signature: Signature?
    /// Seconds for the whole request.
    var timeout = 30
    var keep = 64 << 10
    /// A proxy URL, e.g. `socks5h://127.0.0.1:PORT` (names resolved by the proxy's host).
    var proxy: String?

    func send() async -> Result<Response, ShipError> {
        await withCheckedContinuation { continuation in
            Thread.detachNewThread { continuation.resume(returning: perform()) }
        }
    }

    private final class Exchange {
        var received = Data()
        let keep: Int

        init(keep: Int) {
            self.keep = keep
        }
    }

    func perform() -> Result<Response, ShipError> {
        S3Client.globalInit
        guard let curl = curl_easy_init() else { return .failure(ShipError("cannot start libcurl")) }
        defer { curl_easy_cleanup(curl) }
        let exchange = Exchange(keep: keep)
        let unmanaged = Unmanaged.passRetained(exchange)
        defer { unmanaged.release() }
        var list: UnsafeMutablePointer<curl_slist>?
        for header in headers + (signature?.sessionToken.map { ["x-amz-security-token: \($0)"] } ?? []) {
            list = curl_slist_append(list, header)
        }
        defer { curl_slist_free_all(list) }
        ship_curl_set_string(curl, CURLOPT_URL, url)
        ship_curl_set_string(curl, CURLOPT_CUSTOMREQUEST, method)
        ship_curl_set_pointer(curl, CURLOPT_HTTPHEADER, list)
        ship_curl_set_long(curl, CURLOPT_NOSIGNAL, 1)
        // The body goes at once, without waiting for a 100 Continue. (Not an empty `Expect:`
        // header: libcurl's SigV4 would sign it as `expect` though it is never sent, and AWS and
        // botocore then compute another signature.)
        ship_curl_set_long(curl, CURLOPT_EXPECT_100_TIMEOUT_MS, 0)
        ship_curl_set_long(curl, CURLOPT_TIMEOUT, timeout)
        ship_curl_set_long(curl, CURLOPT_FOLLOWLOCATION, 0)
        if let proxy { ship_curl_set_string(curl, CURLOPT_PROXY, proxy) }
        if let signature {
            ship_curl_set_string(curl, CURLOPT_AWS_SIGV4, signature.provider)
            ship_curl_set_string(curl, CURLOPT_USERNAME, signature.accessKey)
            ship_curl_set_string(curl, CURLOPT_PASSWORD, signature.secretKey)
        }
        ship_curl_set_write(curl, { data, size, count, context in
            let exchange = Unmanaged<Exchange>.fromOpaque(context!).takeUnretainedValue()
            let room = max(0, exchange.keep - exchange.received.count)
            if room > 0, let data {
                exchange.received.append(UnsafeRawPointer(data).assumingMemoryBound(to: UInt8.self), count: min(room, size * count))
            }
            return size * count
        }, unmanaged.toOpaque())
        if let body {
            // As POST fields (libcurl copies them), not through a read callback: libcurl's SigV4
            // hashes the fields it holds, and a body it reads later would be signed as empty.
            ship_curl_set_offset(curl, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.count))
            if body.isEmpty {
                ship_curl_set_string(curl, CURLOPT_COPYPOSTFIELDS, "")
            } else {
                var bytes = [UInt8](body)
                bytes.withUnsafeMutableBytes { _ = ship_curl_set_pointer(curl, CURLOPT_COPYPOSTFIELDS, $0.baseAddress) }
            }
        }
        let code = curl_easy_perform(curl)
        guard code == CURLE_OK else { return .failure(ShipError(String(cString: curl_easy_strerror(code)))) }
        return .success(Response(status: ship_curl_response_code(curl), body: exchange.received))
    }

    /// The URL without its path, query or credentials: what may be shown of a webhook's
    /// secret URL (Slack's carry their token in the path).
    static func redacted(_ url: String) -> String {
        guard let components = URLComponents(string: url), let scheme = components.scheme, let host = components.host else { return "(a URL)" }
        return "\(scheme)://\(host)\(components.port.map { ":\($0)" } ?? "")/…"
    }
}
