import Testing
@testable import KilnNetlink
