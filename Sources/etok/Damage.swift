import ArgumentParser
import EtokFormat
import EtokTokenizer

/// `--skip-damaged`, shared by `etok decode` and `etok export`: what to do with a damaged or
/// truncated `.etok` (docs/etok-format.md §7 "Damage").
struct DamageOptions: ParsableArguments {
    @Flag(name: .customLong("skip-damaged"),
          help: ArgumentHelp("Keep going past damaged or missing chunks: write what is readable and print one warning per damaged range (even with -q). Without it a damaged or truncated file is an error (exit 65) and no output file is left."))
    var skipDamaged = false
}

/// How the commands word damage on stderr.
enum DamageMessages {
    /// One warning line per skipped range: "etok: warning: skipped blocks 12–15 of x.etok: bad
    /// checksum (CRC) in CHNK record at offset 1392".
    static func warn(_ ranges: [DamagedRange]) {
        for r in ranges {
            if r.losesBlocks {
                printError("etok: warning: skipped \(r.blocksText) of \(r.file): \(r.reason.problem)")
            } else {
                printError("etok: warning: \(r.file): \(r.reason.problem) (no blocks lost)")
            }
        }
    }

    /// The summary's note on skipped damage ("; skipped 2 damaged ranges"), or "".
    static func summaryNote(_ ranges: [DamagedRange]) -> String {
        ranges.isEmpty ? "" : "; skipped \(BlockRangeText.count(ranges.count, "damaged range"))"
    }

    /// The error for damage met without `--skip-damaged`: the first range, how many more, and the way out.
    static func refusal(_ ranges: [DamagedRange]) -> FormatError {
        FormatError.damaged(ranges[0], others: ranges.count - 1, hint: DecodeRun.skipHint)
    }

    /// The error when nothing but damage is readable, even with `--skip-damaged`.
    static func nothingReadable(_ ranges: [DamagedRange]) -> FormatError {
        FormatError.damaged(ranges[0], others: ranges.count - 1, hint: "no readable blocks")
    }
}
