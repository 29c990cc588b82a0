// KilnDHCP
