// Codes exported token streams with the real EtokFormat coders and prints the token bytes per
// token of rc-fsq-1 and rc-fsq-2 (checking that each decodes back), to compare with coder_lab.py's
// ideal code lengths. Built with the Sources/EtokFormat files by Tools/coder_lab/actual_bytes.sh.
//
//   actual-bytes DIR…   (each DIR from make_streams.sh: lengths.npy, tokens.npy, info.json)
//
// Also rewrites DIR/stream.etok (if present) in rc-fsq-2 as DIR/stream-rc2.etok, for cross-checks
// with Tools/fuzz/spec_reader.py and for comparing whole file sizes.
import Foundation

/// The int32 payload of a little-endian `<i4` .npy file (version 1 header).
func readInt32NPY(_ path: String) -> [Int32] {
    let data = [UInt8](FileManager.default.contents(atPath: path) ?? Data())
    guard data.count > 10 else { fatalError("\(path): not an .npy file") }
    let headerLength = Int(data[8]) | Int(data[9]) << 8
    let start = 10 + headerLength
    var out: [Int32] = []
    var i = start
    while i + 4 <= data.count {
        out.append(Int32(bitPattern: UInt32(data[i]) | UInt32(data[i + 1]) << 8 | UInt32(data[i + 2]) << 16 | UInt32(data[i + 3]) << 24))
        i += 4
    }
    return out
}

@main
struct ActualBytes {
    static func main() {
        for dir in CommandLine.arguments.dropFirst() {
            let info = (try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/info.json")))) as? [String: Any]
            let model = info?["model"] as? [String: Any]
            let chunkBlocks = ((info?["encoding"] as? [String: Any])?["chunk_blocks"] as? Int) ?? 4
            let levels = (model?["fsq_quant_levels"] as? [Int]) ?? [8, 8, 8, 5, 5, 5]
            let image = (model?["image_size"] as? [Int]) ?? [128, 128]
            let patch = (model?["patch_size"] as? [Int]) ?? [1, 8, 8]
            let width = max(1, image[1] / patch[2])
            let lengths = readInt32NPY(dir + "/lengths.npy").map(Int.init)
            let tokens = readInt32NPY(dir + "/tokens.npy")
            var blocks: [[Int32]] = []
            var at = 0
            for n in lengths {
                blocks.append(Array(tokens[at..<(at + n)]))
                at += n
            }
            var bytes1 = 0, bytes2 = 0
            var t1 = 0.0, t2 = 0.0
            for c in stride(from: 0, to: blocks.count, by: chunkBlocks) {
                let chunk = Array(blocks[c..<min(c + chunkBlocks, blocks.count)])
                let kept = chunk.map(\.count)
                var start = Date()
                let a = FSQTokenCoder.encode(blocks: chunk, levels: levels)
                t1 += Date().timeIntervalSince(start)
                start = Date()
                let b = FSQTokenCoder2.encode(blocks: chunk, levels: levels, width: width)
                t2 += Date().timeIntervalSince(start)
                bytes1 += a.count
                bytes2 += b.count
                let backA = try? FSQTokenCoder.decode(a, start: 0, end: a.count, kept: kept, levels: levels).get()
                let backB = try? FSQTokenCoder2.decode(b, start: 0, end: b.count, kept: kept, levels: levels, width: width).get()
                if backA != chunk || backB != chunk { fatalError("\(dir): chunk at block \(c) does not round-trip") }
            }
            if let reader = try? EtokReader(path: dir + "/stream.etok") {
                var header = reader.header
                header.encoding.tokenCoding = .preferred(for: header.model)
                do {
                    let sink = try FileDescriptorSink(creating: dir + "/stream-rc2.etok")
                    let writer = try EtokWriter(sink: sink, header: header)
                    for i in 0..<reader.chunks.count { try writer.append(try reader.chunk(at: i)) }
                    try writer.finish()
                    let back = try EtokReader(path: dir + "/stream-rc2.etok")
                    for i in 0..<reader.chunks.count where try back.chunk(at: i) != reader.chunk(at: i) {
                        fatalError("\(dir): rewritten chunk \(i) differs")
                    }
                } catch {
                    fatalError("\(dir): \(error)")
                }
            }
            let n = Double(tokens.count)
            print(String(format: "%@: %d tokens; rc-fsq-1 %.3f bits/token (%.2f us/token), rc-fsq-2 %.3f (%.2f us/token), %.2f %% smaller",
                         (dir as NSString).lastPathComponent, tokens.count, 8 * Double(bytes1) / n, 1e6 * t1 / n,
                         8 * Double(bytes2) / n, 1e6 * t2 / n, 100 * (1 - Double(bytes2) / Double(bytes1))))
        }
    }
}
