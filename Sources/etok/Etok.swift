import ArgumentParser
import EtokIO
import EtokTensor

/// The `etok` command: lists the subcommands; each lives in its own file.
@main
struct Etok: ParsableCommand {
    static func main() {
        StandardError.reserveStandardDescriptors()
        // Then the OpenBLAS kernels for this CPU (may re-execute etok with them, see BLASKernels).
        if let warning = BLASKernels.prepareAtStart() { printError("etok: warning: \(warning)") }
        ExitCodes.main(Etok.self, arguments: Array(CommandLine.arguments.dropFirst()))
    }

    /// `etok` alone: a one-line hint and status 64 (a command line that does nothing is a mistake).
    func run() throws {
        printError("etok: give a subcommand: encode, decode, info, export, import, probe, preview or model (see 'etok --help')")
        throw ExitCode(ExitCodes.usage)
    }

    static let configuration = CommandConfiguration(
        commandName: "etok",
        abstract: "ElasticTok: adaptive video tokenizer (variable tokens per frame).",
        discussion: """
        Examples:
          etok encode clip.mp4 -o clip.etok     video -> tokens, few per easy frame
          etok encode clips/*.mp4 -o tokens/    a batch (also --manifest, --shard I/N)
          etok info clip.etok                   tokens, savings, quality, health
          etok decode clip.etok -o back.mp4     tokens -> video (128x128)
          etok export clip.etok --format npy -o tokens/
          etok import tokens/ -o new.etok       tokens (edited, generated) -> .etok
          etok probe clip.mp4                   what the input holds
          etok preview clip.mp4 -o seen.mp4     the frames the model will see
          ffmpeg -i clip.mov -f nut -c:v rawvideo - | etok encode - -o clip.etok

        Exit status:
          0 ok                      64 bad command line
          2 some inputs of a batch failed (listed in DIR/failures.jsonl)
          65 unusable input data    66 input missing or empty
          69 unsupported codec or CPU (bf16)   70 FFmpeg failure
          73 output not created (exists: use -y; no folder; no rights;
             a file appeared under its name meanwhile: not replaced)
          74 write failed (disk full)
          130 interrupted (Ctrl-C)  143 terminated (SIGTERM)
          141 output pipe closed
        """,
        version: "0.1.0",
        subcommands: [Encode.self, Decode.self, Info.self, Export.self, Import.self, Probe.self, Preview.self, ModelCommand.self]
    )
}
