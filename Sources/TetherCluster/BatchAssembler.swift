import Foundation

/// Holds the trajectory payloads of admitted groups until the controller announces their batch,
/// so the learner's shell cannot train a dropped group or lose an admitted one: payloads go in only
/// on `.admitGroup` and come out only on `.batchReady`, in the controller's slot order.
public struct BatchAssembler<Payload> {
    public struct GroupKey: Hashable, Sendable {
        public var ticket: TicketID
        public var promptID: PromptID
    }

    public struct ReadyBatch {
        public var version: Int
        public var groups: [AdmittedGroup]
        public var payloads: [Payload]
    }

    public enum AssemblyError: Error, Equatable, CustomStringConvertible {
        case missingPayload(ticket: TicketID, promptID: PromptID)
        case admittedWithoutPayload(ticket: TicketID, promptID: PromptID)

        public var description: String {
            switch self {
            case let .missingPayload(t, p): return "batch names group (ticket \(t), prompt \(p)) but no payload was stored for it"
            case let .admittedWithoutPayload(t, p): return "group (ticket \(t), prompt \(p)) admitted but no arrival payload was passed"
            }
        }
    }

    private var stored: [GroupKey: Payload] = [:]

    public init() {}

    public var storedCount: Int { stored.count }

    /// Applies the directives of one controller call. `arrived` is the payload of the group whose
    /// `.groupArrived` produced them (nil for other events). Returns the batch to train, if any.
    public mutating func apply(_ directives: [StalenessDirective], arrived: Payload? = nil) throws -> ReadyBatch? {
        var ready: ReadyBatch?
        for directive in directives {
            switch directive {
            case .admitGroup(let group):
                guard let arrived else { throw AssemblyError.admittedWithoutPayload(ticket: group.ticket, promptID: group.promptID) }
                stored[GroupKey(ticket: group.ticket, promptID: group.promptID)] = arrived
            case let .batchReady(version, groups):
                var payloads: [Payload] = []
                for group in groups {
                    guard let payload = stored.removeValue(forKey: GroupKey(ticket: group.ticket, promptID: group.promptID)) else {
                        throw AssemblyError.missingPayload(ticket: group.ticket, promptID: group.promptID)
                    }
                    payloads.append(payload)
                }
                ready = ReadyBatch(version: version, groups: groups, payloads: payloads)
            case let .reissuePrompts(ticket, prompts, .learnerRestart):
                for prompt in prompts { stored[GroupKey(ticket: ticket, promptID: prompt)] = nil }
            default:
                break
            }
        }
        return ready
    }
}
