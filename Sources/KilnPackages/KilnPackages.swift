// KilnPackages
