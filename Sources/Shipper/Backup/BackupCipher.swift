import Crypto
import Foundation

/// A backup encryption key: 32 random bytes, written as base64 in an environment variable or a
/// key file that ship.yml names (never in ship.yml itself). Its fingerprint, recorded in each
/// manifest, tells which key a backup needs without revealing anything of the key.
public struct BackupKey: Sendable {
    let key: SymmetricKey
    /// Hex of the first 8 bytes of SHA-256("ship-backup-key-v1" ‖ key).
    public let fingerprint: String
    /// Where it came from, for messages: `$NAME` or the file's path.
    public let origin: String

    public init(base64 text: String, origin: String) throws(ShipError) {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard let bytes = Data(base64Encoded: trimmed), bytes.count == 32 else {
            throw ShipError.usage("the backup key in \(origin) is not 32 bytes written as base64",
                                  hint: "make one with `head -c 32 /dev/urandom | base64` (see docs/backups.md)")
        }
        key = SymmetricKey(data: bytes)
        var hasher = SHA256()
        hasher.update(data: Data("ship-backup-key-v1".utf8))
        hasher.update(data: bytes)
        fingerprint = hasher.finalize().prefix(8).map { String(format: "%02x", $0) }.joined()
        self.origin = origin
    }

    /// How messages name where a key comes from.
    static func origin(of source: BackupConfig.KeySource) -> String {
        switch source {
        case .environment(let name): "$" + name
        case .file(let path): path
        }
    }

    /// The key a `key_env`/`key_file` setting names; a missing or malformed key is an error
    /// (encryption fails closed: nothing is dumped or restored without it).
    public static func load(_ source: BackupConfig.KeySource, environment: [String: String]) throws(ShipError) -> BackupKey {
        switch source {
        case .environment(let name):
            guard let value = environment[name], !value.isEmpty else {
                throw ShipError.usage("\(name) is not set: backup.encryption.key_env names it for the backup key",
                                      hint: "export \(name) where ship runs (in CI, from a secret); without the key nothing is backed up or restored")
            }
            return try BackupKey(base64: value, origin: "$" + name)
        case .file(let path):
            guard let data = FileManager.default.contents(atPath: path) else {
                throw ShipError.usage("cannot read the backup key file \(path)",
                                      hint: "create it with `head -c 32 /dev/urandom | base64 > \(path) && chmod 600 \(path)`")
            }
            return try BackupKey(base64: String(decoding: data, as: UTF8.self), origin: path)
        }
    }
}

/// The encrypted backup format (docs/backups.md): the compressed stream cut into chunks, each
/// sealed with AES-256-GCM under a key derived for this file alone.
///
///     header  "SHIPENC1" (8 bytes) ‖ salt (32 random bytes)
///     chunk   length of the sealed chunk (4 bytes, big endian) ‖ ciphertext ‖ tag (16 bytes)
///
/// File key = HKDF-SHA256(backup key, salt, "ship backup v1"). Chunk n (from 0) uses the nonce
/// 0x00000000 ‖ n (8 bytes, big endian), so every nonce is fresh and a chunk decrypts only in its
/// place; its additional data is one byte, 1 for the last chunk and 0 otherwise, so a stream cut
/// after any chunk is told from a whole one. Reordered, dropped, truncated or flipped bytes fail
/// authentication.
enum BackupCipher {
    static let magic = Array("SHIPENC1".utf8)
    static let saltSize = 32
    static let headerSize = 8 + 32
    static let chunkSize = 1 << 20
    static let tagSize = 16

    static func fileKey(_ key: BackupKey, salt: [UInt8]) -> SymmetricKey {
        HKDF<SHA256>.deriveKey(inputKeyMaterial: key.key, salt: salt, info: Array("ship backup v1".utf8), outputByteCount: 32)
    }

    static func nonce(_ counter: UInt64) -> AES.GCM.Nonce {
        var bytes = [UInt8](repeating: 0, count: 12)
        for index in 0..<8 { bytes[4 + index] = UInt8(truncatingIfNeeded: counter >> (8 * UInt64(7 - index))) }
        return try! AES.GCM.Nonce(data: bytes) // 12 bytes: always a valid nonce
    }

    /// Whether a stored file starts like an encrypted backup.
    static func isEncrypted(_ prefix: [UInt8]) -> Bool {
        prefix.count >= magic.count && Array(prefix.prefix(magic.count)) == magic
    }
}

/// Seals a byte stream into the encrypted format, chunk by chunk, as it is produced.
final class StreamSealer {
    private let key: SymmetricKey
    private var counter: UInt64 = 0
    private var pending: [UInt8] = []
    let header: [UInt8]

    init(_ backupKey: BackupKey) {
        var salt = [UInt8](repeating: 0, count: BackupCipher.saltSize)
        var generator = SystemRandomNumberGenerator()
        for index in salt.indices { salt[index] = UInt8.random(in: 0...255, using: &generator) }
        key = BackupCipher.fileKey(backupKey, salt: salt)
        header = BackupCipher.magic + salt
        pending.reserveCapacity(BackupCipher.chunkSize)
    }

    /// Adds bytes; returns the sealed chunks that are complete.
    func add(_ bytes: [UInt8]) throws(ShipError) -> [UInt8] {
        var out: [UInt8] = []
        var offset = 0
        while offset < bytes.count {
            let take = min(BackupCipher.chunkSize - pending.count, bytes.count - offset)
            pending.append(contentsOf: bytes[offset..<(offset + take)])
            offset += take
            if pending.count == BackupCipher.chunkSize {
                out += try seal(last: false)
            }
        }
        return out
    }

    /// The last chunk (possibly empty), marked as the end.
    func finish() throws(ShipError) -> [UInt8] {
        try seal(last: true)
    }

    private func seal(last: Bool) throws(ShipError) -> [UInt8] {
        let box: AES.GCM.SealedBox
        do {
            box = try AES.GCM.seal(pending, using: key, nonce: BackupCipher.nonce(counter), authenticating: [last ? 1 : 0])
        } catch {
            throw ShipError("cannot encrypt the backup: \(error)")
        }
        counter += 1
        pending.removeAll(keepingCapacity: true)
        let length = box.ciphertext.count + box.tag.count
        var out: [UInt8] = [UInt8(truncatingIfNeeded: length >> 24), UInt8(truncatingIfNeeded: length >> 16),
                            UInt8(truncatingIfNeeded: length >> 8), UInt8(truncatingIfNeeded: length)]
        out.reserveCapacity(4 + length)
        out += box.ciphertext
        out += box.tag
        return out
    }
}

/// Opens the encrypted format as it is read, handing over plaintext chunk by chunk; anything
/// wrong (another key, a changed, missing, extra or reordered byte) is an error naming the chunk.
final class StreamOpener {
    private let keys: [BackupKey]
    private var key: SymmetricKey?
    private var counter: UInt64 = 0
    private var buffer: [UInt8] = []
    private(set) var ended = false
    private let name: String

    /// `keys`: the configured key and earlier ones; the manifest's fingerprint picks one.
    init(keys: [BackupKey], name: String) {
        self.keys = keys
        self.name = name
    }

    func feed(_ bytes: UnsafeRawBufferPointer, _ deliver: ([UInt8]) -> Bool) throws(ShipError) -> Bool {
        buffer.append(contentsOf: bytes)
        if key == nil {
            guard buffer.count >= BackupCipher.headerSize else { return true }
            guard BackupCipher.isEncrypted(buffer) else { throw ShipError("\(name) is not an encrypted backup (no SHIPENC1 header)") }
            // Which key is tried first matters little: only the right one authenticates chunk 0.
            let salt = Array(buffer[8..<BackupCipher.headerSize])
            buffer.removeFirst(BackupCipher.headerSize)
            key = BackupCipher.fileKey(keys[0], salt: salt)
            candidates = keys.dropFirst().map { BackupCipher.fileKey($0, salt: salt) }
        }
        var consumed = 0
        defer { if consumed > 0 { buffer.removeFirst(consumed) } }
        while buffer.count - consumed >= 4 {
            let length = buffer[consumed..<(consumed + 4)].reduce(0) { $0 << 8 | Int($1) }
            guard length >= BackupCipher.tagSize, length <= BackupCipher.chunkSize + BackupCipher.tagSize else {
                throw ShipError("\(name) is damaged: chunk \(counter) has an impossible length \(length)")
            }
            guard buffer.count - consumed >= 4 + length else { break }
            if ended { throw ShipError("\(name) is damaged: data follows its last chunk") }
            let start = consumed + 4
            let sealed = buffer[start..<(start + length)]
            consumed = start + length
            let plaintext = try open(sealed)
            if !deliver(plaintext) { return false }
        }
        return true
    }

    /// Throws unless the last chunk arrived and nothing followed.
    func finish() throws(ShipError) {
        guard key != nil else { throw ShipError("\(name) is truncated: no encryption header") }
        guard ended else { throw ShipError("\(name) is truncated: its last chunk is missing (\(counter) chunks read)") }
        guard buffer.isEmpty else { throw ShipError("\(name) is damaged: \(buffer.count) bytes follow its last chunk") }
    }

    private var candidates: [SymmetricKey] = []

    private func open(_ sealed: ArraySlice<UInt8>) throws(ShipError) -> [UInt8] {
        let split = sealed.endIndex - BackupCipher.tagSize
        for last in [false, true] {
            let nonce = BackupCipher.nonce(counter)
            for candidate in [key!] + (counter == 0 ? candidates : []) {
                guard let box = try? AES.GCM.SealedBox(nonce: nonce, ciphertext: sealed[sealed.startIndex..<split], tag: sealed[split...]),
                      let plaintext = try? AES.GCM.open(box, using: candidate, authenticating: [last ? 1 : 0]) else { continue }
                key = candidate
                candidates = []
                counter += 1
                ended = last
                return Array(plaintext)
            }
        }
        if counter == 0 {
            throw ShipError("\(name) does not decrypt with the configured key\(keys.count > 1 ? "s" : "") (\(keys.map(\.origin).joined(separator: ", "))), or its first chunk is damaged")
        }
        throw ShipError("\(name) is damaged: chunk \(counter) fails authentication (changed, reordered or cut bytes)")
    }
}
