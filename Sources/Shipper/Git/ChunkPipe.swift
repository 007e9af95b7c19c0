import Foundation

/// A bounded hand-off of byte chunks from one thread to another: the bundle writer reads Git
/// objects and builds tar on one core while the other compresses, hashes and writes.
final class ChunkPipe: @unchecked Sendable {
    private let condition = NSCondition()
    private var chunks: [[UInt8]] = []
    private var closed = false
    private var consumerDone = false
    private var consumerError: ShipError?
    private let capacity: Int

    init(capacity: Int = 4) {
        self.capacity = capacity
    }

    /// Hands a chunk over; waits while the pipe is full. Throws the consumer's error, if it failed.
    func put(_ chunk: [UInt8]) throws(ShipError) {
        condition.lock()
        defer { condition.unlock() }
        while chunks.count >= capacity && consumerError == nil { condition.wait() }
        if let consumerError { throw consumerError }
        chunks.append(chunk)
        condition.broadcast()
    }

    /// The next chunk, or nil once the producer closed the pipe and every chunk was taken.
    func take() -> [UInt8]? {
        condition.lock()
        defer { condition.unlock() }
        while chunks.isEmpty && !closed { condition.wait() }
        if chunks.isEmpty { return nil }
        let chunk = chunks.removeFirst()
        condition.broadcast()
        return chunk
    }

    /// No more chunks will come.
    func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
    }

    /// The consumer stopped, having failed with `error` or not.
    func consumerFinished(error: ShipError?) {
        condition.lock()
        consumerDone = true
        consumerError = error
        chunks.removeAll()
        condition.broadcast()
        condition.unlock()
    }

    /// Waits for the consumer to finish; throws its error.
    func waitForConsumer() throws(ShipError) {
        condition.lock()
        defer { condition.unlock() }
        while !consumerDone { condition.wait() }
        if let consumerError { throw consumerError }
    }
}
