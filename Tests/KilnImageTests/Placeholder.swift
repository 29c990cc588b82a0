import Testing
@testable import KilnImage
