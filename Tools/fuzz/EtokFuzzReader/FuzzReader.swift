// libFuzzer target for the .etok readers (docs/etok-format.md): SwiftPM's `etok-fuzz-reader`.
// Built with `-sanitize=fuzzer` (Tools/fuzz/run.sh), libFuzzer calls `LLVMFuzzerTestOneInput`; built
// normally, Main.swift replays the files it is given through the same function (the tests do).
import EtokFormat

//
// Every input goes through everything a user-facing command would do with an untrusted file: open
// (index or scan), read every chunk, verify, seek, and read it again as a stream. Any trap (overflow,
// out-of-bounds index, force-unwrap), hang or huge allocation is a bug.
//
// Mutated records almost always fail their CRC, which would keep the fuzzer out of the header,
// chunk and token parsers; so each input is also read a second time with every record's CRC
// recomputed (walking the records by their lengths), which lets mutations reach those parsers.

/// The libFuzzer entry point: runs the readers on one input.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = size > 0 && data != nil ? Array(UnsafeBufferPointer(start: data, count: size)) : []
    for input in [bytes, repairingCRCs(bytes)] {
        // A file and the same bytes on a pipe must get one verdict (issue 14): a difference is a bug.
        if let found = readEverything(input), !found.verdictsAgree { fatalError("file and pipe verdicts differ") }
    }
    return 0
}

/// `bytes` with the CRC of every complete record (found by walking lengths from offset 12) rewritten.
func repairingCRCs(_ bytes: [UInt8]) -> [UInt8] {
    var out = bytes
    var p = EtokFormat.preambleSize
    while p + 8 <= out.count {
        let length = Int(out[p + 4]) | Int(out[p + 5]) << 8 | Int(out[p + 6]) << 16 | Int(out[p + 7]) << 24
        let end = p + 8 + length
        guard length <= EtokFormat.maxPayloadLength, end + 4 <= out.count else { break }
        let crc = CRC32.checksum(out[p..<end])
        for i in 0..<4 { out[end + i] = UInt8(truncatingIfNeeded: crc >> UInt32(8 * i)) }
        p = end + 4
    }
    return out
}

/// Opens, reads, verifies and walks `bytes` as a file and as a pipe. Returns what the walks found
/// (for the replay mode's summary), or nil when the header is unusable.
@discardableResult
func readEverything(_ bytes: [UInt8]) -> (chunks: Int, damaged: Int, verdictsAgree: Bool)? {
    if let reader = try? EtokReader(bytes: bytes, name: "fuzz.etok") {
        var tokens = 0
        for i in reader.chunks.indices {
            if let chunk = try? reader.chunk(at: i) { tokens += chunk.blocks.reduce(0) { $0 + $1.kept } }
        }
        _ = try? reader.verify()
        _ = try? reader.chunk(containingBlock: reader.endBlock / 2)
        _ = reader.health.description
        _ = tokens
    }
    var verdicts: [(steps: [ChunkWalk.Step], health: EtokHealth)] = []
    for seekable in [true, false] {
        guard let source = try? ChunkSource(bytes: bytes, name: "fuzz.etok", seekable: seekable) else { continue }
        let walk = source.walk()
        var steps: [ChunkWalk.Step] = []
        while let step = try? walk.next() { steps.append(step) }
        _ = walk.health.description
        _ = walk.damage.map(\.description)
        verdicts.append((steps, walk.health))
    }
    guard let file = verdicts.first else { return nil }
    let chunks = file.steps.filter { if case .chunk = $0 { return true } else { return false } }.count
    let agree = verdicts.allSatisfy { sameSteps($0.steps, file.steps) && $0.health == file.health }
    return (chunks, file.steps.count - chunks, agree)
}

/// Whether two walks met the same steps, floats compared bit for bit: `==` says NaN ≠ NaN, and a
/// block's `mse` may be NaN (§5: not measured), which would make two identical walks differ.
func sameSteps(_ a: [ChunkWalk.Step], _ b: [ChunkWalk.Step]) -> Bool {
    func bits(_ c: Chunk) -> [[UInt64]] {
        let table = c.blocks.map { [UInt64(c.firstBlock), UInt64($0.kept), UInt64($0.frames), UInt64(bitPattern: $0.pts), UInt64($0.mse.bitPattern)] }
        switch c.tokens {
        case .fsq(let blocks): return table + [[0]] + blocks.map { $0.map { UInt64(UInt32(bitPattern: $0)) } }
        case .vae(let blocks): return table + [[1]] + blocks.map { $0.map { UInt64($0.bitPattern) } }
        }
    }
    return a.count == b.count && zip(a, b).allSatisfy { x, y in
        if case .chunk(let c) = x, case .chunk(let d) = y { return bits(c) == bits(d) }
        return x == y
    }
}
