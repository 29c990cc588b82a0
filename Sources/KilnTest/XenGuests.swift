import Foundation
import KilnDeploy
import KilnVM
import Logging

/// The topology's Xen guests: appliances deployed with `kiln deploy xen` onto a Xen host VM of the same topology,
/// over SSH from one of its test hosts, instead of booted under QEMU. Their links are the Xen host's NICs that
/// sit in the dom0 bridges their deploy profile names; their console is the log dom0's xenconsoled keeps.
final class XenGuests: @unchecked Sendable {
    struct Guest {
        var deployer: XenDeployer
        var profile: DeployProfile
        var domain: String
    }

    let topology: Topology
    let directory: URL
    private var guests: [String: Guest] = [:]
    private var keyCopies: [String] = []
    private let lock = NSLock()

    init(topology: Topology, path: String) {
        self.topology = topology
        directory = URL(fileURLWithPath: path).deletingLastPathComponent()
    }

    var names: Set<String> { Set(topology.vms.entries.filter { $0.value.xen != nil }.map(\.key)) }

    func profile(of name: String) throws -> DeployProfile {
        guard let placement = topology.vms[name]?.xen else { throw XenGuestError("'\(name)' is not a Xen guest") }
        return try DeployProfile.load(directory.appendingPathComponent(placement.profile).path)
    }

    /// The topology with each link end `guest.nic` replaced by the Xen host NIC in the bridge the guest's profile
    /// gives that NIC (the bridge's first member that is one of the host's NICs).
    func resolvingLinks(images: [String: BootableImage]) throws -> Topology {
        var resolved = topology
        let guests = names
        func resolve(_ end: String) throws -> String {
            let parts = end.split(separator: ".", maxSplits: 1).map(String.init)
            guard parts.count == 2, guests.contains(parts[0]), let placement = topology.vms[parts[0]]?.xen else { return end }
            guard let bridge = try profile(of: parts[0]).nics[parts[1]]?.bridge else {
                throw XenGuestError("\(end): the deploy profile \(placement.profile) gives NIC '\(parts[1])' no bridge")
            }
            guard let host = images[placement.host] else { throw XenGuestError("\(end): no image for the Xen host '\(placement.host)'") }
            let nics = Set(host.nics.map(\.name))
            guard let member = host.bridges[bridge]?.first(where: nics.contains) else {
                throw XenGuestError("\(end): the Xen host '\(placement.host)' has no bridge '\(bridge)' with one of its NICs in it")
            }
            return placement.host + "." + member
        }
        for i in resolved.links.indices {
            resolved.links[i].a = try resolve(resolved.links[i].a)
            resolved.links[i].b = try resolve(resolved.links[i].b)
        }
        return resolved
    }

    /// Deploys `name` (its image as built: this is the test) and waits for READY on its console.
    func deploy(_ name: String, image: BootableImage, fabric: Fabric, readyTimeout: Double, logger: Logger) -> VMResult {
        func failed(_ error: Any) -> VMResult {
            VMResult(name: name, image: image.directory, artifacts: image.artifacts, accelerator: "xen", ready: false, milestones: [],
                     failedPhase: "deploy", error: "\(error)", consoleTail: [])
        }
        guard let placement = topology.vms[name]?.xen else { return failed("not a Xen guest") }
        do {
            let profile = try self.profile(of: name)
            var identity: String?
            if let key = placement.identity {
                // ssh refuses a key others can read, and a checkout makes it 0644: a private copy for this run.
                let copy = NSTemporaryDirectory() + "kiln-\(getpid())-\(name).key"
                try? FileManager.default.removeItem(atPath: copy)
                try FileManager.default.copyItem(atPath: directory.appendingPathComponent(key).path, toPath: copy)
                chmod(copy, 0o600)
                lock.withLock { keyCopies.append(copy) }
                identity = copy
            }
            // The Xen host is a VM made for this run: its host key is new every time and not worth recording.
            var host = try XenHost(uri: placement.connect, identity: identity,
                                   sshOptions: ["StrictHostKeyChecking=no", "UserKnownHostsFile=/dev/null", "LogLevel=ERROR"])
            host.prefix = ["ip", "netns", "exec", fabric.namespace(ofHost: placement.via)]
            let deployer = XenDeployer(host: host, logger: logger, readyTimeout: readyTimeout)
            let deployImage = try DeployImage(directory: image.directory)
            let hashes = try deployImage.verify(try deployImage.files(for: profile.boot), allowUntested: true)
            let result = try deployer.deploy(image: deployImage, profile: profile, hashes: hashes)
            lock.withLock { guests[name] = Guest(deployer: deployer, profile: profile, domain: result.domain) }
            let events = consoleEvents(name)
            return VMResult(name: name, image: image.directory, artifacts: hashes, accelerator: "xen-\(profile.xen.type) on \(placement.host)",
                            ready: true, milestones: [.init(name: "ready", seconds: result.readyAfter)], failedPhase: nil, error: nil,
                            consoleTail: [], initToReadyMilliseconds: events.first { $0.name == "ready" }?.fields["ms"].flatMap(\.numberValue))
        } catch {
            return failed(error)
        }
    }

    /// The guest's console since it was created, as dom0 logged it, read the way a QEMU VM's console is.
    func console(_ name: String) -> ConsoleEventParser {
        var parser = ConsoleEventParser(tailLimit: 10_000)
        guard let guest = lock.withLock({ guests[name] }),
              let text = try? guest.deployer.console(domain: guest.domain, profile: guest.profile) else { return parser }
        _ = parser.feed(Array(text.utf8), at: 0)
        _ = parser.finish()
        return parser
    }

    func consoleLines(_ name: String) -> [String] { console(name).tail.map(\.text) }

    func consoleEvents(_ name: String) -> [ConsoleEvent] { console(name).events }

    /// The private key copies; the guests themselves go with their Xen host VM.
    func tearDown() {
        for copy in lock.withLock({ keyCopies }) { try? FileManager.default.removeItem(atPath: copy) }
    }
}

struct XenGuestError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
