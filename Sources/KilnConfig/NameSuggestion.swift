/// "Did you mean …?" for names a user typed: the one edit-distance implementation every module uses.
public enum NameSuggestion {
    /// Optimal string alignment distance, case-insensitive: insertions, deletions, substitutions, and a swap of
    /// two neighbours counted as one edit (so `nmae` is one edit from `name`).
    public static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a.lowercased()), b = Array(b.lowercased())
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var d = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in 0...a.count { d[i][0] = i }
        for j in 0...b.count { d[0][j] = j }
        for i in 1...a.count {
            for j in 1...b.count {
                d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] { d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1) }
            }
        }
        return d[a.count][b.count]
    }

    /// The candidate nearest to `word` within `maxDistance(candidate)` edits; ties go to the smaller name.
    public static func closest(to word: String, among candidates: some Sequence<String>, maxDistance: (String) -> Int) -> String? {
        var best: (name: String, cost: Int)?
        for candidate in candidates {
            let cost = distance(word, candidate)
            guard cost <= maxDistance(candidate) else { continue }
            if let b = best, b.cost < cost || (b.cost == cost && b.name <= candidate) { continue }
            best = (candidate, cost)
        }
        return best?.name
    }
}
