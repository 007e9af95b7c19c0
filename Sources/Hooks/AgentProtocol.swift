/// The version of the JSON protocol between `ship` and `ship-agent`. The controller refuses an
/// agent speaking another version and uploads its own.
public enum AgentProtocol {
    public static let version = 1
}
