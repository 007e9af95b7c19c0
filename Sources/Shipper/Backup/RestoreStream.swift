import CZlib
import Foundation
import Hooks

/// A stored backup, decrypted (when encrypted) and decompressed on the fly and framed for the
/// agent's restore operations: data frames, then the end frame only when the whole file opened
/// and inflated cleanly. Input that stops without the end frame makes the agent stop the restore
/// program rather than feed it a part.
public final class RestoreStream: StreamSource, @unchecked Sendable {
    let path: String
    let keys: [BackupKey]
    private let lock = NSLock()
    private var _failure: String?

    /// `keys`: those that may open an encrypted backup, the one its manifest names first.
    public init(path: String, keys: [BackupKey] = []) {
        self.path = path
        self.keys = keys
    }

    /// Why the stream stopped early, if it did for a reason of its own (not the reader leaving).
    public var failure: String? { lock.withLock { _failure } }

    public func pump(_ write: (UnsafeRawBufferPointer) -> Bool) {
        var frame = [UInt8](repeating: 0, count: 5 + Frame.maximumPayload)
        let problem = BackupReader.read(path: path, keys: keys) { chunk in
            var offset = 0
            while offset < chunk.count {
                let take = min(Frame.maximumPayload, chunk.count - offset)
                frame.replaceSubrange(0..<5, with: Frame.header(tag: Frame.data, length: take))
                frame.withUnsafeMutableBytes { $0.baseAddress!.advanced(by: 5).copyMemory(from: chunk.baseAddress!.advanced(by: offset), byteCount: take) }
                guard frame.withUnsafeBytes({ write(UnsafeRawBufferPointer(rebasing: $0[0..<(5 + take)])) }) else { return false }
                offset += take
            }
            return true
        }
        switch problem {
        case .readerLeft: return
        case .failed(let message): lock.withLock { _failure = message }
        case nil: _ = Frame.header(tag: Frame.end, length: 0).withUnsafeBytes { write($0) }
        }
    }
}

/// Reads a stored backup back into the stream it was made from: decrypts it (the BackupCipher
/// format, when the file has its header) and inflates the gzip stream.
enum BackupReader {
    enum Stop: Equatable {
        /// `deliver` returned false.
        case readerLeft
        case failed(String)

        init(_ stop: GzipInflater.Stop, path: String) {
            switch stop {
            case .readerLeft: self = .readerLeft
            case .corrupt(let code): self = .failed("the backup does not decompress (zlib error \(code)): \(path)")
            }
        }
    }

    /// Hands every decompressed chunk to `deliver`; nil when the whole file was read cleanly.
    static func read(path: String, keys: [BackupKey], deliver: (UnsafeRawBufferPointer) -> Bool) -> Stop? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return .failed("cannot read \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var prefix = [UInt8](repeating: 0, count: BackupCipher.magic.count)
        let peeked = pread(fd, &prefix, prefix.count, 0)
        let encrypted = peeked == prefix.count && BackupCipher.isEncrypted(prefix)
        if encrypted && keys.isEmpty {
            return .failed("\(path) is encrypted and no key is configured (backup.encryption)")
        }
        guard let inflater = GzipInflater() else { return .failed("cannot start zlib") }
        let opener = encrypted ? StreamOpener(keys: keys, name: (path as NSString).lastPathComponent) : nil
        var stop: Stop?
        let readOK = POSIXIO.readToEnd(fd, chunkSize: 256 << 10) { chunk in
            guard stop == nil else { return }
            if let opener {
                do throws(ShipError) {
                    let more = try opener.feed(chunk) { plaintext in
                        plaintext.withUnsafeBytes { bytes in
                            if let problem = inflater.inflate(bytes, deliver) { stop = Stop(problem, path: path) }
                        }
                        return stop == nil
                    }
                    if !more && stop == nil { stop = .readerLeft }
                } catch {
                    stop = .failed(error.description)
                }
            } else if let problem = inflater.inflate(chunk, deliver) {
                stop = Stop(problem, path: path)
            }
        }
        if let stop { return stop }
        guard readOK else { return .failed("cannot read \(path): \(String(cString: strerror(errno)))") }
        if let opener {
            do throws(ShipError) { try opener.finish() } catch { return .failed(error.description) }
        }
        guard inflater.ended else { return .failed("the backup is truncated: \(path)") }
        return nil
    }
}
