import KilnConfig
/// The kernel modules a kernel package provides and how they depend on each other, read from depmod's
/// `modules.dep` or built from each module's `.modinfo` (`ModuleScanner`) when the package ships none (Debian
/// generates `modules.dep` at install time, so its kernel packages do not carry one).
///
/// Names are compared the way the kernel does: `-` and `_` are the same character.
public struct ModuleIndex: Sendable, Equatable {
    /// One module.
    public struct Module: Sendable, Equatable {
        /// The normalized name (`_` for `-`), e.g. `virtio_net`.
        public var name: String
        /// The path relative to `/lib/modules/<release>/`, as the package ships it (`kernel/.../x.ko.xz`).
        public var path: String
        /// Paths of the modules it depends on (`depends=` or the `modules.dep` list).
        public var dependencies: [String]
        /// Names from `softdep=pre:` that should load first when present.
        public var softPre: [String] = []
        /// Names from `softdep=post:` that should load after it when present.
        public var softPost: [String] = []

        /// The path the image uses: compressed modules are stored decompressed (`.ko`), so the guest can hand
        /// them to finit_module without a decompressor.
        public var imagePath: String { ModuleIndex.uncompressedPath(path) }

        public init(name: String, path: String, dependencies: [String], softPre: [String] = [], softPost: [String] = []) {
            self.name = name
            self.path = path
            self.dependencies = dependencies
            self.softPre = softPre
            self.softPost = softPost
        }
    }

    /// Modules by normalized name.
    public var modules: [String: Module]
    /// Normalized names of modules built into the kernel (`modules.builtin`): asking for them is not an error,
    /// and they never appear in a closure.
    public var builtin: Set<String>

    public init(modules: [Module], builtin: Set<String> = []) {
        var byName = [String: Module]()
        for module in modules where byName[module.name] == nil { byName[module.name] = module }
        self.modules = byName
        self.builtin = Set(builtin.map(Self.normalize))
    }

    /// Parses depmod's `modules.dep` (`kernel/net/foo.ko[.xz|.zst]: kernel/a.ko kernel/b.ko`) and, optionally,
    /// `modules.builtin` (one path per line). `path` names the file in errors.
    public init(modulesDep text: String, builtinList: String = "", path: String = "modules.dep") throws {
        var modules = [Module]()
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.drop { $0 == " " || $0 == "\t" }
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            guard let colon = trimmed.firstIndex(of: ":") else {
                throw ImageError.malformedModulesDep(path: path, line: number + 1, reason: "expected 'module.ko: deps...'")
            }
            let modulePath = String(trimmed[..<colon])
            guard Self.isModulePath(modulePath) else {
                throw ImageError.malformedModulesDep(path: path, line: number + 1, reason: "'\(modulePath)' is not a .ko file")
            }
            let dependencies = trimmed[trimmed.index(after: colon)...].split(whereSeparator: { $0 == " " || $0 == "\t" })
                .map(String.init)
            if let bad = dependencies.first(where: { !Self.isModulePath($0) }) {
                throw ImageError.malformedModulesDep(path: path, line: number + 1, reason: "'\(bad)' is not a .ko file")
            }
            modules.append(Module(name: Self.name(ofPath: modulePath), path: modulePath, dependencies: dependencies))
        }
        let builtin = builtinList.split(separator: "\n").map { Self.name(ofPath: String($0)) }
        self.init(modules: modules, builtin: Set(builtin))
    }

    /// `-` and `_` are equivalent in module names; the canonical form uses `_`.
    public static func normalize(_ name: String) -> String {
        String(name.map { $0 == "-" ? "_" : $0 })
    }

    /// The normalized module name of a path: `kernel/drivers/net/virtio_net.ko.xz` → `virtio_net`.
    public static func name(ofPath path: String) -> String {
        var base = Substring(FileSystem.baseName(uncompressedPath(path)))
        if base.hasSuffix(".ko") { base = base.dropLast(3) }
        return normalize(String(base))
    }

    /// `x.ko.xz`/`x.ko.zst`/`x.ko.gz` → `x.ko`.
    public static func uncompressedPath(_ path: String) -> String {
        for suffix in [".xz", ".zst", ".gz"] where path.hasSuffix(".ko" + suffix) {
            return String(path.dropLast(suffix.count))
        }
        return path
    }

    static func isModulePath(_ path: String) -> Bool {
        uncompressedPath(path).hasSuffix(".ko")
    }

    /// The modules `names` need, dependencies first. Roots keep the caller's order (a later root may rely on
    /// an earlier one without a declared dependency, as `virtio_net` relies on `virtio_pci`); dependencies
    /// follow the index's order. Built-in names are skipped. An unknown name throws `unknownModule` with the
    /// closest known name.
    public func closure(of names: [String]) throws -> [Module] {
        var order = [Module]()
        var done = Set<String>()
        var inProgress = [String]()

        func visit(_ name: String, required: Bool, requester: String?) throws {
            let name = Self.normalize(name)
            if done.contains(name) || builtin.contains(name) { return }
            guard let module = modules[name] else {
                if !required { return }
                if let requester {
                    throw ImageError.malformedModulesDep(path: requester, line: 0, reason: "depends on unknown module \(name)")
                }
                throw ImageError.unknownModule(name: name, suggestion: suggestion(for: name))
            }
            if inProgress.contains(name) {
                throw ImageError.malformedModulesDep(path: module.path, line: 0,
                                                     reason: "dependency cycle: \((inProgress + [name]).joined(separator: " -> "))")
            }
            inProgress.append(name)
            for soft in module.softPre { try visit(soft, required: false, requester: module.path) }
            for dependency in module.dependencies {
                try visit(Self.name(ofPath: dependency), required: true, requester: module.path)
            }
            inProgress.removeLast()
            done.insert(name)
            order.append(module)
            for soft in module.softPost { try visit(soft, required: false, requester: module.path) }
        }

        for name in names { try visit(name, required: true, requester: nil) }
        return order
    }

    /// The image's modules and kiln-init's plan for them: the closure of `common` and of every platform's set,
    /// each module only a platform set needs marked with the platforms that need it.
    public func plan(common: [String], platforms: [Platform: [String]], release: String) throws -> ([Module], ModulePlan) {
        let everywhere = Set(try closure(of: common).map(\.name))
        var needs: [String: [Platform]] = [:]
        for platform in Platform.allCases {
            for module in try closure(of: platforms[platform] ?? []) where !everywhere.contains(module.name) {
                needs[module.name, default: []].append(platform)
            }
        }
        let modules = try closure(of: Platform.allCases.flatMap { platforms[$0] ?? [] } + common)
        let plan = ModulePlan(release: release, modules: zip(modules, loadPrerequisites(for: modules)).map {
            ModulePlan.Module(path: $0.imagePath, prerequisites: $1, platforms: needs[$0.name] ?? [])
        })
        return (modules, plan)
    }

    /// For each module of `modules` (a closure, in its order), the positions of the earlier modules that must be
    /// loaded before it: its declared dependencies, its soft pre-dependencies, and the modules that name it as a
    /// soft post-dependency. Everything else may load at the same time, which kiln-init does on several CPUs.
    public func loadPrerequisites(for modules: [Module]) -> [[Int]] {
        let position = Dictionary(modules.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { first, _ in first })
        var before = modules.map { module in
            Set(module.dependencies.map(Self.name(ofPath:)).compactMap { position[$0] }
                + module.softPre.map(Self.normalize).compactMap { position[$0] })
        }
        for (index, module) in modules.enumerated() {
            for later in module.softPost.map(Self.normalize).compactMap({ position[$0] }) where later > index {
                before[later].insert(index)
            }
        }
        return before.enumerated().map { index, set in set.filter { $0 < index }.sorted() }
    }

    /// A `modules.dep` for `modules` (a closure), with image paths and each module's full transitive
    /// dependency list in modprobe's order (the list is loaded last to first).
    public func modulesDep(for modules: [Module]) -> String {
        let position = Dictionary(modules.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { first, _ in first })
        var lines = [String]()
        for module in modules {
            var transitive = Set<String>()
            var stack = module.dependencies.map(Self.name(ofPath:))
            while let next = stack.popLast() {
                guard transitive.insert(next).inserted, let dependency = self.modules[next] else { continue }
                stack += dependency.dependencies.map(Self.name(ofPath:))
            }
            let listed = transitive.compactMap { name in position[name].map { (name, $0) } }
                .sorted { $0.1 > $1.1 }
                .compactMap { self.modules[$0.0]?.imagePath }
            lines.append(module.imagePath + ":" + listed.map { " " + $0 }.joined())
        }
        return lines.map { $0 + "\n" }.joined()
    }

    /// The known module name closest to `name` by edit distance, when it is close enough to be a likely typo.
    func suggestion(for name: String) -> String? {
        NameSuggestion.closest(to: name, among: modules.keys.sorted()) { _ in max(2, name.count / 3) }
    }
}
