// The plain (not libFuzzer) entry point of `etok-fuzz-reader`: replays files through the fuzz
// function, or writes the seed corpus. Left out when run.sh builds with `-sanitize=fuzzer` and
// `-DETOK_LIBFUZZER`: libFuzzer brings its own `main`.
#if !ETOK_LIBFUZZER
import Foundation

@main
enum Main {
    static let usage = """
        usage: etok-fuzz-reader FILE…            replay inputs as libFuzzer would (one summary line each)
               etok-fuzz-reader --make-corpus DIR  write the seed corpus (Tools/fuzz/corpus)
        """

    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        if arguments.first == "--make-corpus", arguments.count == 2 {
            do {
                try MakeCorpus.write(to: arguments[1])
            } catch {
                FileHandle.standardError.write(Data("etok-fuzz-reader: \(error)\n".utf8))
                exit(1)
            }
            return
        }
        guard !arguments.isEmpty, !arguments.contains(where: { $0.hasPrefix("-") }) else {
            FileHandle.standardError.write(Data((usage + "\n").utf8))
            exit(64)
        }
        for path in arguments {
            guard let data = FileManager.default.contents(atPath: path) else {
                FileHandle.standardError.write(Data("etok-fuzz-reader: cannot read \(path)\n".utf8))
                exit(66)
            }
            let bytes = [UInt8](data)
            _ = bytes.withUnsafeBufferPointer { fuzzOneInput($0.baseAddress, $0.count) }
            let name = (path as NSString).lastPathComponent
            if let found = readEverything(bytes) {
                print("\(name): \(found.chunks) chunks, \(found.damaged) damaged ranges")
            } else {
                print("\(name): header unusable")
            }
        }
    }
}
#endif
