import Glibc
import KilnSwitch

// kiln-switch-bench CONFIG.json: runs the switch described by the JSON file (a SwitchSpec) in the current network
// namespace until SIGTERM or SIGINT, exactly as the appliance's service does.
guard CommandLine.arguments.count == 2 else {
    let usage = Array("usage: kiln-switch-bench SWITCH.json\n".utf8)
    _ = usage.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    exit(64)
}
exit(Switch.run(configPath: CommandLine.arguments[1]))
