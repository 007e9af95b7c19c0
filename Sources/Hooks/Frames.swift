/// Framing for the binary streams of backup and restore operations, where dump bytes and JSON
/// events share one pipe. A frame is a tag byte, a 4-byte big-endian length and the payload.
///
/// `backup-db` and `backup-assets` answer with `data` frames and end with one `event` frame (the
/// result). `restore-db` and `restore-assets` read `data` frames after the request line and an
/// `end` frame once the whole backup was sent: input that stops without it was cut short.
public enum Frame {
    public static let data: UInt8 = 0x44   // D
    public static let event: UInt8 = 0x4A  // J
    public static let end: UInt8 = 0x5A    // Z
    /// The most payload a frame carries.
    public static let maximumPayload = 1 << 20

    public static func header(tag: UInt8, length: Int) -> [UInt8] {
        precondition(length >= 0 && length <= maximumPayload)
        let value = UInt32(length)
        return [tag, UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
    }

    public struct DecodingError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Turns a byte stream, fed in chunks of any size, back into frames.
    public struct Decoder {
        private var buffer: [UInt8] = []
        private var start = 0

        public init() {}

        /// True when no partial frame is pending: the stream ended on a frame boundary.
        public var isAtBoundary: Bool { buffer.count == start }

        public mutating func feed(_ bytes: UnsafeRawBufferPointer,
                                  onFrame: (UInt8, UnsafeRawBufferPointer) throws -> Void) throws {
            buffer.append(contentsOf: bytes)
            while buffer.count - start >= 5 {
                let tag = buffer[start]
                guard tag == Frame.data || tag == Frame.event || tag == Frame.end else {
                    throw DecodingError(description: "not a frame: tag byte \(tag)")
                }
                let length = Int(buffer[start + 1]) << 24 | Int(buffer[start + 2]) << 16 | Int(buffer[start + 3]) << 8 | Int(buffer[start + 4])
                guard length <= Frame.maximumPayload else { throw DecodingError(description: "frame of \(length) bytes") }
                guard buffer.count - start >= 5 + length else { break }
                try buffer.withUnsafeBytes { raw in
                    try onFrame(tag, UnsafeRawBufferPointer(rebasing: raw[(start + 5)..<(start + 5 + length)]))
                }
                start += 5 + length
            }
            if start > 0 && (start == buffer.count || start > 1 << 20) {
                buffer.removeSubrange(0..<start)
                start = 0
            }
        }
    }
}
