import CCurl
import Crypto
import Foundation
import Hooks
#if canImport(FoundationXML)
import FoundationXML
#endif

/// The few S3 calls backups need, over libcurl with its built-in SigV4 signing. Every request
/// carries `x-amz-content-sha256` with the payload's real hash, which libcurl signs, so S3 checks
/// each uploaded byte. Queries are written already canonical (sorted, every parameter with a
/// value, strictly percent-encoded) because libcurl before 8.3 signs the query as given.
struct S3Client: Sendable {
    let endpoint: String
    let bucket: String
    let region: String
    let accessKey: String
    let secretKey: String
    let sessionToken: String?

    struct Response {
        var status: Int
        var body: Data
        var headers: [String: String]
    }

    static let emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    // MARK: - Calls

    func putObject(key: String, data: Data) throws(ShipError) {
        _ = try send("PUT", key: key, body: data, expect: [200])
    }

    /// Uploads a file: one PUT up to `partSize`, a multipart upload above it (aborted on failure).
    /// `ifAbsent`: a conditional write (`If-None-Match: *`, on the PUT or on completing the
    /// multipart upload): an object already at `key` stays, and the upload says false.
    @discardableResult
    func upload(key: String, file path: String, partSize: Int = 16 << 20, ifAbsent: Bool = false) throws(ShipError) -> Bool {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw ShipError("cannot read \(path)") }
        defer { try? handle.close() } // read-only
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        func readPart() throws(ShipError) -> Data {
            do {
                return try handle.read(upToCount: partSize) ?? Data()
            } catch {
                throw ShipError("cannot read \(path): \(error.localizedDescription)")
            }
        }
        let condition = ifAbsent ? ["If-None-Match: *"] : []
        if size <= partSize {
            return try send("PUT", key: key, body: try readPart(), expect: [200, 412], headers: condition).status == 200
                || !ifAbsent
        }
        let created = try send("POST", key: key, query: [("uploads", "")], expect: [200])
        guard let uploadID = ParsedXML(created.body).value("UploadId") else {
            throw ShipError("S3 gave no UploadId for \(describe(key))")
        }
        do throws(ShipError) {
            var parts: [(Int, String)] = []
            var number = 1
            while true {
                let part = try readPart()
                if part.isEmpty { break }
                let response = try send("PUT", key: key, query: [("partNumber", String(number)), ("uploadId", uploadID)],
                                        body: part, expect: [200])
                guard let etag = response.headers["etag"] else { throw ShipError("S3 gave no ETag for part \(number) of \(describe(key))") }
                parts.append((number, etag))
                number += 1
            }
            var xml = "<CompleteMultipartUpload>"
            for (number, etag) in parts {
                xml += "<Part><PartNumber>\(number)</PartNumber><ETag>\(Self.xmlEscaped(etag))</ETag></Part>"
            }
            xml += "</CompleteMultipartUpload>"
            let completed = try send("POST", key: key, query: [("uploadId", uploadID)], body: Data(xml.utf8), expect: [200, 412],
                                     headers: condition)
            // S3 may answer 200 with an error document once the upload was assembling.
            let completion = ParsedXML(completed.body)
            if completed.status == 412 || (completion.name == "Error" && completion.value("Code") == "PreconditionFailed") {
                _ = try? send("DELETE", key: key, query: [("uploadId", uploadID)], expect: [204, 200, 404])
                return false
            }
            if completion.name == "Error", let code = completion.value("Code") {
                throw ShipError("S3 could not complete the upload of \(describe(key)): \(code)")
            }
            return true
        } catch {
            _ = try? send("DELETE", key: key, query: [("uploadId", uploadID)], expect: [204, 200])
            throw error
        }
    }

    /// Downloads an object into a new 0600 file.
    func download(key: String, to path: String) throws(ShipError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ShipError("cannot create \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        _ = try send("GET", key: key, expect: [200], into: fd)
    }

    func getObject(key: String) throws(ShipError) -> Data {
        try send("GET", key: key, expect: [200]).body
    }

    func deleteObject(key: String) throws(ShipError) {
        _ = try send("DELETE", key: key, expect: [204, 200])
    }

    /// Keys and sizes under a prefix (ListObjectsV2, all pages).
    /// With `delimiter`, only the keys right under the prefix (none in deeper "directories").
    func list(prefix: String, delimiter: String? = nil) throws(ShipError) -> [String: Int64] {
        var objects: [String: Int64] = [:]
        var token: String?
        repeat {
            var query = [("list-type", "2"), ("prefix", prefix)]
            if let delimiter { query.append(("delimiter", delimiter)) }
            if let token { query.append(("continuation-token", token)) }
            let response = try send("GET", key: "", query: query, expect: [200])
            let listing = ParsedXML(response.body)
            for item in listing.all("Contents") {
                guard let key = item.value("Key") else { continue }
                objects[key] = item.value("Size").flatMap { Int64($0) } ?? -1
            }
            token = listing.value("IsTruncated") == "true" ? listing.value("NextContinuationToken") : nil
        } while token != nil
        return objects
    }

    func describe(_ key: String) -> String { "s3://\(bucket)/\(key)" }

    /// The object's size, or nil when there is none.
    func size(of key: String) throws(ShipError) -> Int64? {
        let response = try send("HEAD", key: key, expect: [200, 404])
        guard response.status == 200 else { return nil }
        return response.headers["content-length"].flatMap { Int64($0.trimmingCharacters(in: .whitespaces)) } ?? 0
    }

    /// A GET link anyone holding it may use until it expires: SigV4 in the query string, for the
    /// payload unsigned (the fetcher checks the SHA-256 it was given instead). Path-style, as every
    /// request of this client; the session token, when there is one, is signed in the link too.
    func presignedGET(key: String, lifetime: Int, now: Date = Date()) -> String {
        let base = URL(string: endpoint)
        let host = (base?.host ?? "") + (base?.port.map { ":\($0)" } ?? "")
        let path = String(url(key: key, query: []).dropFirst(endpoint.count))
        return endpoint + Self.presign(method: "GET", path: path, host: host, region: region, accessKey: accessKey, secretKey: secretKey,
                                       sessionToken: sessionToken, lifetime: lifetime, now: now)
    }

    /// `path?query&X-Amz-Signature=…` of a presigned request (AWS's "Authenticating Requests: Using
    /// Query Parameters"); `path` is already URI-encoded, `host` is the Host header's value.
    static func presign(method: String, path: String, host: String, region: String, accessKey: String, secretKey: String,
                        sessionToken: String?, lifetime: Int, now: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        let stamp = formatter.string(from: now)
        let day = String(stamp.prefix(8))
        let scope = "\(day)/\(region)/s3/aws4_request"
        var parameters = [("X-Amz-Algorithm", "AWS4-HMAC-SHA256"), ("X-Amz-Credential", "\(accessKey)/\(scope)"), ("X-Amz-Date", stamp),
                          ("X-Amz-Expires", String(lifetime)), ("X-Amz-SignedHeaders", "host")]
        if let sessionToken { parameters.append(("X-Amz-Security-Token", sessionToken)) }
        let query = parameters.map { (encoded($0.0), encoded($0.1)) }.sorted { $0.0 < $1.0 }.map { "\($0.0)=\($0.1)" }.joined(separator: "&")
        let canonical = [method, path, query, "host:\(host)", "", "host", "UNSIGNED-PAYLOAD"].joined(separator: "\n")
        let stringToSign = ["AWS4-HMAC-SHA256", stamp, scope, sha256Hex(Data(canonical.utf8))].joined(separator: "\n")
        var key = SymmetricKey(data: Data("AWS4\(secretKey)".utf8))
        for part in [day, region, "s3", "aws4_request"] {
            key = SymmetricKey(data: Data(HMAC<SHA256>.authenticationCode(for: Data(part.utf8), using: key)))
        }
        let signature = HMAC<SHA256>.authenticationCode(for: Data(stringToSign.utf8), using: key).map { String(format: "%02x", $0) }.joined()
        return path + "?" + query + "&X-Amz-Signature=" + signature
    }

    // MARK: - HTTP

    /// One signed request, retried on connection errors and 5xx answers.
    func send(_ method: String, key: String, query: [(String, String)] = [], body: Data? = nil, expect: Set<Int>,
              into fd: Int32? = nil, headers extra: [String] = []) throws(ShipError) -> Response {
        var attempt = 0
        while true {
            attempt += 1
            if let fd { ftruncate(fd, 0); lseek(fd, 0, SEEK_SET) }
            let outcome = perform(method, key: key, query: query, body: body, into: fd, headers: extra)
            switch outcome {
            case .success(let response) where expect.contains(response.status):
                return response
            case .success(let response) where response.status >= 500 && attempt < 3:
                usleep(UInt32(attempt) * 500_000)
            case .success(let response):
                let answer = ParsedXML(response.body)
                let code = answer.value("Code").map { " \($0)" } ?? ""
                let message = answer.value("Message").map { ": \($0)" } ?? ""
                throw ShipError("S3 \(method) \(describe(key)) answered \(response.status)\(code)\(message)",
                                hint: response.status == 403 ? "check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and the bucket policy" : nil)
            case .failure where attempt < 3:
                usleep(UInt32(attempt) * 500_000)
            case .failure(let error):
                throw error
            }
        }
    }

    private func perform(_ method: String, key: String, query: [(String, String)], body: Data?,
                         into fd: Int32?, headers extra: [String]) -> Result<Response, ShipError> {
        Self.globalInit
        guard let curl = curl_easy_init() else { return .failure(ShipError("cannot start libcurl")) }
        defer { curl_easy_cleanup(curl) }
        let url = url(key: key, query: query)
        let context = TransferContext(body: body ?? Data(), fd: fd)
        let unmanaged = Unmanaged.passRetained(context)
        defer { unmanaged.release() }
        let pointer = unmanaged.toOpaque()

        var headers: UnsafeMutablePointer<curl_slist>?
        let payloadHash = body.map { Self.sha256Hex($0) } ?? Self.emptySHA256
        for header in ["x-amz-content-sha256: \(payloadHash)", "Content-Type: application/octet-stream"]
            + (sessionToken.map { ["x-amz-security-token: \($0)"] } ?? []) + extra {
            headers = curl_slist_append(headers, header)
        }
        defer { curl_slist_free_all(headers) }

        ship_curl_set_string(curl, CURLOPT_URL, url)
        ship_curl_set_string(curl, CURLOPT_CUSTOMREQUEST, method)
        ship_curl_set_string(curl, CURLOPT_AWS_SIGV4, "aws:amz:\(region):s3")
        ship_curl_set_string(curl, CURLOPT_USERNAME, accessKey)
        ship_curl_set_string(curl, CURLOPT_PASSWORD, secretKey)
        ship_curl_set_pointer(curl, CURLOPT_HTTPHEADER, headers)
        ship_curl_set_long(curl, CURLOPT_NOSIGNAL, 1)
        // No wait for a 100 Continue, and no empty `Expect:` header to stop it: libcurl's SigV4
        // would sign that header though it is never sent, and S3 would compute another signature.
        ship_curl_set_long(curl, CURLOPT_EXPECT_100_TIMEOUT_MS, 0)
        ship_curl_set_long(curl, CURLOPT_CONNECTTIMEOUT, 15)
        ship_curl_set_long(curl, CURLOPT_LOW_SPEED_LIMIT, 1)
        ship_curl_set_long(curl, CURLOPT_LOW_SPEED_TIME, 60)
        ship_curl_set_write(curl, { data, size, count, context in
            let transfer = Unmanaged<TransferContext>.fromOpaque(context!).takeUnretainedValue()
            return transfer.receive(UnsafeRawBufferPointer(start: data, count: size * count)) ? size * count : 0
        }, pointer)
        ship_curl_set_header_callback(curl, { data, size, count, context in
            let transfer = Unmanaged<TransferContext>.fromOpaque(context!).takeUnretainedValue()
            transfer.header(String(decoding: UnsafeRawBufferPointer(start: data, count: size * count), as: UTF8.self))
            return size * count
        }, pointer)
        if method == "HEAD" { ship_curl_set_long(curl, CURLOPT_NOBODY, 1) }
        if method == "PUT" || method == "POST" {
            ship_curl_set_long(curl, CURLOPT_UPLOAD, 1)
            ship_curl_set_offset(curl, CURLOPT_INFILESIZE_LARGE, curl_off_t(body?.count ?? 0))
            ship_curl_set_read(curl, { buffer, size, count, context in
                let transfer = Unmanaged<TransferContext>.fromOpaque(context!).takeUnretainedValue()
                return transfer.send(into: UnsafeMutableRawBufferPointer(start: buffer, count: size * count))
            }, pointer)
        }
        let code = curl_easy_perform(curl)
        if let failure = context.failure { return .failure(failure) }
        guard code == CURLE_OK else {
            return .failure(ShipError("S3 \(method) \(describe(key)): \(String(cString: curl_easy_strerror(code)))",
                                      hint: "check the store's endpoint (backup.s3.endpoint) and the network"))
        }
        return .success(Response(status: ship_curl_response_code(curl), body: context.received, headers: context.headers))
    }

    /// Path-style URL (`endpoint/bucket/key`) with a canonical query.
    func url(key: String, query: [(String, String)]) -> String {
        var text = endpoint + "/" + Self.encoded(bucket) + "/" + key.split(separator: "/", omittingEmptySubsequences: false)
            .map { Self.encoded(String($0)) }.joined(separator: "/")
        if !query.isEmpty {
            text += "?" + query.map { (Self.encoded($0.0), Self.encoded($0.1)) }.sorted { $0.0 < $1.0 }
                .map { "\($0.0)=\($0.1)" }.joined(separator: "&")
        }
        return text
    }

    /// SigV4's URI encoding (Hooks' URIEncoding).
    static func encoded(_ text: String) -> String { URIEncoding.encoded(text) }

    static func sha256Hex(_ data: Data) -> String {
        SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }

    /// curl_global_init, once, before any transfer (it is not thread-safe itself).
    static let globalInit: Void = {
        curl_global_init(Int(CURL_GLOBAL_DEFAULT))
    }()

    static func xmlEscaped(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}

/// What one transfer's callbacks share.
private final class TransferContext {
    let body: Data
    var offset = 0
    let fd: Int32?
    var received = Data()
    var headers: [String: String] = [:]
    var failure: ShipError?

    init(body: Data, fd: Int32?) {
        self.body = body
        self.fd = fd
    }

    func receive(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let fd, (200..<300).contains(status) else {
            received.append(contentsOf: bytes)
            return true
        }
        guard POSIXIO.writeAll(fd, bytes) else {
            failure = ShipError("cannot write the download: \(String(cString: strerror(errno)))")
            return false
        }
        return true
    }

    /// The status line's code, once seen (bodies of errors are kept in memory, not the file).
    var status = 0

    func header(_ line: String) {
        if line.hasPrefix("HTTP/") {
            status = Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
            headers = [:]
            return
        }
        guard let colon = line.firstIndex(of: ":") else { return }
        let name = line[..<colon].lowercased()
        headers[name] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func send(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        let count = min(buffer.count, body.count - offset)
        guard count > 0 else { return 0 }
        body.withUnsafeBytes { source in
            buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[offset..<(offset + count)]))
        }
        offset += count
        return count
    }
}
