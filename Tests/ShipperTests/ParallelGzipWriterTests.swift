import Foundation
import Testing
@testable import Shipper

@Suite("parallel gzip")
struct ParallelGzipWriterTests {
    /// Mixed compressible and incompressible input spanning several blocks, with a short last block.
    static func sampleInput() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        var bytes: [UInt8] = []
        let text = Array(String(repeating: "<?php echo 'hello world'; ?>\n", count: 40_000).utf8)
        bytes += text
        bytes += (0..<(700 * 1024)).map { _ in UInt8.random(in: 0...255, using: &generator) }
        bytes += text.prefix(12345)
        return bytes
    }

    func compress(_ input: [UInt8], workers: Int, in dir: TemporaryDirectory, name: String) throws -> (String, String) {
        let path = dir.file(name)
        let writer = try ParallelGzipWriter(creating: path, workers: workers)
        var offset = 0
        while offset < input.count {
            let end = min(offset + ParallelGzipWriter.blockSize, input.count)
            try writer.write(Array(input[offset..<end]))
            offset = end
        }
        return (path, try writer.finish())
    }

    @Test("the output is a valid gzip file and does not depend on the number of threads")
    func deterministicAcrossWorkerCounts() throws {
        let input = Self.sampleInput()
        let dir = try TemporaryDirectory()
        let (one, oneSum) = try compress(input, workers: 1, in: dir, name: "one.gz")
        let (four, fourSum) = try compress(input, workers: 4, in: dir, name: "four.gz")
        #expect(oneSum == fourSum)
        #expect(try Data(contentsOf: URL(fileURLWithPath: one)) == Data(contentsOf: URL(fileURLWithPath: four)))
        let check = try run("gzip", ["-t", one])
        #expect(check.status == 0, "\(check.stderr)")
        let roundTrip = try run("/bin/sh", ["-c", "gzip -dc '\(one)' | sha256sum"])
        let data = Data(input)
        try data.write(to: URL(fileURLWithPath: dir.file("input")))
        let inputSum = try run("/bin/sh", ["-c", "sha256sum < '\(dir.file("input"))'"])
        #expect(roundTrip.stdout == inputSum.stdout)
    }

    @Test("empty input gives a valid empty gzip file")
    func emptyInput() throws {
        let dir = try TemporaryDirectory()
        let (path, _) = try compress([], workers: 2, in: dir, name: "empty.gz")
        let result = try run("/bin/sh", ["-c", "gzip -dc '\(path)' | wc -c"])
        #expect(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "0")
    }
}
