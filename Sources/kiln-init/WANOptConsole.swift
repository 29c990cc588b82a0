import Glibc
import KilnConfig
import KilnWANOpt

/// The console's `wanopt` command: the WAN optimizer's status as one `wanopt` event (for people and for
/// `kiln test` checks).
enum WANOptConsole {
    static func emitStatus() {
        let config: WANOptConfig
        do { config = try WANOptConfig.load(path: WANOptConfig.defaultPath) } catch {
            Events.emit("wanopt", [("error", .string("\(error)"))])
            return
        }
        let status: JSONValue
        do { status = try JSONParser.parse(try StatusSocket.query(path: config.statusSocket)) } catch {
            Events.emit("wanopt", [("error", .string("\(error)"))])
            return
        }
        var fields: [(String, JSONValue)] = []
        for key in ["channel", "channelUps", "flowsOptimized", "flowsDirect", "flowErrors", "activeFlows"] {
            if let value = status[key] { fields.append((key, value)) }
        }
        if let optimized = status["optimized"] {
            for key in ["lanIn", "lanOut", "wanIn", "wanOut", "reduction", "storeHitRate"] {
                if let value = optimized[key] { fields.append((key, value)) }
            }
        }
        Events.emit("wanopt", fields)
    }
}
