/// Errors of the cluster processes: each names what happened and what to do.
public enum ClusterError: Error, CustomStringConvertible {
    case weightsMismatch(String)
    case noCheckpoint(String)
    case processFailed(String)

    public var description: String {
        switch self {
        case .weightsMismatch(let why): return "received weights do not fit this model: \(why) (are learner and actor started with the same model config?)"
        case .noCheckpoint(let why): return "cannot resume: \(why)"
        case .processFailed(let why): return why
        }
    }
}
