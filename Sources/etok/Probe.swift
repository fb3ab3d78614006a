import ArgumentParser
import EtokMedia
import Foundation

/// `etok probe`: what the input holds, read from its headers and by decoding every frame
/// (container frame counts can be wrong; the count shown is what decodes).
struct Probe: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what a video holds: container, codec, size, aspect, rotation, rate, duration, frames.",
        discussion: """
        The frame count comes from decoding the whole stream, so it is the true one (headers can \
        lie); --headers-only skips that.

        Examples:
          etok probe Samples/bikes.mp4
          etok probe --json Samples/tree.avi
          ffmpeg -loglevel error -i clip.mov -f nut - | etok probe -
          etok probe - --input-format rawvideo --size 176x144 --rate 29.97 < frames.rgb
        """)

    @Argument(help: "Video file, or - for stdin.")
    var input: String

    @Flag(help: "Print JSON instead of text.")
    var json = false

    @Flag(name: .customLong("headers-only"), help: "Do not decode: report only what the headers say.")
    var headersOnly = false

    @OptionGroup(title: "Input")
    var inputFormat: InputFormatOptions

    @OptionGroup(title: "Common")
    var common: CommonOptions

    /// What `--json` prints.
    struct Report: Codable {
        var info: VideoInfo
        var decodedFrames: Int?
        var decodeErrors: Int?
        var firstTimestamp: Double?
        var lastTimestamp: Double?
    }

    func run() throws {
        common.applyLogging()
        try ExitCodes.reporting {
            let source = try VideoSource(path: input, options: inputFormat.inputOptions())
            var report = Report(info: source.info)
            if !headersOnly {
                var first: Double?, last: Double?
                while let frame = try source.nextFrame() {
                    if first == nil { first = frame.seconds }
                    last = frame.seconds
                }
                report.decodedFrames = source.framesDecoded
                report.decodeErrors = source.decodeErrors
                report.firstTimestamp = first
                report.lastTimestamp = last
            }
            print(json ? try Probe.json(report) : Probe.text(report))
        }
    }

    static func json(_ report: Report) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(report), as: UTF8.self)
    }

    static func text(_ r: Report) -> String {
        let i = r.info
        func row(_ name: String, _ value: String) -> String { name.padding(toLength: 14, withPad: " ", startingAt: 0) + value }
        var rows = [
            row("input", i.input),
            row("container", i.container),
            row("video", "\(i.codec), \(i.width)x\(i.height), \(i.pixelFormat), colour \(i.colorSpace)/\(i.colorRange)"),
            row("aspect", "pixels \(i.sampleAspect.num):\(i.sampleAspect.den), rotation \(i.rotation)°"),
            row("frame rate", (i.frameRate.map { String(format: "%.3f fps", $0) } ?? "unknown") + ", time base \(i.timeBase)"),
            row("duration", i.isStill ? "still picture" : (i.duration.map { String(format: "%.3f s", $0) } ?? "unknown")),
        ]
        let claimed = i.containerFrameCount.map { "container says \($0)" } ?? "container does not say"
        if let decoded = r.decodedFrames {
            var frames = "\(decoded) decoded (\(claimed))"
            if let first = r.firstTimestamp, let last = r.lastTimestamp, decoded > 1 {
                frames += String(format: ", timestamps %.3f–%.3f s", first, last)
            }
            rows.append(row("frames", frames))
            rows.append(row("decode errors", "\(r.decodeErrors ?? 0)"))
        } else {
            rows.append(row("frames", claimed))
        }
        if let bitRate = i.bitRate { rows.append(row("bit rate", "\(bitRate / 1000) kb/s")) }
        return rows.joined(separator: "\n")
    }
}
