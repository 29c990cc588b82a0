// KilnTest
