/// The PCI slots of Kiln's virtual machines, shared by the QEMU command line and manifest validation so an
/// appliance with more NICs than fit is refused at its manifest line, not at boot.
///
/// Slot 0 is the host bridge, 1 the PIIX3/VGA and 0x1f the ICH9 LPC; NIC *n* sits at 0x03+n, virtio disks from
/// 0x10, so a NIC never moves when a disk is attached.
public enum PCISlots {
    /// Lowest and highest slot a device may take.
    public static let usable = 0x02...0x1e
    public static let firstNIC = 0x03
    public static let firstDisk = 0x10

    /// How many NICs fit in their own slots: below the disks when a disk is attached, up to the last slot when not.
    public static func nicCapacity(withDisk: Bool) -> Int {
        (withDisk ? firstDisk : usable.upperBound + 1) - firstNIC
    }
}
