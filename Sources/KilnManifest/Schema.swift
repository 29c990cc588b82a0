import KilnConfig

/// JSON Schema (draft 2020-12) of an appliance manifest, for editors' completion and validation.
/// `ManifestSchemaTests` checks every manifest in Appliances/ against it with a real validator.
public enum ManifestSchema {
    public static var document: JSONValue {
        .object([
            ("$schema", .string("https://json-schema.org/draft/2020-12/schema")),
            ("$id", .string("kiln/v1/appliance")),
            ("title", .string("Kiln appliance manifest")),
            ("type", .string("object")),
            ("additionalProperties", .bool(false)),
            ("required", strings(["apiVersion", "name", "base"])),
            ("properties", .object([
                ("apiVersion", .object([("const", .string(ManifestLoader.apiVersion))])),
                ("name", .object([("type", .string("string")), ("pattern", .string("^[a-z][a-z0-9-]{0,62}$"))])),
                ("base", described("string", "A base image: a name (Images/<base>.yaml, searched from the manifest upwards and in Kiln's own Images/) or a path to one")),
                ("hostname", .object([("type", .string("string"))])),
                ("interfaces", map(interface, "NICs in PCI order; each matched by MAC or position")),
                ("bridges", map(object(["members": array(ifname), "addresses": array(cidr)], required: ["members"]), "Linux bridges")),
                ("routes", array(object(["to": described("string", "default, default6 or a prefix"), "via": ip,
                                         "dev": ifname, "metric": integer(0, 4_294_967_295)], required: ["to"]))),
                ("sysctl", .object([("type", .string("object")), ("additionalProperties", .object([("type", strings(["string", "integer"]))]))])),
                ("packages", array(described("string", "a Debian package name"))),
                ("modules", array(described("string", "a kernel module name"))),
                ("files", array(object(["path": .object([("type", .string("string")), ("pattern", .string("^/"))]),
                                        "content": .object([("type", .string("string"))]), "source": .object([("type", .string("string"))]),
                                        "link": described("string", "a symbolic link's target"),
                                        "mode": .object([("type", .string("string")), ("pattern", .string("^[0-7]{3,4}$"))])],
                                       required: ["path"]))),
                ("services", map(object(["run": array(.object([("type", .string("string"))])),
                                         "env": .object([("type", .string("object"))]),
                                         "restart": .object([("enum", strings(["always", "on-failure", "never"]))])], required: ["run"]),
                                 "supervised processes")),
                ("tuntap", map(object(["mode": .object([("enum", strings(["tun", "tap"]))]), "addresses": array(cidr)], required: ["mode"]),
                               "TUN/TAP devices owned by the runtime")),
                ("router", object(["forwarding": .object([("type", .string("boolean"))]), "masquerade": array(ifname),
                                   "dhcp": map(object(["pool": described("string", "first-last, e.g. 10.0.0.100-10.0.0.199"), "router": ip,
                                                       "dns": array(ip), "domain": .object([("type", .string("string"))]),
                                                       "lease": integer(60, 4_294_967_294), "mtu": integer(68, 65535),
                                                       "routes": array(object(["to": cidr, "via": ip], required: ["to", "via"])),
                                                       "static": array(object(["mac": .object([("type", .string("string"))]), "address": ip],
                                                                              required: ["mac", "address"]))], required: ["pool"]),
                                               "DHCPv4 pools by interface or VLAN subinterface (lan.10)")], required: [])),
                ("firewall", object(["zones": .object([("type", .string("object"))]), "sets": .object([("type", .string("object"))]),
                                     "policies": array(.object([("type", .string("object"))])), "rules": array(.object([("type", .string("object"))])),
                                     "forwards": array(.object([("type", .string("object"))])), "masquerade": array(.object([("type", .string("string"))])),
                                     "snat": array(.object([("type", .string("object"))])), "defaults": .object([("type", .string("object"))])],
                                    required: [])),
                ("switch", switchSection),
                ("wanopt", object(["name": .object([("type", .string("string"))]), "lan": array(ifname),
                                   "peer": described("string", "ADDRESS:PORT of the other optimizer's channel"),
                                   "listen": described("string", "ADDRESS:PORT where this side accepts the channel"),
                                   "key": object(["file": described("string", "key file, relative to the manifest"),
                                                  "env": described("string", "environment variable read at build time")], required: []),
                                   "optimize": array(match), "bypass": array(match),
                                   "preserve-source": .object([("type", .string("boolean"))]), "intercept-port": integer(1, 65535),
                                   "store": object(["path": .object([("type", .string("string")), ("pattern", .string("^/"))]),
                                                    "size-mib": integer(8, 1 << 20)], required: []),
                                   "chunk-size": integer(1024, 1 << 20), "compression-level": integer(1, 19), "window-kib": integer(16, 65536)],
                                  required: ["lan", "key"])),
                ("vpn", object(["interface": ifname, "wgQuick": object(["file": described("string", "a wg-quick file, relative to the manifest")], required: ["file"]),
                                "mtu": integer(1280, 65535),
                                "addresses": array(cidr), "listenPort": integer(1, 65535), "privateKey": secret,
                                "peers": array(object(["publicKey": described("string", "base64 of 32 bytes, as `wg pubkey` prints"),
                                                       "presharedKey": secret, "allowedIPs": array(cidr),
                                                       "endpoint": described("string", "address:port or [v6]:port"),
                                                       "persistentKeepalive": integer(0, 65535)],
                                                      required: ["publicKey", "allowedIPs"]))],
                               required: [])),
                ("xen", object(["hypervisor": described("string", "Debian's hypervisor package, e.g. xen-hypervisor-4.17-amd64"),
                                "tools": described("string", "Debian's Xen tools package, e.g. xen-utils-4.17"),
                                "cmdline": described("string", "added to the hypervisor's command line, e.g. dom0_mem=512M,max:512M")],
                               required: ["hypervisor", "tools"])),
            ])),
        ])
    }

    static var match: JSONValue {
        object(["destinations": array(cidr),
                "ports": array(.object([("type", strings(["integer", "string"])), ("description", .string("a port or range, e.g. 445 or 8000-8099"))]))],
               required: [])
    }
    static let cidr = described("string", "address/prefix, e.g. 10.0.0.1/24")
    /// A key read at build time, never written into the manifest.
    static var secret: JSONValue {
        .object([("oneOf", .array([object(["file": described("string", "a key file, relative to the manifest")], required: ["file"]),
                                   object(["env": described("string", "an environment variable holding the key")], required: ["env"])]))])
    }
    static let ip = described("string", "an IPv4 or IPv6 address")
    static let ifname = .object([("type", .string("string")), ("maxLength", .int(15))]) as JSONValue
    static var interface: JSONValue {
        object(["mac": .object([("type", .string("string")), ("pattern", .string("^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$"))]),
                "pci": integer(0, 31), "addresses": array(cidr), "mtu": integer(68, 65535),
                "vlans": .object([("type", .string("object")),
                                  ("propertyNames", .object([("pattern", .string("^[0-9]{1,4}$"))])),
                                  ("additionalProperties", object(["addresses": array(cidr), "mtu": integer(68, 65535)], required: []))])],
               required: [])
    }

    static let vlanID = integer(1, 4094)
    static var switchSection: JSONValue {
        let port = object(["name": ifname, "type": .object([("enum", strings(["interface", "tap"]))]),
                           "mode": .object([("enum", strings(["access", "trunk"]))]), "vlan": vlanID, "vlans": array(vlanID),
                           "native": vlanID, "addresses": array(cidr)], required: ["name"])
        return object([
            "ports": array(port),
            "vlans": array(vlanID),
            "mac": object(["limit": integer(1, 1 << 24), "perPort": integer(1, 1 << 24), "aging": integer(1, 1 << 31)], required: []),
            "mirror": array(object(["sources": array(ifname), "destination": ifname], required: ["sources", "destination"])),
            "export": object(["collector": described("string", "address:port of an IPFIX collector, e.g. 192.0.2.10:4739"),
                              "interval": integer(1, 86400), "domain": integer(0, 4_294_967_295), "maxFlows": integer(1, 1 << 24)],
                             required: ["collector"]),
        ], required: ["ports"])
    }

    static func strings(_ s: [String]) -> JSONValue { .array(s.map { .string($0) }) }
    static func described(_ type: String, _ text: String) -> JSONValue { .object([("type", .string(type)), ("description", .string(text))]) }
    static func integer(_ min: Int64, _ max: Int64) -> JSONValue {
        .object([("type", .string("integer")), ("minimum", .int(min)), ("maximum", .int(max))])
    }
    static func array(_ items: JSONValue) -> JSONValue { .object([("type", .string("array")), ("items", items)]) }
    static func map(_ value: JSONValue, _ text: String) -> JSONValue {
        .object([("type", .string("object")), ("description", .string(text)), ("additionalProperties", value)])
    }
    static func object(_ properties: KeyValuePairs<String, JSONValue>, required: [String]) -> JSONValue {
        .object([("type", .string("object")), ("additionalProperties", .bool(false)),
                 ("properties", .object(properties.map { ($0.key, $0.value) })), ("required", strings(required))])
    }
}
