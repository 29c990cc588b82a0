// KilnVM
