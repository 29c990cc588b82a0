/// The Xen host role's runtime settings (`/etc/kiln/xen.json`), read by `kiln-init service xen` in dom0: where
/// Debian's Xen tools are, where guest consoles are logged, and how long the toolstack may take to answer.
public struct XenHostConfig: Codable, Sendable, Equatable {
    public static let defaultPath = "/etc/kiln/xen.json"
    /// The toolstack programs Kiln runs from the tools directory, in the image with their libraries.
    public static let programs = ["xenstored", "xenconsoled", "xen-init-dom0", "xl"]
    /// The xenstored socket, which `xl` and the vif hotplug step talk to.
    public static let xenstoreSocket = "/run/xenstored/socket"

    /// `/usr/lib/xen-<version>/bin` of the tools package.
    public var toolsDirectory: String
    /// xenconsoled writes each guest's console to `<directory>/guest-<domain>.log`, where `kiln deploy xen`
    /// reads READY.
    public var consoleLogDirectory: String

    public init(toolsDirectory: String, consoleLogDirectory: String = "/var/log/xen/console") {
        self.toolsDirectory = toolsDirectory; self.consoleLogDirectory = consoleLogDirectory
    }

    public func program(_ name: String) -> String { toolsDirectory + "/" + name }

    /// `xl.conf`: vifs are attached to their bridge by kiln-init itself (libxl runs it as the hotplug script
    /// with `XENBUS_PATH` and `vif` set), since the image carries no shell for Xen's own scripts.
    public static let xlConf = """
        # Written by Kiln for the Xen host role.
        autoballoon="off"
        vif.default.script="/sbin/kiln-init"
        lockfile="/run/xen/xl-lock"

        """
}
