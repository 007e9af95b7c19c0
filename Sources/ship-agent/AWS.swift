#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import FoundationEssentials
import Hooks

/// The host's curl, given its options in curl's config syntax on stdin (`--config -`): links,
/// credentials and tokens never appear on a command line, where `ps` shows them to every user.
enum Curl {
    /// A quoted string of curl's config syntax: backslash and double quote escaped, and line
    /// breaks, which would otherwise end the option and start another.
    static func quoted(_ text: String) -> String {
        var escaped = "\""
        for character in text {
            switch character {
            case "\\", "\"": escaped += "\\" + String(character)
            case "\n": escaped += "\\n"
            case "\r": escaped += "\\r"
            case "\r\n": escaped += "\\r\\n"
            default: escaped.append(character)
            }
        }
        return escaped + "\""
    }

    struct Response {
        /// The HTTP status; 0 when no answer came (curl's error is in `body`).
        var status: Int
        var body: String
    }

    /// One request; its status and body (curl's error when it got no answer).
    static func send(_ curl: String, _ config: [String], timeout: Int = 30) -> Response {
        let text = (config + ["write-out = \"\\n%{http_code}\""]).joined(separator: "\n") + "\n"
        let ran = Helper.run([curl, "--config", "-", "--silent", "--show-error", "--max-time", String(timeout)], input: Array(text.utf8))
        var body = ran.output
        var status = 0
        if let newline = body.lastIndex(of: "\n"), let code = Int(body[body.index(after: newline)...]) {
            status = code
            body = String(body[..<newline])
        }
        // curl failed (no answer, or cut short): what it said is the body.
        guard ran.status == 0 else { return Response(status: 0, body: body.trimmed + " (curl exit \(ran.status))") }
        return Response(status: status, body: body)
    }
}

/// AWS from a host (`ship-agent pull`): credentials from the environment or the instance's role
/// (IMDSv2), the region, and requests signed with SigV4 by the host's curl (`--aws-sigv4`).
struct AWSAccess {
    struct Credentials {
        var accessKey: String
        var secretKey: String
        var sessionToken: String?
        /// Where they came from, for messages.
        var source: String
    }

    let curl: String
    let region: String
    private let probe: MetadataProbe
    let credentials: Credentials

    /// The instance's metadata service, when there is one (on EC2); looked for once, when needed.
    var metadata: InstanceMetadata? { probe.metadata }

    /// The EC2 instance's id, asked once.
    var instanceId: String? { probe.instanceId }

    /// The region (`--region`, AWS_REGION, AWS_DEFAULT_REGION, else the instance's) and the
    /// credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN, else the
    /// instance profile's, which is the way on EC2: nothing secret in user-data).
    static func resolve(region given: String?, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> AWSAccess {
        guard let curl = Child.findOnPath(["curl"]) else {
            throw AgentError("curl is not installed on this host; ship-agent pull uses it to reach the store",
                             hint: "install curl first (apt-get install -y curl, dnf install -y curl)")
        }
        let probe = MetadataProbe(curl: curl, environment: environment)
        let region = given ?? environment["AWS_REGION"].nonEmpty ?? environment["AWS_DEFAULT_REGION"].nonEmpty
            ?? probe.metadata?.get("placement/region")
        guard let region, !region.isEmpty else {
            throw AgentError("no AWS region: none was given and this is not an EC2 instance that says its own",
                             hint: "pass --region (or set AWS_REGION)")
        }
        if let key = environment["AWS_ACCESS_KEY_ID"].nonEmpty, let secret = environment["AWS_SECRET_ACCESS_KEY"].nonEmpty {
            return AWSAccess(curl: curl, region: region, probe: probe,
                             credentials: Credentials(accessKey: key, secretKey: secret, sessionToken: environment["AWS_SESSION_TOKEN"].nonEmpty,
                                                      source: "AWS_ACCESS_KEY_ID"))
        }
        guard let metadata = probe.metadata else {
            throw AgentError("no AWS credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set, and no instance metadata service answered",
                             hint: "on EC2, give the instance a role (instance profile) that may read the store; elsewhere, export the keys")
        }
        guard let role = metadata.get("iam/security-credentials/")?.split(separator: "\n").first.map(String.init), !role.isEmpty else {
            throw AgentError("no AWS credentials: the instance has no role (instance profile)",
                             hint: "attach an instance profile whose role may read the store (docs/autoscaling.md lists the permissions)")
        }
        guard let document = metadata.get("iam/security-credentials/" + role),
              let decoded = try? JSONDecoder().decode(RoleCredentials.self, from: Data(document.utf8)) else {
            throw AgentError("cannot read the credentials of the instance's role \(role) from its metadata service")
        }
        return AWSAccess(curl: curl, region: region, probe: probe,
                         credentials: Credentials(accessKey: decoded.AccessKeyId, secretKey: decoded.SecretAccessKey,
                                                  sessionToken: decoded.Token, source: "the instance's role \(role)"))
    }

    private struct RoleCredentials: Decodable {
        var AccessKeyId: String
        var SecretAccessKey: String
        var Token: String?
    }

    /// curl config lines that sign a request to `service` with SigV4.
    func signing(_ service: String) -> [String] {
        var lines = ["user = " + Curl.quoted(credentials.accessKey + ":" + credentials.secretKey),
                     "aws-sigv4 = " + Curl.quoted("aws:amz:\(region):\(service)")]
        if let token = credentials.sessionToken { lines.append("header = " + Curl.quoted("x-amz-security-token: " + token)) }
        // S3 wants the payload's hash said; a GET has none to sign.
        if service == "s3" { lines.append("header = \"x-amz-content-sha256: UNSIGNED-PAYLOAD\"") }
        return lines
    }

    /// A signed request; its status and body.
    func send(_ method: String, _ url: String, service: String, form: String? = nil) -> Curl.Response {
        var config = ["url = " + Curl.quoted(url), "request = " + Curl.quoted(method)] + signing(service)
        if let form {
            config.append("header = \"Content-Type: application/x-www-form-urlencoded; charset=utf-8\"")
            config.append("data-raw = " + Curl.quoted(form))
        }
        return Curl.send(curl, config)
    }
}

/// Whether an instance metadata service answers, asked once (AWS_EC2_METADATA_DISABLED=true:
/// never): off EC2 the question costs a connection timeout.
final class MetadataProbe {
    let curl: String
    let environment: [String: String]
    private var answer: InstanceMetadata??
    private var id: String??

    init(curl: String, environment: [String: String]) {
        self.curl = curl
        self.environment = environment
    }

    var metadata: InstanceMetadata? {
        if let answer { return answer }
        let found = environment["AWS_EC2_METADATA_DISABLED"]?.lowercased() == "true" ? nil : InstanceMetadata.connect(curl, environment: environment)
        answer = .some(found)
        return found
    }

    var instanceId: String? {
        if let id { return id }
        let found = metadata?.get("instance-id")
        id = .some(found)
        return found
    }
}

/// The EC2 instance metadata service, version 2 (a session token first): its address is
/// AWS_EC2_METADATA_SERVICE_ENDPOINT when set, as for the AWS SDKs.
struct InstanceMetadata {
    let curl: String
    let endpoint: String
    let token: String

    /// nil when no metadata service answers within a second or two (not on EC2).
    static func connect(_ curl: String, environment: [String: String]) -> InstanceMetadata? {
        var endpoint = environment["AWS_EC2_METADATA_SERVICE_ENDPOINT"].nonEmpty ?? "http://169.254.169.254"
        while endpoint.hasSuffix("/") { endpoint.removeLast() }
        let answer = Curl.send(curl, ["url = " + Curl.quoted(endpoint + "/latest/api/token"), "request = \"PUT\"",
                                      "header = \"X-aws-ec2-metadata-token-ttl-seconds: 3600\"", "connect-timeout = 2"], timeout: 5)
        guard answer.status == 200, !answer.body.isEmpty else { return nil }
        return InstanceMetadata(curl: curl, endpoint: endpoint, token: answer.body.trimmed)
    }

    /// `latest/meta-data/<path>`, or nil.
    func get(_ path: String) -> String? {
        let answer = Curl.send(curl, ["url = " + Curl.quoted(endpoint + "/latest/meta-data/" + path),
                                      "header = " + Curl.quoted("X-aws-ec2-metadata-token: " + token), "connect-timeout = 2"], timeout: 5)
        return answer.status == 200 ? answer.body.trimmed : nil
    }
}

extension Optional where Wrapped == String {
    /// The string, unless it is absent or empty.
    var nonEmpty: String? {
        guard let self, !self.isEmpty else { return nil }
        return self
    }
}

