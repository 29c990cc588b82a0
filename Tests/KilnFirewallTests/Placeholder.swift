import Testing
@testable import KilnFirewall
