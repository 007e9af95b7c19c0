import Foundation
import Testing
@testable import Shipper

/// `artifacts:`: its settings, and the presigned links hosts fetch bundles with.
@Suite("artifact store settings and links")
struct ArtifactsTests {
    static let moment = Date(timeIntervalSince1970: 1_369_353_600) // 2013-05-24T00:00:00Z

    @Test("a presigned GET is AWS's own documented example, byte for byte")
    func documentedExample() {
        let link = S3Client.presign(method: "GET", path: "/test.txt", host: "examplebucket.s3.amazonaws.com", region: "us-east-1",
                                    accessKey: "AKIAIOSFODNN7EXAMPLE", secretKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                                    sessionToken: nil, lifetime: 86400, now: Self.moment)
        #expect(link == "/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
            + "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
            + "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404")
    }

    @Test("path style on an endpoint with a port, a key that needs encoding and a session token: botocore's link")
    func pathStyleWithToken() {
        // botocore's S3SigV4QueryAuth gave this signature for the same request, time and
        // credentials (its link lists the same parameters, the token after SignedHeaders; ship's
        // are in the canonical order).
        let client = S3Client(endpoint: "http://127.0.0.1:5000", bucket: "ship-artifacts", region: "eu-west-1", accessKey: "AKID",
                              secretKey: "SECRET/KEY+x", sessionToken: "TOKEN/with+chars=")
        #expect(client.presignedGET(key: "fleet/bundles/shop/ab c.tar.gz", lifetime: 600, now: Self.moment)
            == "http://127.0.0.1:5000/ship-artifacts/fleet/bundles/shop/ab%20c.tar.gz?X-Amz-Algorithm=AWS4-HMAC-SHA256"
            + "&X-Amz-Credential=AKID%2F20130524%2Feu-west-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=600"
            + "&X-Amz-Security-Token=TOKEN%2Fwith%2Bchars%3D&X-Amz-SignedHeaders=host"
            + "&X-Amz-Signature=69a97c85bb83cd894fe4c57312cb47f9baec3b48727fc0ebee8b05efdc5226da")
    }

    @Test("a link never outlives the credentials that signed it")
    func lifetimeCapped() throws {
        let settings = ArtifactsConfig(bucket: "fleet", prefix: "", region: "us-east-1", endpoint: "http://127.0.0.1:9", linkLifetime: 600)
        let credentials = ["AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b", "AWS_CREDENTIAL_EXPIRATION": "2013-05-24T00:02:00Z"]
        let store = try ArtifactStore(settings, app: "shop", environment: credentials)
        #expect(store.key(String(repeating: "a", count: 64)) == "bundles/shop/" + String(repeating: "a", count: 64) + ".tar.gz")
        #expect(store.link(for: "abc", now: Self.moment).contains("X-Amz-Expires=120&"))
        let later = try ArtifactStore(settings, app: "shop", environment: ["AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"])
        #expect(later.link(for: "abc", now: Self.moment).contains("X-Amz-Expires=600&"))
        #expect(throws: ShipError.self) { try ArtifactStore(settings, app: "shop", environment: [:]) }
    }

    @Test("artifacts: settings, with their defaults; mistakes name file, line and key")
    func settings() throws {
        let yaml = """
            app: shop
            deploy_to: /srv/shop
            environments:
              prod:
                hosts: [web1]
                artifacts: { store: s3://fleet-artifacts/ship/, endpoint: "http://127.0.0.1:9000/", link_lifetime: 300 }
              staging:
                hosts: [web1]

            """
        let config = try ConfigLoader.decode(yaml: yaml, file: "/work/app/ship.yml", displayName: "ship.yml")
        #expect(try config.environment(named: "prod").artifacts
            == ArtifactsConfig(bucket: "fleet-artifacts", prefix: "ship", region: "us-east-1", endpoint: "http://127.0.0.1:9000", linkLifetime: 300))
        #expect(try config.environment(named: "staging").artifacts == nil)
        #expect(try config.environment(named: "prod").lockInStore == false)
        // lock: store needs the store.
        let locked = yaml.replacingOccurrences(of: "link_lifetime: 300 }", with: "link_lifetime: 300 }\n    lock: store")
        #expect(try ConfigLoader.decode(yaml: locked, file: "/work/app/ship.yml", displayName: "ship.yml").environment(named: "prod").lockInStore)
        for (bad, expected) in [
            ("  staging:\n    hosts: [web1]\n    lock: store", "ship.yml:9: environments.staging.lock: lock: store needs artifacts.store"),
            ("  staging:\n    hosts: [web1]\n    lock: s3", "ship.yml:9: environments.staging.lock: expected hosts or store, found"),
        ] {
            let text = yaml.replacingOccurrences(of: "  staging:\n    hosts: [web1]", with: bad)
            do {
                _ = try ConfigLoader.decode(yaml: text, file: "/work/app/ship.yml", displayName: "ship.yml")
                Issue.record("accepted: \(bad)")
            } catch {
                #expect(error.description.hasPrefix(expected), "\(error.description)")
            }
        }
        for (bad, expected) in [
            ("{ store: /var/artifacts }", "ship.yml:6: environments.prod.artifacts.store: expected s3://bucket/prefix, found"),
            ("{ store: s3://B/x }", "ship.yml:6: environments.prod.artifacts.store: expected s3://bucket/prefix with a valid bucket name"),
            ("{ store: s3://fleet, link_lifetime: 5 }", "ship.yml:6: environments.prod.artifacts.link_lifetime: expected seconds from 60 to 43200"),
            ("{ store: s3://fleet, bucket: x }", "ship.yml:6: environments.prod.artifacts"),
        ] {
            let text = yaml.replacingOccurrences(of: "{ store: s3://fleet-artifacts/ship/, endpoint: \"http://127.0.0.1:9000/\", link_lifetime: 300 }", with: bad)
            #expect(throws: ShipError.self) { try ConfigLoader.decode(yaml: text, file: "/work/app/ship.yml", displayName: "ship.yml") }
            do {
                _ = try ConfigLoader.decode(yaml: text, file: "/work/app/ship.yml", displayName: "ship.yml")
            } catch {
                #expect(error.description.hasPrefix(expected), "\(error.description)")
            }
        }
    }
}
