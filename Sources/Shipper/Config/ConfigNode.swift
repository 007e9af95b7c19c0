import Foundation
import Yams

/// A YAML node together with the file it came from and the key path that reached it,
/// so that every error can say `FILE:LINE: KEY.PATH: what was expected`.
struct ConfigNode {
    let node: Node
    /// The file name as shown in messages.
    let file: String
    /// Key path components: mapping keys, and `[N]` for list items.
    let path: [String]

    /// Parses a whole YAML document. An empty document is an empty mapping.
    static func parse(yaml: String, file: String) throws(ShipError) -> ConfigNode {
        do {
            let root = try Yams.compose(yaml: yaml) ?? Node.mapping(.init([]))
            return ConfigNode(node: root, file: file, path: [])
        } catch let error as YamlError {
            throw ConfigNode.translate(error, file: file)
        } catch {
            throw ShipError.config("cannot read YAML: \(error)", at: .init(file: file, line: nil), key: nil)
        }
    }

    private static func translate(_ error: YamlError, file: String) -> ShipError {
        let hint = "check the indentation and quoting near that line; YAML indents with spaces, never tabs"
        switch error {
        case .scanner(let context, let problem, let mark, _),
             .parser(let context, let problem, let mark, _),
             .composer(let context, let problem, let mark, _):
            var message = "malformed YAML: \(problem)"
            if let context { message += " (\(context.text) at line \(context.mark.line))" }
            return .config(message, at: .init(file: file, line: mark.line), key: nil, hint: hint)
        case .duplicatedKeysInMapping(let duplicates, let context):
            return .config("duplicate key \(duplicates.map { "'\($0)'" }.joined(separator: ", ")) in one mapping",
                           at: .init(file: file, line: context.mark.line), key: nil,
                           hint: "each key may appear once; remove or merge the repeated one")
        case .reader(let problem, _, _, _):
            return .config("cannot read YAML: \(problem)", at: .init(file: file, line: nil), key: nil,
                           hint: "the file must be UTF-8 text")
        default:
            return .config("malformed YAML: \(error)", at: .init(file: file, line: nil), key: nil, hint: hint)
        }
    }

    var keyPath: String {
        var text = ""
        for component in path {
            if component.hasPrefix("[") || text.isEmpty {
                text += component
            } else {
                text += "." + component
            }
        }
        return text
    }

    var location: ShipError.Location {
        ShipError.Location(file: file, line: node.mark?.line)
    }

    func error(_ message: String, hint: String? = nil) -> ShipError {
        .config(message, at: location, key: keyPath.isEmpty ? nil : keyPath, hint: hint)
    }

    func child(_ node: Node, _ component: String) -> ConfigNode {
        ConfigNode(node: node, file: file, path: path + [component])
    }

    // MARK: - What a node is, for messages

    var isNull: Bool {
        if case .scalar(let scalar) = node {
            return node.tag.description == Tag.Name.null.rawValue && scalar.style == .plain
        }
        return false
    }

    /// "a list", "a mapping", "nothing", or the scalar as written.
    var found: String {
        switch node {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        case .scalar(let scalar):
            if isNull { return "nothing" }
            let text = scalar.string.count > 40 ? String(scalar.string.prefix(40)) + "…" : scalar.string
            return "\"\(text)\""
        }
    }

    // MARK: - Typed accessors

    /// Any non-null scalar as its text (so `revision: 1234567` is the string "1234567").
    func string(expected: String = "a string") throws(ShipError) -> String {
        guard case .scalar(let scalar) = node, !isNull else {
            throw error("expected \(expected), found \(found)")
        }
        return scalar.string
    }

    /// A non-empty string.
    func nonEmptyString(expected: String = "a string") throws(ShipError) -> String {
        let text = try string(expected: expected)
        guard !text.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw error("expected \(expected), found an empty string")
        }
        return text
    }

    func int(expected: String = "an integer") throws(ShipError) -> Int {
        guard case .scalar(let scalar) = node, scalar.style == .plain,
              node.tag.description == Tag.Name.int.rawValue, let value = node.int else {
            throw error("expected \(expected), found \(found)")
        }
        return value
    }

    func int(atLeast minimum: Int, expected: String? = nil) throws(ShipError) -> Int {
        let description = expected ?? "an integer >= \(minimum)"
        let value = try int(expected: description)
        guard value >= minimum else { throw error("expected \(description), found \(value)") }
        return value
    }

    func int(in range: ClosedRange<Int>, expected: String? = nil) throws(ShipError) -> Int {
        let description = expected ?? "an integer from \(range.lowerBound) to \(range.upperBound)"
        let value = try int(expected: description)
        guard range.contains(value) else { throw error("expected \(description), found \(value)") }
        return value
    }

    func bool() throws(ShipError) -> Bool {
        guard case .scalar(let scalar) = node, scalar.style == .plain,
              node.tag.description == Tag.Name.bool.rawValue, let value = node.bool else {
            throw error("expected true or false, found \(found)")
        }
        return value
    }

    func oneOf<T: RawRepresentable & CaseIterable>(_ type: T.Type) throws(ShipError) -> T where T.RawValue == String {
        let choices = T.allCases.map(\.rawValue)
        let expected = choices.count == 2 ? "\(choices[0]) or \(choices[1])" : "one of \(choices.joined(separator: ", "))"
        let text = try string(expected: expected)
        guard let value = T(rawValue: text) else {
            throw error("expected \(expected), found \(found)", hint: Suggestion.didYouMean(text, among: choices))
        }
        return value
    }

    func list(expected: String = "a list") throws(ShipError) -> [ConfigNode] {
        guard case .sequence(let sequence) = node else {
            throw error("expected \(expected), found \(found)")
        }
        return sequence.enumerated().map { child($0.element, "[\($0.offset)]") }
    }

    func stringList(expected: String = "a list of strings") throws(ShipError) -> [String] {
        var result: [String] = []
        for item in try list(expected: expected) {
            result.append(try item.nonEmptyString(expected: "a string"))
        }
        return result
    }

    /// This node as a mapping whose keys must be among `allowed`.
    func mapping(allowed: [String], expected: String = "a mapping") throws(ShipError) -> ConfigMapping {
        let entries = try mappingEntries(expected: expected)
        for (key, _) in entries where !allowed.contains(key.text) {
            let keyNode = ConfigNode(node: key.node, file: file, path: path + [key.text])
            throw keyNode.error("unknown key",
                                hint: Suggestion.didYouMean(key.text, among: allowed)
                                    ?? "allowed here: \(allowed.joined(separator: ", "))")
        }
        return ConfigMapping(node: self, entries: entries)
    }

    /// The entries of a mapping in document order, with YAML merge keys (`<<: *defaults`) applied.
    func mappingEntries(expected: String = "a mapping") throws(ShipError) -> [(key: (text: String, node: Node), value: ConfigNode)] {
        guard case .mapping(let mapping) = node else {
            throw error("expected \(expected), found \(found)")
        }
        var entries: [(key: (text: String, node: Node), value: ConfigNode)] = []
        var merged: [(key: (text: String, node: Node), value: ConfigNode)] = []
        for (keyNode, valueNode) in mapping {
            guard case .scalar(let keyScalar) = keyNode else {
                throw ConfigNode(node: keyNode, file: file, path: path).error("a key must be a plain word, found \(ConfigNode(node: keyNode, file: file, path: path).found)")
            }
            if keyScalar.string == "<<" && keyScalar.style == .plain {
                let sources: [Node]
                switch valueNode {
                case .mapping: sources = [valueNode]
                case .sequence(let sequence): sources = Array(sequence)
                default: throw child(valueNode, "<<").error("a merge key expects a mapping or a list of mappings")
                }
                for source in sources {
                    merged += try ConfigNode(node: source, file: file, path: path).mappingEntries()
                }
                continue
            }
            entries.append((key: (keyScalar.string, keyNode), value: child(valueNode, keyScalar.string)))
        }
        for entry in merged where !entries.contains(where: { $0.key.text == entry.key.text }) {
            entries.append(entry)
        }
        return entries
    }
}

/// The entries of a validated mapping, looked up by key.
struct ConfigMapping {
    let node: ConfigNode
    let entries: [(key: (text: String, node: Node), value: ConfigNode)]

    subscript(key: String) -> ConfigNode? {
        guard let value = entries.first(where: { $0.key.text == key })?.value, !value.isNull else { return nil }
        return value
    }

    func required(_ key: String, expected: String, hint: String? = nil) throws(ShipError) -> ConfigNode {
        guard let value = self[key] else {
            let path = node.keyPath.isEmpty ? key : node.keyPath + "." + key
            throw ShipError.config("missing required key (expected \(expected))", at: node.location, key: path, hint: hint)
        }
        return value
    }
}

/// "did you mean" suggestions for misspelt keys and values.
enum Suggestion {
    static func didYouMean(_ word: String, among candidates: [String]) -> String? {
        let scored = candidates.map { (candidate: $0, distance: distance(word.lowercased(), $0.lowercased())) }
        guard let best = scored.min(by: { $0.distance < $1.distance }) else { return nil }
        let limit = max(1, min(3, best.candidate.count / 3))
        return best.distance <= limit ? "did you mean '\(best.candidate)'?" : nil
    }

    /// Edit distance counting an adjacent transposition as one edit (optimal string alignment).
    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var d = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in 0...a.count { d[i][0] = i }
        for j in 0...b.count { d[0][j] = j }
        for i in 1...a.count {
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                d[i][j] = Swift.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    d[i][j] = Swift.min(d[i][j], d[i - 2][j - 2] + 1)
                }
            }
        }
        return d[a.count][b.count]
    }
}
