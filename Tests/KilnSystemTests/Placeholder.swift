import Testing
@testable import KilnSystem
