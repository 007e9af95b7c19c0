import Hooks

/// ship's version, shared by the controller and the agent's protocol handshake.
public enum ShipperVersion {
    public static let current = AgentProtocol.shipVersion
}
