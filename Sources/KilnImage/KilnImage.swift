// KilnImage
