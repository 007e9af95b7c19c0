import Foundation
import Hooks

/// The `traffic:` section of an environment: one provider and where it runs.
extension ShipConfigDecoder {
    static let trafficProviders = ["haproxy", "command", "aws_target_group"]
    static let trafficCommonKeys = ["hosts", "servers", "roles"]

    static func decodeTraffic(_ node: ConfigNode, hosts: [Host]) throws(ShipError) -> TrafficSettings {
        let map = try node.mapping(allowed: trafficProviders, expected: "a mapping with one provider: haproxy, command or aws_target_group")
        guard map.entries.count == 1, let entry = map.entries.first else {
            throw node.error("expected one provider, found \(map.entries.isEmpty ? "none" : map.entries.map(\.key.text).joined(separator: " and "))",
                             hint: "e.g. traffic: { haproxy: { hosts: [lb1], socket: /run/haproxy/admin.sock, backend: web } }")
        }
        let (key, providerNode) = (entry.key.text, entry.value)
        let settings: TrafficSettings
        switch key {
        case "haproxy":
            let haproxy = try providerNode.mapping(allowed: trafficCommonKeys + ["socket", "backend", "drain_timeout", "ready_timeout"],
                                                   expected: "a mapping with hosts, socket and backend")
            let socketNode = try haproxy.required("socket", expected: "the path of HAProxy's admin socket",
                                                  hint: "haproxy.cfg's `stats socket` line, e.g. /run/haproxy/admin.sock")
            let socket = try absoluteRemotePath(socketNode)
            let backendNode = try haproxy.required("backend", expected: "the HAProxy backend the hosts are servers of")
            let backend = try runtimeName(backendNode, what: "a backend name")
            var traffic = TrafficSettings(provider: .haproxy(socket: socket, backend: backend), sites: try sites(haproxy))
            traffic.drainTimeout = try haproxy["drain_timeout"]?.int(in: 0...3600, expected: "seconds from 0 to 3600") ?? traffic.drainTimeout
            traffic.readyTimeout = try haproxy["ready_timeout"]?.int(in: 1...3600, expected: "seconds from 1 to 3600") ?? traffic.readyTimeout
            try common(haproxy, into: &traffic, hosts: hosts)
            for host in hosts {
                guard let server = traffic.server(for: host), !TrafficAction.HAProxyServer.isValidName(server) else { continue }
                throw providerNode.error("host \(host) is no HAProxy server name (letters, digits and `_.:-`)",
                                         hint: "name its server under servers:, e.g. servers: { \"\(host)\": web1 }")
            }
            settings = traffic
        case "aws_target_group":
            let group = try providerNode.mapping(allowed: ["target_groups", "region", "endpoint", "instances", "roles", "drain_timeout", "ready_timeout"],
                                                 expected: "a mapping with target_groups (and region, endpoint, instances)")
            let arnsNode = try group.required("target_groups", expected: "target group ARNs",
                                              hint: "e.g. target_groups: [arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/shop/0123456789abcdef]")
            let arnNodes: [ConfigNode]
            if case .sequence = arnsNode.node { arnNodes = try arnsNode.list() } else { arnNodes = [arnsNode] }
            var arns: [String] = []
            for arnNode in arnNodes {
                let arn = try arnNode.nonEmptyString(expected: "a target group ARN")
                guard arn.hasPrefix("arn:"), arn.contains(":targetgroup/") else {
                    throw arnNode.error("expected a target group ARN (arn:…:targetgroup/NAME/ID), found \(arnNode.found)")
                }
                arns.append(arn)
            }
            var traffic = TrafficSettings(provider: .awsTargetGroup(arns: arns, region: try awsRegion(group["region"]),
                                                                    endpoint: try awsEndpoint(group["endpoint"])), sites: [])
            traffic.drainTimeout = try group["drain_timeout"]?.int(in: 0...3600, expected: "seconds from 0 to 3600") ?? 300
            traffic.readyTimeout = try group["ready_timeout"]?.int(in: 1...3600, expected: "seconds from 1 to 3600") ?? 300
            if let roles = group["roles"] { traffic.roles = try roles.stringList(expected: "a list of role names") }
            if let instances = group["instances"] {
                for (key, value) in try hostKeyed(instances, hosts: hosts, expected: "a mapping of hosts to instance ids") {
                    let id = try value.nonEmptyString(expected: "an instance id (i-…)")
                    guard id.range(of: #"^i-[0-9a-f]{8,17}$"#, options: .regularExpression) != nil else {
                        throw value.error("expected an instance id (i-…), found \(value.found)")
                    }
                    traffic.servers[key] = id
                }
            }
            settings = traffic
        default:
            let command = try providerNode.mapping(allowed: trafficCommonKeys + ["drain", "undrain", "timeout"],
                                                   expected: "a mapping with hosts, drain and undrain")
            let drain = try command.required("drain", expected: "a command taking $SHIP_SERVER out of rotation")
                .nonEmptyString(expected: "a command line")
            let undrain = try command.required("undrain", expected: "a command putting $SHIP_SERVER back in rotation")
                .nonEmptyString(expected: "a command line")
            var traffic = TrafficSettings(provider: .command(drain: drain, undrain: undrain), sites: try sites(command))
            traffic.commandTimeout = try command["timeout"]?.int(in: 1...3600, expected: "seconds from 1 to 3600") ?? traffic.commandTimeout
            try common(command, into: &traffic, hosts: hosts)
            settings = traffic
        }
        return settings
    }

    /// `hosts:` the balancer hosts (or `local`), one or more.
    private static func sites(_ map: ConfigMapping) throws(ShipError) -> [Site] {
        let node = try map.required("hosts", expected: "the balancer hosts the provider runs on, or [local]", hint: "e.g. hosts: [lb1]")
        let items: [ConfigNode]
        if case .sequence = node.node { items = try node.list() } else { items = [node] }
        guard !items.isEmpty else { throw node.error("expected at least one balancer host, or [local]") }
        var sites: [Site] = []
        for item in items {
            let site = try decodeSite(item)
            guard !sites.contains(site) else { throw item.error("\(site) is listed twice") }
            sites.append(site)
        }
        return sites
    }

    private static func common(_ map: ConfigMapping, into traffic: inout TrafficSettings, hosts: [Host]) throws(ShipError) {
        if let roles = map["roles"] { traffic.roles = try roles.stringList(expected: "a list of role names") }
        if let servers = map["servers"] {
            for (key, value) in try hostKeyed(servers, hosts: hosts, expected: "a mapping of hosts to server names") {
                traffic.servers[key] = try runtimeName(value, what: "a server name")
            }
        }
    }

    /// A mapping whose keys must each name a host of the environment (as written, or its name).
    private static func hostKeyed(_ node: ConfigNode, hosts: [Host], expected: String) throws(ShipError) -> [(String, ConfigNode)] {
        var entries: [(String, ConfigNode)] = []
        for (key, value) in try node.mappingEntries(expected: expected) {
            guard hosts.contains(where: { $0.description == key.text || $0.name == key.text }) else {
                throw ConfigNode(node: key.node, file: node.file, path: node.path + [key.text]).error("not a host of this environment",
                    hint: Suggestion.didYouMean(key.text, among: hosts.map(\.description)) ?? "hosts: \(hosts.map(\.description).joined(separator: ", "))")
            }
            entries.append((key.text, value))
        }
        return entries
    }

    /// A backend or server name as HAProxy's runtime API takes it.
    private static func runtimeName(_ node: ConfigNode, what: String) throws(ShipError) -> String {
        let name = try node.nonEmptyString(expected: what)
        guard TrafficAction.HAProxyServer.isValidName(name) else {
            throw node.error("expected \(what) of letters, digits and `_.:-`, found \(node.found)")
        }
        return name
    }
}

/// The `notify:` list of an environment.
extension ShipConfigDecoder {
    static func decodeNotify(_ node: ConfigNode) throws(ShipError) -> [NotifyTarget] {
        var targets: [NotifyTarget] = []
        for item in try node.list(expected: "a list of webhooks, e.g. [{ webhook_env: SLACK_WEBHOOK_URL }]") {
            let map = try item.mapping(allowed: ["webhook", "webhook_env", "events"], expected: "a mapping with webhook or webhook_env (and events)")
            let webhook: NotifyTarget.Webhook
            switch (map["webhook"], map["webhook_env"]) {
            case (let urlNode?, nil):
                let url = try urlNode.nonEmptyString(expected: "an http:// or https:// URL")
                guard url.hasPrefix("http://") || url.hasPrefix("https://") else {
                    throw urlNode.error("expected an http:// or https:// URL, found \(urlNode.found)")
                }
                webhook = .url(url)
            case (nil, let variableNode?):
                let variable = try variableNode.nonEmptyString(expected: "an environment variable name")
                guard variable.range(of: #"^[A-Za-z_][A-Za-z0-9_]*$"#, options: .regularExpression) != nil else {
                    throw variableNode.error("not a valid environment variable name")
                }
                webhook = .environment(variable)
            case (nil, nil):
                throw item.error("expected webhook: URL or webhook_env: VARIABLE",
                                 hint: "a webhook URL with a token belongs in the environment: webhook_env: SLACK_WEBHOOK_URL")
            default:
                throw item.error("expected one of webhook and webhook_env, found both")
            }
            var target = NotifyTarget(webhook: webhook)
            if let events = map["events"] {
                for eventNode in try events.list(expected: "a list of events") {
                    target.events.insert(try eventNode.oneOf(NotifyTarget.Event.self))
                }
            }
            targets.append(target)
        }
        return targets
    }
}

/// `inventory: { aws: … }` of an environment.
extension ShipConfigDecoder {
    static func decodeInventory(_ node: ConfigNode) throws(ShipError) -> AWSInventory {
        let map = try node.mapping(allowed: ["aws"], expected: "a mapping with aws")
        let awsNode = try map.required("aws", expected: "the EC2 instances to take as hosts",
                                       hint: "e.g. inventory: { aws: { tags: { Role: web }, region: eu-west-1 } }")
        let aws = try awsNode.mapping(allowed: ["tags", "auto_scaling_group", "region", "endpoint", "address", "roles"],
                                      expected: "a mapping with tags and/or auto_scaling_group")
        var inventory = AWSInventory(region: try awsRegion(aws["region"]), endpoint: try awsEndpoint(aws["endpoint"]))
        if let tags = aws["tags"] {
            for (key, value) in try tags.mappingEntries(expected: "a mapping of tag names to values") {
                inventory.tags[key.text] = try value.string(expected: "a tag value")
            }
        }
        inventory.autoScalingGroup = try aws["auto_scaling_group"]?.nonEmptyString(expected: "an Auto Scaling group name")
        guard !inventory.tags.isEmpty || inventory.autoScalingGroup != nil else {
            throw awsNode.error("expected tags or auto_scaling_group (or both): which instances are hosts",
                                hint: "e.g. tags: { Role: web, Env: prod } or auto_scaling_group: shop-web")
        }
        inventory.address = try aws["address"]?.oneOf(AWSInventory.Address.self) ?? .privateIP
        if let roles = aws["roles"] { inventory.roles = try roles.stringList(expected: "a list of role names") }
        return inventory
    }

    static func awsRegion(_ node: ConfigNode?) throws(ShipError) -> String? {
        guard let node else { return nil }
        let region = try node.nonEmptyString(expected: "an AWS region")
        guard region.range(of: #"^[a-z]{2}(-[a-z]+)+-[0-9]+$"#, options: .regularExpression) != nil else {
            throw node.error("expected an AWS region such as eu-west-1, found \(node.found)")
        }
        return region
    }

    static func awsEndpoint(_ node: ConfigNode?) throws(ShipError) -> String? {
        guard let node else { return nil }
        let endpoint = try node.nonEmptyString(expected: "an http(s):// URL")
        guard endpoint.hasPrefix("http://") || endpoint.hasPrefix("https://") else {
            throw node.error("expected an http:// or https:// URL, found \(node.found)")
        }
        return endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint
    }
}
