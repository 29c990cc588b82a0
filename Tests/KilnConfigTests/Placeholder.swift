import Testing
@testable import KilnConfig
