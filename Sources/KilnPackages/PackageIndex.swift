/// Where a set of index entries came from: the repository base URI and the suite.
struct IndexOrigin: Sendable, Hashable {
    var baseURI: String
    var suite: String
}

/// The merged package indices of every configured suite, with name and Provides lookups, and the resolver.
public struct PackageIndex: Sendable {
    /// The `Date:` of every Release file used, as seconds since the epoch.
    public var releaseDates: [Int]
    /// The suites whose indices were merged.
    public var suites: [String]
    var origins: [IndexOrigin]
    var entries: [IndexEntry]
    var byName: [String: [Int]] = [:]
    var providers: [String: [Int]] = [:]

    /// SOURCE_DATE_EPOCH for a build from this index: the newest Release date.
    public var sourceDateEpoch: Int { releaseDates.max() ?? 0 }

    /// The number of package stanzas in the index.
    public var count: Int { entries.count }

    init(entries: [IndexEntry], origins: [IndexOrigin], releaseDates: [Int], suites: [String]) {
        self.entries = entries
        self.origins = origins
        self.releaseDates = releaseDates
        self.suites = suites
        byName.reserveCapacity(entries.count)
        for (index, entry) in entries.enumerated() {
            byName[entry.name, default: []].append(index)
            if entry.provides.isEmpty { continue }
            for provided in Dependency.parseField(Substring(entry.provides)).joined() {
                providers[provided.name, default: []].append(index)
            }
        }
    }

    /// An index of the given records (their `baseURI` and `suite` are kept).
    public init(records: [PackageRecord], releaseDates: [Int] = []) {
        var origins: [IndexOrigin] = []
        var originIndex: [IndexOrigin: Int] = [:]
        var entries: [IndexEntry] = []
        for record in records {
            let origin = IndexOrigin(baseURI: record.baseURI, suite: record.suite)
            let number = originIndex[origin] ?? origins.count
            if number == origins.count {
                origins.append(origin)
                originIndex[origin] = number
            }
            entries.append(IndexEntry(
                name: record.name, version: record.version, architecture: record.architecture,
                filename: record.filename, size: record.size, sha256: record.sha256,
                depends: Self.format(record.depends), preDepends: Self.format(record.preDepends),
                provides: record.provides.joined(separator: ", "), source: record.source ?? "", origin: number))
        }
        self.init(entries: entries, origins: origins, releaseDates: releaseDates,
                  suites: Array(Set(records.map(\.suite))).sorted())
    }

    /// Every version of `name` in the index, highest first.
    public func candidates(named name: String) -> [PackageRecord] {
        (byName[name] ?? []).sorted { DebianVersion.compare(entries[$0].version, entries[$1].version) > 0 }
            .map(record(at:))
    }

    /// The highest version of `name` across all suites, if the index has it.
    public func best(named name: String) -> PackageRecord? {
        bestIndex(named: name).map(record(at:))
    }

    /// The records for `names`, and with `followDepends` everything they Depend or Pre-Depend on, recursively.
    /// Each group of alternatives is satisfied by one already chosen if possible, else by its first alternative
    /// that exists, as a real package or through a package that Provides it. Version constraints are not checked:
    /// the highest version across suites is taken. Results are sorted by name.
    public func resolve(_ names: [String], followDepends: Bool) throws -> [PackageRecord] {
        var chosen: [String: Int] = [:]
        var provided: Set<String> = []
        var queue: [Int] = []
        func choose(_ index: Int) {
            let entry = entries[index]
            guard chosen[entry.name] == nil else { return }
            chosen[entry.name] = index
            for item in Dependency.parseField(Substring(entry.provides)).joined() { provided.insert(item.name) }
            queue.append(index)
        }
        for name in names {
            if chosen[name] != nil { continue }
            if let index = bestIndex(named: name) ?? bestProvider(of: name, chosen: chosen) {
                choose(index)
            } else {
                throw PackageError.packageNotFound(name: name, suggestions: suggestions(for: name))
            }
        }
        while followDepends, let index = queue.popLast() {
            let entry = entries[index]
            let groups = Dependency.parseField(Substring(entry.preDepends)) + Dependency.parseField(Substring(entry.depends))
            for group in groups {
                if group.contains(where: { chosen[$0.name] != nil || provided.contains($0.name) }) { continue }
                let pick = group.lazy.compactMap {
                    self.bestIndex(named: $0.name) ?? self.bestProvider(of: $0.name, chosen: chosen)
                }.first
                if let pick {
                    choose(pick)
                } else {
                    throw PackageError.unsatisfiableDependency(
                        package: "\(entry.name) \(entry.version)",
                        dependency: group.map(\.description).joined(separator: " | "))
                }
            }
        }
        return chosen.values.map(record(at:)).sorted { $0.name < $1.name }
    }

    /// Known names close to `name`: a shared prefix or an edit distance of at most two.
    public func suggestions(for name: String, limit: Int = 3) -> [String] {
        let target = Array(name.utf8)
        var scored: [(Int, String)] = []
        for candidate in byName.keys where abs(candidate.utf8.count - target.count) <= 2 {
            let distance = editDistance(Array(candidate.utf8), target, bound: 2)
            if distance <= 2 { scored.append((distance, candidate)) }
        }
        if scored.isEmpty {
            for candidate in byName.keys where candidate.hasPrefix(name) { scored.append((candidate.count, candidate)) }
        }
        return scored.sorted { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }.prefix(limit).map(\.1)
    }

    func record(at index: Int) -> PackageRecord {
        let entry = entries[index]
        let origin = origins[entry.origin]
        return PackageRecord(
            name: entry.name, version: entry.version, architecture: entry.architecture, filename: entry.filename,
            size: entry.size, sha256: entry.sha256, depends: Dependency.parseField(Substring(entry.depends)),
            preDepends: Dependency.parseField(Substring(entry.preDepends)),
            provides: Dependency.parseField(Substring(entry.provides)).joined().map(\.name),
            source: entry.source.isEmpty ? nil : entry.source, baseURI: origin.baseURI, suite: origin.suite)
    }

    /// Whether `name` is a package of the index or a virtual package one of them provides.
    public func knows(_ name: String) -> Bool { byName[name] != nil || providers[name] != nil }

    private func bestIndex(named name: String) -> Int? {
        byName[name]?.max { DebianVersion.compare(entries[$0].version, entries[$1].version) < 0 }
    }

    /// A provider of a virtual package: one already chosen if any, else the alphabetically first provider's
    /// highest version (deterministic, so two resolutions agree).
    private func bestProvider(of name: String, chosen: [String: Int]) -> Int? {
        guard let list = providers[name], !list.isEmpty else { return nil }
        if let already = list.first(where: { chosen[entries[$0].name] != nil }) { return already }
        let providerNames = Set(list.map { entries[$0].name }).sorted()
        return providerNames.first.flatMap(bestIndex(named:))
    }

    private static func format(_ groups: [[Dependency]]) -> String {
        groups.map { $0.map(\.description).joined(separator: " | ") }.joined(separator: ", ")
    }
}

/// Levenshtein distance, giving up (returning `bound + 1`) once every path exceeds `bound`.
func editDistance(_ a: [UInt8], _ b: [UInt8], bound: Int) -> Int {
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous = Array(0...b.count)
    var current = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        current[0] = i
        var rowMin = i
        for j in 1...b.count {
            let cost = a[i - 1] == b[j - 1] ? 0 : 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            rowMin = min(rowMin, current[j])
        }
        if rowMin > bound { return bound + 1 }
        swap(&previous, &current)
    }
    return previous[b.count]
}
