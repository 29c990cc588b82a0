import Testing
@testable import KilnManifest
