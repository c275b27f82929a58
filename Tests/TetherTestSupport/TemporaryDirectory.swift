import Foundation
import XCTest

/// A fresh directory under the system temporary directory, removed by the test's teardown.
public func makeTemporaryDirectory(_ test: XCTestCase, _ label: String = "tether-test") throws -> String {
    let path = NSTemporaryDirectory() + "\(label)-\(getpid())-\(UUID().uuidString.prefix(8))"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
    return path
}
