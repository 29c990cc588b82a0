// KilnFirewall
