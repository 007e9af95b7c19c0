import Foundation
import Hooks

extension FileHandle {
    /// Writes all of `data`, or drops it when the reader is gone (`ship logs | head`): a closed
    /// pipe never crashes ship (FileHandle.write would) nor stops the work in progress, such as
    /// a deployment whose output nobody reads any more.
    public func writeQuietly(_ data: Data) {
        _ = POSIXIO.writeAll(fileDescriptor, [UInt8](data))
    }
}
