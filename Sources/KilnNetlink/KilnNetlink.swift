// KilnNetlink
