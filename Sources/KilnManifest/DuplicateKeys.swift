import CYaml
import KilnConfig

/// Finds the second occurrence of a key in the same mapping by walking libyaml's events.
///
/// Yams refuses a mapping with a repeated key but reports only the first occurrence (and, through its error's
/// context, not even that reliably); the user needs the line of the repeat, the one to delete.
enum DuplicateKeys {
    struct Found { var key: String; var path: String; var line: Int; var column: Int; var firstLine: Int; var firstColumn: Int }

    private struct Frame {
        var isMapping: Bool
        var keys: [String: (line: Int, column: Int)] = [:]
        var expectingKey = true
        /// The key whose value is being read (mapping) or the index of the item (sequence).
        var current: String?
        var index = 0
    }

    /// The first repeated key in document order, or nil when there is none (or libyaml cannot parse the text).
    static func first(in text: String) -> Found? {
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else { return nil }
        defer { yaml_parser_delete(&parser) }
        var bytes = Array(text.utf8)
        return bytes.withUnsafeMutableBufferPointer { buffer -> Found? in
            yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
            var stack: [Frame] = []
            /// A complete node was read: in a mapping it is a key or a value, alternately.
            func finishedNode() {
                guard let last = stack.indices.last else { return }
                if stack[last].isMapping { stack[last].expectingKey.toggle() } else { stack[last].index += 1 }
            }
            func path(to key: String) -> String {
                let keys: [CodingKey] = stack.dropLast().map { $0.isMapping ? AnyCodingKey(stringValue: $0.current ?? "?") : AnyCodingKey(intValue: $0.index) }
                return describePath(keys + [AnyCodingKey(stringValue: key)])
            }
            while true {
                var event = yaml_event_t()
                guard yaml_parser_parse(&parser, &event) == 1 else { return nil }
                defer { yaml_event_delete(&event) }
                let line = Int(event.start_mark.line) + 1, column = Int(event.start_mark.column) + 1
                switch event.type {
                case YAML_STREAM_END_EVENT:
                    return nil
                case YAML_MAPPING_START_EVENT:
                    stack.append(Frame(isMapping: true))
                case YAML_SEQUENCE_START_EVENT:
                    stack.append(Frame(isMapping: false))
                case YAML_MAPPING_END_EVENT, YAML_SEQUENCE_END_EVENT:
                    stack.removeLast()
                    finishedNode()
                case YAML_SCALAR_EVENT:
                    if let last = stack.indices.last, stack[last].isMapping, stack[last].expectingKey {
                        let s = event.data.scalar
                        let key = String(decoding: UnsafeBufferPointer(start: s.value, count: Int(s.length)), as: UTF8.self)
                        if let first = stack[last].keys[key] {
                            return Found(key: key, path: path(to: key), line: line, column: column, firstLine: first.line, firstColumn: first.column)
                        }
                        stack[last].keys[key] = (line, column)
                        stack[last].current = key
                    }
                    finishedNode()
                case YAML_ALIAS_EVENT:
                    finishedNode()
                default:
                    break
                }
            }
        }
    }
}
