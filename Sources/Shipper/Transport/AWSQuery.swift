import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// AWS's query APIs (EC2, Elastic Load Balancing v2, Auto Scaling): form-encoded POSTs signed
/// with SigV4 by libcurl, XML answers. Credentials from the usual `AWS_*` variables; `endpoint`
/// replaces the service's own (an AWS-compatible server such as moto, or a VPC endpoint).
struct AWSQuery: Sendable {
    enum Service: String, Sendable {
        case ec2
        case elbv2
        case autoscaling

        /// The name SigV4 signs with and AWS's endpoints start with.
        var signingName: String {
            switch self {
            case .ec2: "ec2"
            case .elbv2: "elasticloadbalancing"
            case .autoscaling: "autoscaling"
            }
        }

        var version: String {
            switch self {
            case .ec2: "2016-11-15"
            case .elbv2: "2015-12-01"
            case .autoscaling: "2011-01-01"
            }
        }
    }

    let region: String
    let endpoint: String?
    let accessKey: String
    let secretKey: String
    let sessionToken: String?

    /// `what` names the configuration asking, for the error.
    init(region: String?, endpoint: String?, environment: [String: String] = ProcessInfo.processInfo.environment,
         what: String) throws(ShipError) {
        guard let accessKey = environment["AWS_ACCESS_KEY_ID"], !accessKey.isEmpty,
              let secretKey = environment["AWS_SECRET_ACCESS_KEY"], !secretKey.isEmpty else {
            throw ShipError.usage("\(what) needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment",
                                  hint: "export them where ship runs (in CI, from secrets); AWS_SESSION_TOKEN too for temporary credentials")
        }
        self.region = region ?? environment["AWS_REGION"] ?? environment["AWS_DEFAULT_REGION"] ?? "us-east-1"
        self.endpoint = endpoint
        self.accessKey = accessKey
        self.secretKey = secretKey
        sessionToken = environment["AWS_SESSION_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// One call; throttling, 5xx answers and connection errors are tried again twice.
    func call(_ service: Service, _ action: String, _ parameters: [(String, String)] = []) async throws(ShipError) -> ParsedXML {
        let url = endpoint ?? "https://\(service.signingName).\(region).amazonaws.com"
        let form = ([("Action", action), ("Version", service.version)] + parameters)
            .map { S3Client.encoded($0.0) + "=" + S3Client.encoded($0.1) }.joined(separator: "&")
        let request = HTTPRequest(method: "POST", url: url + "/", headers: ["Content-Type: application/x-www-form-urlencoded; charset=utf-8"],
                                  body: Data(form.utf8),
                                  signature: .init(provider: "aws:amz:\(region):\(service.signingName)", accessKey: accessKey,
                                                   secretKey: secretKey, sessionToken: sessionToken),
                                  timeout: 30, keep: 8 << 20)
        var attempt = 0
        while true {
            attempt += 1
            switch await request.send() {
            case .success(let response) where (200..<300).contains(response.status):
                return ParsedXML(response.body)
            case .success(let response):
                let answer = ParsedXML(response.body)
                let code = answer.descendant("Code")?.text ?? "HTTP \(response.status)"
                if attempt < 3 && (response.status >= 500 || code.contains("Throttl") || code == "RequestLimitExceeded") {
                    try? await Task.sleep(nanoseconds: UInt64(attempt) * 1_000_000_000)
                    continue
                }
                let message = answer.descendant("Message").map { ": \($0.text)" } ?? ""
                throw ShipError("AWS \(service.signingName) \(action) answered \(code)\(message)",
                                hint: response.status == 403 || code.contains("Auth") || code.contains("Unauthorized")
                                    ? "check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and that the IAM policy allows \(service.signingName):\(action)" : nil)
            case .failure(let error):
                if attempt < 3 {
                    try? await Task.sleep(nanoseconds: UInt64(attempt) * 1_000_000_000)
                    continue
                }
                throw ShipError("AWS \(service.signingName) \(action) at \(url): \(error.message)",
                                hint: "check the region and the network (an endpoint: setting replaces AWS's own)")
            }
        }
    }
}

/// An XML document as a tree of elements: name, text, children.
struct ParsedXML: Sendable {
    var name: String
    var text: String = ""
    var children: [ParsedXML] = []

    init(name: String) {
        self.name = name
    }

    /// The document's root element (named "" when the data is not XML).
    init(_ data: Data) {
        let builder = Builder()
        let parser = XMLParser(data: data)
        parser.delegate = builder
        parser.shouldProcessNamespaces = true
        _ = parser.parse()
        self = builder.root.children.first ?? ParsedXML(name: "")
    }

    /// The elements at `path` below this one (`reservationSet/item`).
    func all(_ path: String) -> [ParsedXML] {
        var level = [self]
        for name in path.split(separator: "/") {
            level = level.flatMap { $0.children.filter { $0.name == name } }
        }
        return level
    }

    /// The text of the first element at `path`, nil when there is none or it is empty.
    func value(_ path: String) -> String? {
        all(path).first.map(\.text).flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The first element named `name` anywhere below, depth first.
    func descendant(_ name: String) -> ParsedXML? {
        for child in children {
            if child.name == name { return child }
            if let found = child.descendant(name) { return found }
        }
        return nil
    }

    private final class Builder: NSObject, XMLParserDelegate {
        var root = ParsedXML(name: "")
        var stack: [ParsedXML] = []

        override init() {
            super.init()
            stack = [root]
        }

        func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
                    qualifiedName: String?, attributes: [String: String] = [:]) {
            stack.append(ParsedXML(name: elementName))
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) {
            stack[stack.count - 1].text += string
        }

        func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName: String?) {
            var element = stack.removeLast()
            // The whitespace between child elements is layout; a leaf's text is kept as sent.
            if !element.children.isEmpty { element.text = element.text.trimmingCharacters(in: .whitespacesAndNewlines) }
            stack[stack.count - 1].children.append(element)
        }

        func parserDidEndDocument(_ parser: XMLParser) {
            root = stack.first ?? root
        }
    }
}
