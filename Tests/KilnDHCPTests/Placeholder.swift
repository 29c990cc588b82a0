import Testing
@testable import KilnDHCP
