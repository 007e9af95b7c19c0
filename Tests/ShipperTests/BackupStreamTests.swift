import Foundation
import Hooks
import Testing
@testable import Shipper

@Suite("backup streams: frames, restore input, S3 requests")
struct BackupStreamTests {
    /// Frames fed back in arbitrary chunk sizes.
    func decode(_ bytes: [UInt8], chunk: Int) throws -> [(UInt8, [UInt8])] {
        var decoder = Frame.Decoder()
        var frames: [(UInt8, [UInt8])] = []
        var offset = 0
        while offset < bytes.count {
            let end = min(bytes.count, offset + chunk)
            try bytes[offset..<end].withUnsafeBytes { raw in
                try decoder.feed(raw) { tag, payload in frames.append((tag, Array(payload))) }
            }
            offset = end
        }
        #expect(decoder.isAtBoundary)
        return frames
    }

    @Test("frames survive any split of the stream; a stray byte is an error", arguments: [1, 3, 7, 4096])
    func frames(chunk: Int) throws {
        let payload = (0..<5000).map { UInt8($0 % 251) }
        let stream = Frame.header(tag: Frame.data, length: payload.count) + payload
            + Frame.header(tag: Frame.event, length: 2) + Array("{}".utf8) + Frame.header(tag: Frame.end, length: 0)
        let frames = try decode(stream, chunk: chunk)
        #expect(frames.map(\.0) == [Frame.data, Frame.event, Frame.end])
        #expect(frames[0].1 == payload && frames[1].1 == Array("{}".utf8) && frames[2].1.isEmpty)
        #expect(throws: Frame.DecodingError.self) { _ = try decode([0x41, 0, 0, 0, 0], chunk: chunk) }
    }

    func gzip(_ text: [UInt8], into path: String) throws {
        let writer = try ParallelGzipWriter(creating: path, mode: 0o600)
        var offset = 0
        while offset < text.count {
            let end = min(text.count, offset + ParallelGzipWriter.blockSize)
            try writer.write(Array(text[offset..<end]))
            offset = end
        }
        _ = try writer.finish()
    }

    func pumped(_ stream: RestoreStream) throws -> [(UInt8, [UInt8])] {
        var bytes: [UInt8] = []
        stream.pump { bytes += $0; return true }
        return try decode(bytes, chunk: 1 << 16)
    }

    @Test("a stored backup goes to the agent decompressed, in frames, with the end frame only when whole")
    func restoreStream() throws {
        let directory = try TemporaryDirectory("ship-restore-stream")
        let original: [UInt8] = (0..<3_500_000).map { (index: Int) -> UInt8 in UInt8(truncatingIfNeeded: index * 7 + index / 1000) }
        try gzip(original, into: directory.file("whole.gz"))
        let frames = try pumped(RestoreStream(path: directory.file("whole.gz")))
        #expect(frames.last?.0 == Frame.end)
        #expect(frames.dropLast().allSatisfy { $0.0 == Frame.data && $0.1.count <= Frame.maximumPayload })
        #expect(frames.dropLast().flatMap(\.1) == original)

        // Cut short: no end frame, and the stream says why.
        let whole = try Data(contentsOf: URL(fileURLWithPath: directory.file("whole.gz")))
        try whole.prefix(whole.count / 2).write(to: URL(fileURLWithPath: directory.file("half.gz")))
        let half = RestoreStream(path: directory.file("half.gz"))
        #expect(try pumped(half).allSatisfy { $0.0 == Frame.data })
        #expect(half.failure?.contains("truncated") == true)

        // Not gzip at all.
        try directory.write("plain.gz", "this is not gzip\n")
        let plain = RestoreStream(path: directory.file("plain.gz"))
        #expect(try pumped(plain).isEmpty)
        #expect(plain.failure != nil)

        // The reader going away stops the stream quietly.
        let early = RestoreStream(path: directory.file("whole.gz"))
        var calls = 0
        early.pump { _ in calls += 1; return false }
        #expect(calls == 1 && early.failure == nil)
    }

    @Test("S3 URLs are path-style with a canonical query: sorted, valued, strictly percent-encoded")
    func s3URLs() {
        let client = S3Client(endpoint: "http://127.0.0.1:9000", bucket: "ship-backups", region: "us-east-1",
                              accessKey: "a", secretKey: "b", sessionToken: nil)
        #expect(client.url(key: "shop/prod/db-1.dump.gz", query: []) == "http://127.0.0.1:9000/ship-backups/shop/prod/db-1.dump.gz")
        #expect(client.url(key: "a b/c=d+e", query: []) == "http://127.0.0.1:9000/ship-backups/a%20b/c%3Dd%2Be")
        #expect(client.url(key: "k", query: [("uploads", "")]) == "http://127.0.0.1:9000/ship-backups/k?uploads=")
        #expect(client.url(key: "k", query: [("uploadId", "x/y=="), ("partNumber", "2")])
                == "http://127.0.0.1:9000/ship-backups/k?partNumber=2&uploadId=x%2Fy%3D%3D")
        #expect(client.url(key: "", query: [("prefix", "shop/prod/"), ("list-type", "2")])
                == "http://127.0.0.1:9000/ship-backups/?list-type=2&prefix=shop%2Fprod%2F")
    }

    @Test("S3 and AWS query answers are read as element trees")
    func xml() {
        let listing = Data("""
            <?xml version="1.0" encoding="UTF-8"?>
            <ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><IsTruncated>true</IsTruncated>
            <Contents><Key>p/a.json</Key><Size>12</Size></Contents><Contents><Key>p/a &amp; b.gz</Key><Size>34</Size></Contents>
            <NextContinuationToken>tok</NextContinuationToken></ListBucketResult>
            """.utf8)
        let root = ParsedXML(listing)
        #expect(root.name == "ListBucketResult")
        #expect(root.all("Contents").map { $0.value("Key") } == ["p/a.json", "p/a & b.gz"])
        #expect(root.all("Contents").map { $0.value("Size") } == ["12", "34"])
        #expect(root.value("NextContinuationToken") == "tok" && root.value("IsTruncated") == "true")
        #expect(root.value("Nothing") == nil)
        let error = ParsedXML(Data("<Error><Code>NoSuchBucket</Code><Message> spaced </Message></Error>".utf8))
        #expect(error.name == "Error" && error.value("Code") == "NoSuchBucket" && error.value("Message") == " spaced ")
        #expect(ParsedXML(Data("not xml".utf8)).name == "")
        // AWS query answers: nested lists, the first element of a name anywhere below.
        let ec2 = ParsedXML(Data("""
            <DescribeInstancesResponse><reservationSet><item><instancesSet><item><instanceId>i-1</instanceId></item>
            <item><instanceId>i-2</instanceId><ipAddress>1.2.3.4</ipAddress></item></instancesSet></item></reservationSet>
            <Errors><Error><Code>X</Code></Error></Errors></DescribeInstancesResponse>
            """.utf8))
        #expect(ec2.all("reservationSet/item/instancesSet/item").map { $0.value("ipAddress") } == [nil, "1.2.3.4"])
        #expect(ec2.descendant("Code")?.text == "X")
    }
}
