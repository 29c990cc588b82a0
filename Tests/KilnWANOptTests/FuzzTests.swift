import KilnTestSupport
import Testing
@testable import KilnWANOpt

/// The frame parser and message decoder against 1,000,000 inputs: valid frames with bytes flipped, cut or
/// inserted, and random bytes. Nothing may trap; every accepted message must re-encode to the frame it came
/// from, and every error must name a flow or the channel consistently with the input.
@Suite struct FuzzTests {
    @Test func parserSurvivesAMillionInputs() throws {
        var rng = SplitMix(state: 0x6b69_6c6e_7761_6e6f)
        let seeds = FrameTests.messages.map { $0.frame.encoded() }
        var accepted = 0, flowErrors = 0, channelErrors = 0, incomplete = 0
        for i in 0..<1_000_000 {
            var input: [UInt8]
            switch i % 4 {
            case 0:  // a valid frame with 1-4 bytes changed
                input = seeds[Int.random(in: 0..<seeds.count, using: &rng)]
                for _ in 0..<Int.random(in: 1...4, using: &rng) {
                    input[Int.random(in: 0..<input.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                }
            case 1:  // truncated, or with bytes appended
                input = seeds[Int.random(in: 0..<seeds.count, using: &rng)]
                if Bool.random(using: &rng) { input = Array(input.prefix(Int.random(in: 0..<input.count, using: &rng))) }
                else { input += (0..<Int.random(in: 1...16, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) } }
            case 2:  // two frames glued, one type byte forced to something unknown
                input = seeds[Int.random(in: 0..<seeds.count, using: &rng)] + seeds[Int.random(in: 0..<seeds.count, using: &rng)]
                input[0] = UInt8.random(in: 10...255, using: &rng)
            default:  // random header with a small length and random payload
                input = (0..<Int.random(in: 0..<48, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
                if input.count >= 9 { input[5] = 0; input[6] = 0; input[7] = 0; input[8] = UInt8(min(input.count - 9, 40)) }
            }
            var parser = FrameParser()
            parser.append(input)
            var consumedAll = false
            for _ in 0..<8 {
                let frame: ChannelFrame?
                do { frame = try parser.next() } catch {
                    if error.flow == nil { channelErrors += 1; break }
                    flowErrors += 1
                    continue
                }
                guard let frame else { consumedAll = true; break }
                do {
                    let message = try ChannelMessage.decode(frame)
                    accepted += 1
                    if case .reset = message {
                        // Reasons are decoded leniently (invalid UTF-8 is replaced); the rest is exact.
                    } else {
                        #expect(message.frame == frame, "re-encoding \(message) changed the frame")
                    }
                } catch {
                    if let flow = error.flow { #expect(flow == frame.flow); flowErrors += 1 } else {
                        #expect(frame.flow == 0 || frame.type == .hello || frame.type == .auth)
                        channelErrors += 1
                    }
                }
            }
            if consumedAll, parser.pending > 0 { incomplete += 1 }
        }
        print("KilnWANOpt fuzz: 1000000 inputs, \(accepted) messages accepted, \(flowErrors) flow errors, \(channelErrors) channel errors, \(incomplete) left incomplete")
        #expect(accepted > 100_000 && flowErrors > 10_000 && channelErrors > 1_000 && incomplete > 10_000)
    }
}
