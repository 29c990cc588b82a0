// KilnSystem
