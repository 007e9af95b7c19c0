import Foundation

/// `inventory: { aws: … }`: the environment's hosts from EC2, found at the start of a command.
public enum Inventory {
    /// One running instance as EC2 describes it.
    public struct Instance: Sendable, Equatable {
        public var id: String
        public var privateIP: String?
        public var publicIP: String?
        public var privateDNS: String?
        public var publicDNS: String?

        func address(_ kind: AWSInventory.Address) -> String? {
            switch kind {
            case .privateIP: privateIP
            case .publicIP: publicIP
            case .privateDNS: privateDNS
            case .publicDNS: publicDNS
            case .instanceId: id
            }
        }
    }

    /// The environment with the inventory's hosts after its own `hosts` (a host listed there
    /// too keeps its entry and gains the instance id). Without an inventory, as it is.
    public static func resolve(_ environment: Environment,
                               variables: [String: String] = ProcessInfo.processInfo.environment) async throws(ShipError) -> Environment {
        guard let inventory = environment.inventory else { return environment }
        let instances = try await instances(inventory, variables: variables)
        var resolved = environment
        for instance in instances {
            guard let address = instance.address(inventory.address) else {
                throw ShipError("inventory: instance \(instance.id) has no \(inventory.address.rawValue)",
                                hint: "choose another address: (private_ip, public_ip, private_dns, public_dns, instance_id)")
            }
            if let index = resolved.hosts.firstIndex(where: { $0.name == address || $0.instanceId == instance.id }) {
                resolved.hosts[index].instanceId = instance.id
            } else {
                resolved.hosts.append(Host(name: address, roles: inventory.roles, instanceId: instance.id))
            }
        }
        guard !resolved.hosts.isEmpty else {
            throw ShipError("inventory: no running instance matches \(describe(inventory)) in \(inventory.region ?? "the default region"), "
                            + "and the environment lists no hosts", hint: "check the tags and the Auto Scaling group with the AWS console or CLI")
        }
        return resolved
    }

    /// `tags Role=web, Env=prod, Auto Scaling group shop-web`.
    public static func describe(_ inventory: AWSInventory) -> String {
        var parts: [String] = []
        if !inventory.tags.isEmpty { parts.append("tags " + inventory.tags.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")) }
        if let group = inventory.autoScalingGroup { parts.append("Auto Scaling group \(group)") }
        return parts.joined(separator: ", ")
    }

    /// The running instances with every tag, and in service in the Auto Scaling group when one
    /// is named; by instance id.
    public static func instances(_ inventory: AWSInventory,
                                 variables: [String: String] = ProcessInfo.processInfo.environment) async throws(ShipError) -> [Instance] {
        let aws = try AWSQuery(region: inventory.region, endpoint: inventory.endpoint, environment: variables, what: "inventory: aws")
        var parameters: [(String, String)] = [("Filter.1.Name", "instance-state-name"), ("Filter.1.Value.1", "running")]
        for (index, tag) in inventory.tags.sorted(by: { $0.key < $1.key }).enumerated() {
            parameters += [("Filter.\(index + 2).Name", "tag:\(tag.key)"), ("Filter.\(index + 2).Value.1", tag.value)]
        }
        if let group = inventory.autoScalingGroup {
            let answer = try await aws.call(.autoscaling, "DescribeAutoScalingGroups", [("AutoScalingGroupNames.member.1", group)])
            guard let found = answer.all("DescribeAutoScalingGroupsResult/AutoScalingGroups/member").first else {
                throw ShipError("inventory: no Auto Scaling group \(group) in \(aws.region)")
            }
            let ids = found.all("Instances/member").filter { $0.value("LifecycleState") == "InService" }.compactMap { $0.value("InstanceId") }
            guard !ids.isEmpty else { return [] }
            for (index, id) in ids.sorted().enumerated() { parameters.append(("InstanceId.\(index + 1)", id)) }
        }
        var instances: [Instance] = []
        var token: String?
        repeat {
            let answer = try await aws.call(.ec2, "DescribeInstances", parameters + (token.map { [("NextToken", $0)] } ?? []))
            for item in answer.all("reservationSet/item/instancesSet/item") {
                guard let id = item.value("instanceId") else { continue }
                instances.append(Instance(id: id, privateIP: item.value("privateIpAddress"), publicIP: item.value("ipAddress"),
                                          privateDNS: item.value("privateDnsName"), publicDNS: item.value("dnsName")))
            }
            token = answer.value("nextToken")
        } while token != nil
        return instances.sorted { $0.id < $1.id }
    }
}
