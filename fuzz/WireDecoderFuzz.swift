// libFuzzer entry for the wire decoder (built by scripts/fuzz-wire, not by SwiftPM).
//
// Input layout: byte 0 = k (number of raw frames, k = byte0 % 4), then k little-endian UInt16
// frame lengths, then the k raw frames, then the envelope frame (the rest). Every input must
// either decode or throw a WireError; a decoded message must survive encode → decode unchanged.

@_cdecl("LLVMFuzzerTestOneInput")
public func wireDecoderFuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    var cursor = 0
    var frames: [UnsafeRawBufferPointer] = []
    let k = size > 0 ? Int(bytes[0] % 4) : 0
    cursor = min(size, 1)
    var lengths: [Int] = []
    for _ in 0..<k {
        guard cursor + 2 <= size else { break }
        lengths.append(Int(bytes[cursor]) | Int(bytes[cursor + 1]) << 8)
        cursor += 2
    }
    var raw: [UnsafeRawBufferPointer] = []
    for n in lengths {
        let take = min(n, size - cursor)
        raw.append(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(bytes)[cursor..<(cursor + take)]))
        cursor += take
    }
    frames.append(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(bytes)[cursor..<size]))
    frames.append(contentsOf: raw)

    let contexts = [
        WireValidation.structural,
        WireValidation(vocabularySize: 64, currentPolicyVersion: 10, knownActors: ["a"]),
    ]
    for validation in contexts {
        do {
            let message = try WireCodec.decode(frames: frames, validation: validation)
            _ = message
        } catch let error as WireError {
            _ = error.description
        } catch {
            fatalError("decoder threw a non-WireError: \(error)")
        }
    }
    // Round trip of whatever decodes structurally (raw frames are checked by size, so re-supply them).
    if let message = try? WireCodec.decode(frames: frames, validation: WireValidation(verifyChecksums: false)) {
        let encoded = WireCodec.encode(message)
        let reframed: [[UInt8]] = [encoded] + raw.map { Array($0) }
        guard let back = try? WireCodec.decode(reframed, validation: WireValidation(verifyChecksums: false)) else {
            fatalError("re-encoded message failed to decode: \(message)")
        }
        if back != message { fatalError("round trip changed the message:\n\(message)\n\(back)") }
    }
    return 0
}

#if canImport(Glibc)
import Glibc
#endif

/// With TETHER_FUZZ_WRITE_SEEDS=DIR, writes one valid input per message type into DIR.
@_cdecl("LLVMFuzzerInitialize")
public func wireDecoderFuzzInitialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    guard let dir = getenv("TETHER_FUZZ_WRITE_SEEDS").map({ String(cString: $0) }) else { return 0 }
    let sample = TrajectorySample(completionTokens: [1, 2, 63], behaviourLogProbs: [-0.5, -1, -2], tokenVersions: [3, 3, 4],
                                  reward: 1, rewardComponents: [RewardComponent(name: "format", value: 0.5)], finishReason: .length,
                                  generationSeconds: 0.1, scoringSeconds: 0.01)
    let raw: [UInt8] = Array(repeating: 7, count: 16)
    let messages: [(WireMessage, [[UInt8]])] = [
        (.actorJoin(ActorJoin(actorId: "a", host: "h", pid: 1, blasThreads: 1, scorers: ["math"], haveVersion: 2)), []),
        (.ticketRequest(TicketRequest(actorId: "a", count: 3)), []),
        (.rolloutTicket(RolloutTicket(ticketId: 9, prompts: [TicketPrompt(promptId: "p", tokens: [1, 2])], groupSize: 4,
                                      sampling: SamplingSettings(stopTokens: [0]), policyVersion: 3, leaseDeadlineUnixMs: 5, task: "t")), []),
        (.trajectoryGroup(TrajectoryGroup(ticketId: 9, actorId: "a", promptId: "p", promptTokens: [1, 2], samples: [sample, sample])), []),
        (.weightsHeader(WeightsHeader(version: 4, dtype: .float32, tensors: [TensorEntry(name: "w", shape: [2, 2], byteOffset: 0, byteLength: 16)],
                                      frameLengths: [16], frameChecksums: [WireChecksum.xxh64(raw)])), [raw]),
        (.weightsRequest(WeightsRequest(actorId: "a", haveVersion: 1)), []),
        (.heartbeat(Heartbeat(senderId: "a", role: .actor, sequence: 1, sentUnixMs: 2, policyVersion: 3, inFlightTickets: 1)), []),
        (.control(Control(kind: .drain, reason: "r", deadlineUnixMs: 1)), []),
    ]
    for (i, (message, frames)) in messages.enumerated() {
        var input: [UInt8] = [UInt8(frames.count)]
        for f in frames { input += [UInt8(f.count & 0xff), UInt8(f.count >> 8)] }
        for f in frames { input += f }
        input += WireCodec.encode(message)
        if let file = fopen("\(dir)/seed-\(i)", "wb") {
            _ = input.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
            fclose(file)
        }
    }
    return 0
}
