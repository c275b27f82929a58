/// The protocol version every `Envelope` carries (field 1 of `proto/tether.proto`). Bump it on any
/// change that an older receiver would misread; receivers accept exactly this version.
public enum WireProtocol {
    public static let version: UInt32 = 1
}

/// One typed message of the Tether wire protocol: the `body` oneof of `tether.Envelope`.
public enum WireMessage: Sendable, Equatable {
    case actorJoin(ActorJoin)
    case ticketRequest(TicketRequest)
    case rolloutTicket(RolloutTicket)
    case trajectoryGroup(TrajectoryGroup)
    case weightsHeader(WeightsHeader)
    case weightsRequest(WeightsRequest)
    case heartbeat(Heartbeat)
    case control(Control)

    /// A short name for logs and counters.
    public var kindName: String {
        switch self {
        case .actorJoin: return "actor_join"
        case .ticketRequest: return "ticket_request"
        case .rolloutTicket: return "rollout_ticket"
        case .trajectoryGroup: return "trajectory_group"
        case .weightsHeader: return "weights_header"
        case .weightsRequest: return "weights_request"
        case .heartbeat: return "heartbeat"
        case .control: return "control"
        }
    }

    /// Raw frames that must follow the envelope: only a weights header announces any.
    public var expectedAttachmentSizes: [UInt64] {
        if case .weightsHeader(let header) = self { return header.frameLengths }
        return []
    }
}
