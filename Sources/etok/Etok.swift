import ArgumentParser

/// The `etok` command: lists the subcommands; each lives in its own file.
@main
struct Etok: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "etok",
        abstract: "ElasticTok: adaptive video tokenizer (variable tokens per frame).",
        discussion: """
        Examples:
          etok probe clip.mp4                 show what the input holds
          etok preview clip.mp4 -o seen.mp4   write the frames the model will see
        """,
        version: "0.1.0",
        subcommands: []
    )
}
