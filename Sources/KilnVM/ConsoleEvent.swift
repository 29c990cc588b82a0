import Foundation
import KilnConfig

/// A JSON value from a `KILN {...}` console line, kept as written (numbers as Double).
public enum ConsoleValue: Sendable, Equatable, Codable, CustomStringConvertible {
    case string(String)
    case number(Double)
    case bool(Bool)
    case null
    case array([ConsoleValue])
    case object([String: ConsoleValue])

    /// Converts a JSONSerialization result; nil for anything that is not JSON.
    init?(foundation value: Any) {
        switch value {
        case let string as String: self = .string(string)
        case let number as NSNumber:
            // JSONSerialization gives booleans as NSNumber too; only they carry the "c" (char) type code.
            if String(cString: number.objCType) == "c" {
                self = .bool(number.boolValue)
            } else {
                self = .number(number.doubleValue)
            }
        case is NSNull: self = .null
        case let array as [Any]:
            var values: [ConsoleValue] = []
            for element in array {
                guard let converted = ConsoleValue(foundation: element) else { return nil }
                values.append(converted)
            }
            self = .array(values)
        case let object as [String: Any]:
            var values: [String: ConsoleValue] = [:]
            for (key, element) in object {
                guard let converted = ConsoleValue(foundation: element) else { return nil }
                values[key] = converted
            }
            self = .object(values)
        default: return nil
        }
    }

    /// The string, or nil for anything else.
    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    /// The number, or nil for anything else.
    public var numberValue: Double? {
        if case .number(let value) = self { return value }
        return nil
    }

    /// Compact text: strings bare, numbers without a needless ".0", containers as JSON.
    public var description: String {
        switch self {
        case .string(let value): return value
        case .number(let value):
            if value.rounded() == value, abs(value) < 1e15 { return String(Int64(value)) }
            return String(value)
        case .bool(let value): return value ? "true" : "false"
        case .null: return "null"
        case .array(let values): return "[" + values.map(\.jsonText).joined(separator: ",") + "]"
        case .object(let values):
            let members = values.sorted { $0.key < $1.key }.map { "\(ConsoleValue.string($0.key).jsonText):\($0.value.jsonText)" }
            return "{" + members.joined(separator: ",") + "}"
        }
    }

    /// The value as JSON text (strings quoted and escaped, object keys sorted).
    var jsonText: String {
        guard case .string(let value) = self else { return description }
        return JSONValue.quoted(value)
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null }
        else if let value = try? container.decode(Bool.self) { self = .bool(value) }
        else if let value = try? container.decode(Double.self) { self = .number(value) }
        else if let value = try? container.decode(String.self) { self = .string(value) }
        else if let value = try? container.decode([ConsoleValue].self) { self = .array(value) }
        else { self = .object(try container.decode([String: ConsoleValue].self)) }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .bool(let value): try container.encode(value)
        case .null: try container.encodeNil()
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }
}

/// One `KILN {"event":…}` line from the guest: the event name, its other fields, and when the host saw it.
public struct ConsoleEvent: Sendable, Equatable, Codable {
    /// The `"event"` field: `phase`, `phase-failed`, `ready`, …
    public var name: String
    /// Every other field of the JSON object.
    public var fields: [String: ConsoleValue]
    /// Seconds since QEMU started when the line arrived.
    public var seconds: Double

    public init(name: String, fields: [String: ConsoleValue] = [:], seconds: Double) {
        self.name = name
        self.fields = fields
        self.seconds = seconds
    }

    /// The field as text (strings bare, numbers compact), nil when absent.
    public subscript(field: String) -> String? { fields[field]?.description }

    /// The `phase` field (phase and phase-failed events).
    public var phase: String? { fields["phase"]?.stringValue }

    /// The guest's own timing in milliseconds (`"ms"`), if present.
    public var milliseconds: Double? { fields["ms"]?.numberValue }

    /// Parses the JSON after a `KILN ` marker; nil unless it is an object with a string `"event"`.
    public static func parse(json: Substring, seconds: Double) -> ConsoleEvent? {
        guard let data = json.data(using: .utf8),
              let object = try? JSONSerialization.jsonObject(with: data, options: []),
              case .object(var fields)? = ConsoleValue(foundation: object),
              case .string(let name)? = fields.removeValue(forKey: "event"), !name.isEmpty
        else { return nil }
        return ConsoleEvent(name: name, fields: fields, seconds: seconds)
    }
}
