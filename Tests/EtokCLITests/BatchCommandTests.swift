import Foundation
import XCTest

/// `etok encode IN... -o DIR/`, `--manifest`, `--shard`, resuming, and export/info over many files
/// (issue 17). Clips are a few tiny testsrc2 frames so the debug build stays quick.
final class BatchCommandTests: CLITestCase {
    /// `count` short clips c0.mp4 ... in the test folder; returns their paths.
    func makeClips(_ count: Int, frames: Int = 3) throws -> [String] {
        try (0..<count).map { try makeClip("c\($0).mp4", frames: frames, size: "64x48") }
    }

    func json(_ path: String) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
    }

    func jsonLines(_ path: String) throws -> [[String: Any]] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map {
            try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
    }

    func testBatchWithABrokenInputEncodesTheGoodOnesAndExitsTwo() throws {
        let clips = try makeClips(3)
        let broken = path("broken.mp4")
        try Data("not a video at all".utf8).write(to: URL(fileURLWithPath: broken))
        let out = path("out") + "/"
        let r = try CLI.etok(["encode", clips[0], broken, clips[1], clips[2], "-o", out], timeout: 180)
        XCTAssertEqual(r.status, 2, r.stderr)
        let brokenLines = r.errorLines.filter { $0.contains("broken.mp4") && !$0.contains("inputs →") }
        XCTAssertEqual(brokenLines.count, 1, r.stderr)
        XCTAssertTrue(brokenLines[0].contains("not a video"), r.stderr)
        for clip in clips {   // absolute inputs: under @root/, the input's path kept
            let output = out + "@root" + clip + ".etok"
            XCTAssertTrue(FileManager.default.fileExists(atPath: output), output)
        }
        let failures = try jsonLines(out + "failures.jsonl")
        XCTAssertEqual(failures.count, 1)
        XCTAssertEqual(failures.first?["input"] as? String, broken)
        XCTAssertEqual(failures.first?["status"] as? Int, 65)
        let summary = try json(out + "summary.json")
        XCTAssertEqual(summary["encoded"] as? Int, 3)
        XCTAssertEqual(summary["failed"] as? Int, 1)
        XCTAssertEqual(summary["frames"] as? Int, 9)
        XCTAssertTrue(r.stderr.contains("3 encoded, 0 skipped (already done), 1 failed"), r.stderr)

        // Every input bad: the first failure's own status, not 2.
        let allBad = try CLI.etok(["encode", broken, path("missing.mp4"), "-o", path("out2") + "/"])
        XCTAssertEqual(allBad.status, 65, allBad.stderr)
    }

    func testRelativeInputsKeepTheirPathsAndTheManifestNamesOutputsAndKeys() throws {
        _ = try makeClips(2)
        try FileManager.default.createDirectory(atPath: path("sub"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: path("c0.mp4"), toPath: path("sub/c0.mp4"))
        let manifest = "c0.mp4\n# a comment\n\nsub/c0.mp4\n{\"input\": \"c1.mp4\", \"key\": \"one\", \"output\": \"named/x.etok\"}\n"
        try Data(manifest.utf8).write(to: dir.appendingPathComponent("list.txt"))
        let r = try runIn(dir, ["encode", "--manifest", "list.txt", "-o", "out/"])
        XCTAssertEqual(r.status, 0, r.stderr)
        for output in ["out/c0.mp4.etok", "out/sub/c0.mp4.etok", "out/named/x.etok"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: path(output)), output)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("out/failures.jsonl")))

        // Two items with one output: refused before any work, naming the line.
        try Data("c0.mp4\n./c0.mp4\n".utf8).write(to: dir.appendingPathComponent("dup.txt"))
        let dup = try runIn(dir, ["encode", "--manifest", "dup.txt", "-o", "out3/"])
        XCTAssertEqual(dup.status, 65, dup.stderr)
        XCTAssertTrue(dup.stderr.contains("dup.txt: line 2"), dup.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("out3")))

        // Several inputs and -o naming no folder: a usage error, nothing made.
        let noFolder = try runIn(dir, ["encode", "c0.mp4", "c1.mp4", "-o", "x.etok"])
        XCTAssertEqual(noFolder.status, 64, noFolder.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("x.etok")))
    }

    func testShardsOfOneTwoAndThreeCoverEveryItemExactlyOnce() throws {
        // Missing inputs fail at once, and each shard's failures file lists its share: the shard
        // choice is checked through the command line without encoding anything.
        let names = (0..<40).map { "clip-\($0).mp4" }
        try Data(names.joined(separator: "\n").utf8).write(to: dir.appendingPathComponent("list.txt"))
        for n in 1...3 {
            var seen: [String] = []
            for i in 0..<n {
                let out = "out\(n)/"
                let r = try runIn(dir, ["encode", "--manifest", "list.txt", "-o", out, "--shard", "\(i)/\(n)", "-q"])
                let file = path(out + "failures.shard-\(i)-of-\(n).jsonl")
                let share = FileManager.default.fileExists(atPath: file) ? try jsonLines(file).compactMap { $0["key"] as? String } : []
                XCTAssertEqual(r.status, share.isEmpty ? 0 : 66, r.stderr)
                seen += share
            }
            XCTAssertEqual(seen.sorted(), names.sorted(), "N = \(n)")
        }
        // And a real encode of one shard writes exactly its items.
        let clips = try makeClips(3)
        let all = try runIn(dir, ["encode"] + clips.map { URL(fileURLWithPath: $0).lastPathComponent } + ["-o", "sh/", "--shard", "0/2"])
        XCTAssertEqual(all.status, 0, all.stderr)
        let other = try runIn(dir, ["encode"] + clips.map { URL(fileURLWithPath: $0).lastPathComponent } + ["-o", "sh/", "--shard", "1/2"])
        XCTAssertEqual(other.status, 0, other.stderr)
        XCTAssertEqual(try files(in: path("sh")).filter { $0.hasSuffix(".etok") }, ["c0.mp4.etok", "c1.mp4.etok", "c2.mp4.etok"])
        let s0 = try json(path("sh/summary.shard-0-of-2.json")), s1 = try json(path("sh/summary.shard-1-of-2.json"))
        XCTAssertEqual((s0["encoded"] as? Int ?? 0) + (s1["encoded"] as? Int ?? 0), 3)
    }

    func testRerunAfterKill9EncodesOnlyWhatIsMissing() throws {
        let clips = try makeClips(8, frames: 8)
        let names = clips.map { URL(fileURLWithPath: $0).lastPathComponent }
        let out = path("out")
        // One file at a time, killed once the first output is in place.
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try CLI.etok)
        process.currentDirectoryURL = dir
        process.arguments = ["encode"] + names + ["-o", "out/", "--threads", "1", "-q"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(120)
        func finals() -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: out)) ?? []).filter { $0.hasSuffix(".etok") } }
        while finals().isEmpty && process.isRunning && Date() < deadline { usleep(10_000) }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        let done = finals()
        XCTAssertGreaterThan(done.count, 0)
        XCTAssertLessThan(done.count, names.count, "the run ended before it could be killed midway")
        // Whatever was left under a temporary name is never an output; a cut final file is redone.
        XCTAssertTrue(done.allSatisfy { !$0.hasPrefix(".") })
        let cut = path("out/" + names.last! + ".etok")
        try Data(try Data(contentsOf: URL(fileURLWithPath: path("out/" + done[0]))).prefix(300)).write(to: URL(fileURLWithPath: cut))

        let rerun = try runIn(dir, ["encode"] + names + ["-o", "out/"])
        XCTAssertEqual(rerun.status, 0, rerun.stderr)
        let summary = try json(path("out/summary.json"))
        XCTAssertEqual(summary["skipped"] as? Int, done.count)
        XCTAssertEqual(summary["encoded"] as? Int, names.count - done.count)
        // Every output whole, and each decodes.
        let outputs = names.map { path("out/\($0).etok") }
        let info = try CLI.etok(["info"] + outputs)
        XCTAssertEqual(info.status, 0, info.stderr)
        for output in outputs {
            let decoded = try CLI.etok(["decode", output, "-o", output + ".y4m", "-q"])
            XCTAssertEqual(decoded.status, 0, decoded.stderr)
        }
        // A third run has nothing to do; -y redoes everything.
        let again = try runIn(dir, ["encode"] + names + ["-o", "out/"])
        XCTAssertTrue(again.stderr.contains("0 encoded, \(names.count) skipped"), again.stderr)
        let redo = try runIn(dir, ["encode"] + names + ["-o", "out/", "-y"])
        XCTAssertTrue(redo.stderr.contains("\(names.count) encoded, 0 skipped"), redo.stderr)
    }

    func testExportShardsReadBackWithTarfileAndNumpyToTheTokensOfEachClip() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/env") else { throw XCTSkip("no /usr/bin/env") }
        let clips = try makeClips(3, frames: 4)
        let encoded = try CLI.etok(["encode"] + clips + ["-o", path("tok") + "/"])
        XCTAssertEqual(encoded.status, 0, encoded.stderr)
        let streams = clips.map { path("tok") + "/@root" + $0 + ".etok" }
        // Small shards: one clip each (about 12 KiB a sample here), so the roll-over is exercised.
        let shards = try CLI.etok(["export"] + streams + ["-o", path("ds"), "--shard-size", "14K"])
        XCTAssertEqual(shards.status, 0, shards.stderr)
        for (k, stream) in streams.enumerated() {
            let single = try CLI.etok(["export", stream, "-o", path("single\(k)") + "/"])
            XCTAssertEqual(single.status, 0, single.stderr)
        }
        let script = """
        import io, json, sys, tarfile, numpy as np
        ds, n = sys.argv[1], int(sys.argv[2])
        index = json.load(open(ds + "/index.json"))
        samples = {}
        for shard in index["shards"]:
            with tarfile.open(ds + "/" + shard["file"]) as tar:
                for m in tar.getmembers():
                    key, field = m.name.split(".", 1)
                    data = tar.extractfile(m).read()
                    samples.setdefault(key, {})[field] = json.loads(data) if field == "json" else np.load(io.BytesIO(data))
        assert len(index["shards"]) >= 2, index
        assert sorted(samples) == sorted(k for s in index["shards"] for k in s["keys"]), samples.keys()
        assert len(samples) == n
        for k, key in enumerate(sorted(samples)):
            s = samples[key]
            for name in ["lengths", "tokens", "pts", "blocks", "frames", "chunks"]:
                want = np.load(sys.argv[3] + str(k) + "/" + name + ".npy")
                got = s[name + ".npy"]
                assert got.dtype == want.dtype and np.array_equal(got, want), (key, name)
            assert s["json"]["frames"] == int(s["frames.npy"].sum())
            assert len(s["json"]["psnr"]) == len(s["lengths.npy"])
            assert len(s["json"]["model_sha256"]) == 64
        try:
            import webdataset as wds
        except ImportError:
            wds = None
        if wds is not None:   # the webdataset package reads the same samples
            urls = [ds + "/" + s["file"] for s in index["shards"]]
            read = {s["__key__"]: s for s in wds.WebDataset(urls, shardshuffle=False).decode()}
            assert sorted(read) == sorted(samples)
            for key, s in read.items():
                assert np.array_equal(s["tokens.npy"], samples[key]["tokens.npy"]), key
                assert s["json"]["model_sha256"] == samples[key]["json"]["model_sha256"]
        print("ok", len(samples), "webdataset" if wds else "no-webdataset")
        """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script, path("ds"), "\(clips.count)", path("single")]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        if output.contains("No module named 'numpy'") { throw XCTSkip("python3 has no numpy") }
        XCTAssertEqual(process.terminationStatus, 0, output)
        XCTAssertTrue(output.contains("ok 3"), output)
    }

    func testInfoOverManyFilesPrintsATableWithTotalsAndJSONLines() throws {
        let clips = try makeClips(2)
        XCTAssertEqual(try CLI.etok(["encode"] + clips + ["-o", path("tok") + "/"]).status, 0)
        let streams = clips.map { path("tok") + "/@root" + $0 + ".etok" }
        let table = try CLI.etok(["info"] + streams)
        XCTAssertEqual(table.status, 0, table.stderr)
        let lines = String(decoding: table.stdout, as: UTF8.self).split(separator: "\n")
        XCTAssertEqual(lines.count, 4)   // heading, two rows, totals
        XCTAssertTrue(lines[3].hasPrefix("total: 2 files"), String(lines[3]))
        XCTAssertTrue(lines[3].contains(" 6 "), String(lines[3]))   // 3 + 3 frames
        let bad = path("bad.etok")
        try Data("nope".utf8).write(to: URL(fileURLWithPath: bad))
        let jsonl = try CLI.etok(["info", "--json"] + streams + [bad])
        XCTAssertEqual(jsonl.status, 2, jsonl.stderr)
        let objects = try String(decoding: jsonl.stdout, as: UTF8.self).split(separator: "\n").map {
            try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
        XCTAssertEqual(objects.count, 3)
        XCTAssertEqual(objects[0]["frames"] as? Int, 3)
        XCTAssertEqual(objects[2]["file"] as? String, bad)
        XCTAssertNotNil(objects[2]["error"])
    }

    /// Runs etok with `folder` as its working directory.
    func runIn(_ folder: URL, _ arguments: [String]) throws -> CLI.Result {
        try CLI.etok(arguments, directory: folder)
    }
}
