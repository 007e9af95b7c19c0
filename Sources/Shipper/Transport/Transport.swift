import Foundation

/// What a command's stdin gets.
public enum TransportInput: Sendable {
    case none
    case data(Data)
    /// `data` first, then the whole file at `path` (a request line followed by a bundle).
    case dataThenFile(Data, path: String)
    /// `data` first, then what the source produces (a request line followed by a restore stream).
    case dataThenStream(Data, any StreamSource)
}

/// Bytes produced on demand for a command's stdin.
public protocol StreamSource: Sendable {
    /// Hands over every chunk in order; stops early when `write` returns false (the reader left).
    func pump(_ write: (UnsafeRawBufferPointer) -> Bool)
    /// The command ended: a source still waiting for something to write must return from `pump`.
    func cancel()
}

extension StreamSource {
    public func cancel() {}
}

/// How a remote command ended.
public struct CommandResult: Sendable {
    public var status: Int32
    /// The last lines of stderr, for messages.
    public var stderr: String
}

/// Where commands run: a host over OpenSSH, or this machine. Orchestration never knows which.
public protocol Transport: Sendable {
    var host: Host { get }
    /// Runs the line on the host; every stdout line goes to `onLine` as it arrives.
    func run(_ line: ShellLine, input: TransportInput, onLine: @escaping @Sendable (String) -> Void) async -> CommandResult
    /// Runs the line with stdout handed over as raw chunks, then nil at its end (binary streams).
    func stream(_ line: ShellLine, input: TransportInput,
                onBytes: @escaping @Sendable (UnsafeRawBufferPointer?) -> Void) async -> CommandResult
    /// Ends shared connections.
    func close() async
}

/// A shell line built only from `RemoteCommand`s: the one way to get text onto a remote shell.
public struct ShellLine: Sendable, Equatable, CustomStringConvertible {
    public let text: String

    public init(_ command: RemoteCommand) {
        text = command.rendered
    }

    /// Commands run one after another, each only if the one before succeeded.
    public init(all commands: [RemoteCommand]) {
        text = commands.map(\.rendered).joined(separator: " && ")
    }

    /// This line, and when it fails, `cleanup` and a failing exit status (what a failed step
    /// leaves, such as a partial upload, is removed).
    public func otherwise(_ cleanup: RemoteCommand) -> ShellLine {
        ShellLine(text: "\(text) || { \(cleanup.rendered); exit 1; }")
    }

    private init(text: String) {
        self.text = text
    }

    /// Lines run one after another, whatever each one's status.
    public init(each lines: [ShellLine]) {
        text = lines.map(\.text).joined(separator: "; ")
    }

    public var description: String { text }
}
