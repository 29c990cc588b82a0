import Testing
@testable import KilnPackages
