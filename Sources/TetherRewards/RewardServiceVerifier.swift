/// Reward workers as a `Verifier`: each completion is scored by one request to the pool, so an
/// evaluation (`PolicyEvaluator`) measures accuracy with the reward the run trains on — a SymPy
/// equivalence check, a unit-test runner — rather than with a built-in rule that may not even read
/// the task's answers (`7/2` is no integer).
///
/// A completion the workers cannot score after every attempt is an error carrying the last
/// failure (`RewardServiceFailure`), never a zero: an accuracy that counted a crashed worker as a
/// wrong answer would understate the policy without saying so.
public struct RewardServiceVerifier: Verifier {
    public let pool: RewardServicePool
    public var name: String { "reward_service" }

    public init(pool: RewardServicePool) {
        self.pool = pool
    }

    /// Workers of `options`; they start with the first request.
    public init(options: RewardServiceOptions) throws {
        self.init(pool: try RewardServicePool(options: options))
    }

    public func score(completion: String, for prompt: TaskPrompt) throws -> RewardBreakdown {
        let sample = RewardServiceSample(prompt: prompt.prompt, completion: completion, answer: prompt.answer,
                                         metadata: ["task": prompt.task, "prompt_id": prompt.id])
        guard let scored = pool.score([[sample]]).first else { throw RewardServiceFailure.crashed("reward service stopped") }
        switch scored.result {
        case .success(let reply):
            guard let reward = reply.rewards.first else { throw RewardServiceFailure.wrongCount(expected: 1, got: 0) }
            return reward
        case .failure(let f):
            throw f
        }
    }
}
