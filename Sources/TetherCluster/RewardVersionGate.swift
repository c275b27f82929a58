/// The learner's rule for reward versions (`Sample.reward_version`: what scored each sample).
/// Rewards of two versions are different functions, so a GRPO batch — whose advantages compare
/// rewards within a group and whose loss averages over groups — must not mix them silently.
///
/// A version never seen before is a change: logged and counted (`reward/version_changes`), and it
/// becomes current. Unless mixing is allowed (`task.reward_service.allow_mixed_versions`),
///
/// - the version it replaced is retired: later groups scored by it are refused at arrival
///   (`reward_version_retired`) and their prompts re-issued, to be scored again by current workers;
/// - a batch admitted across the change trains only the groups of its newest version; the others
///   are left out (`reward_version_mixed`); a group whose own samples disagree is refused.
///
/// A pure state machine (no I/O), so the rule is tested without processes.
public struct RewardVersionGate {
    public let allowMixed: Bool
    /// Versions in order of first appearance; the last is current.
    public private(set) var seen: [String] = []
    public private(set) var retired: Set<String> = []
    public private(set) var changes = 0

    public init(allowMixed: Bool) { self.allowMixed = allowMixed }

    public var current: String? { seen.last }

    public enum Arrival: Equatable {
        case accept
        /// Accepted, and the version differs from every one before (`from` nil: the run's first).
        case changed(from: String?, to: String)
        /// Refused: the reason's counter name.
        case refuse(String)
    }

    /// A group whose samples carry `versions`.
    public mutating func arrival(versions: [String]) -> Arrival {
        guard let v = versions.first else { return .accept }
        if !allowMixed && versions.contains(where: { $0 != v }) { return .refuse("reward_version_mixed_in_group") }
        if seen.contains(v) {
            return retired.contains(v) ? .refuse("reward_version_retired") : .accept
        }
        let previous = current
        if let previous {
            changes += 1
            if !allowMixed { retired.insert(previous) }
        }
        seen.append(v)
        return .changed(from: previous, to: v)
    }

    /// Indices of the batch's groups to train, given each group's version: all of them when mixing
    /// is allowed or the batch is of one version, else those of the newest version among them.
    public func trainable(_ groupVersions: [String]) -> [Int] {
        guard !allowMixed, let first = groupVersions.first, groupVersions.contains(where: { $0 != first }) else {
            return Array(groupVersions.indices)
        }
        let rank = Dictionary(seen.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        let newest = groupVersions.max { (rank[$0] ?? -1) < (rank[$1] ?? -1) }!
        return groupVersions.indices.filter { groupVersions[$0] == newest }
    }
}
