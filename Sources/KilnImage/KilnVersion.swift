/// The version of Kiln itself: printed by `kiln --version`, recorded in build.json's SBOM as the tool that built
/// the image.
public enum KilnVersion {
    public static let current = "0.19.0"
}
