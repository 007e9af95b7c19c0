/// Secret values hidden as `***` in output: each value, and each line of a multi-line one (so a
/// key printed line by line is hidden too), the longest first. Used by the agent on hook output
/// and logs, and by the controller on everything it prints.
public struct SecretMask: Sendable, Equatable {
    /// What is replaced, longest first; none empty.
    public let pieces: [String]

    public init(values: some Sequence<String>) {
        var pieces = Set<String>()
        for value in values where !value.isEmpty {
            pieces.insert(value)
            for line in value.split(whereSeparator: \.isNewline) where line.count >= 4 {
                pieces.insert(String(line))
            }
        }
        self.pieces = pieces.sorted { $0.count != $1.count ? $0.count > $1.count : $0 < $1 }
    }

    public var isEmpty: Bool { pieces.isEmpty }

    public func apply(_ text: String) -> String {
        var masked = text
        for piece in pieces where masked.contains(piece) {
            masked = masked.replacing(piece, with: "***")
        }
        return masked
    }
}
