// KilnConfig
