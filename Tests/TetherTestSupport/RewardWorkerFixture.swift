import Foundation

/// A reward worker for tests (the reward-service protocol of proto/README.md) that misbehaves on
/// request: every sample scores exactly 1.0 (component `one`), except the requests that
/// `FIXTURE_PLAN` names by their number, counted across all its processes (`3=nan,4=wrong_count`):
/// `nan` (a NaN reward), `wrong_count` (one result short), `bad_json`, `hang`, `exit` (dies),
/// `error` (an error reply), `version:NAME` (from this request on, the reward version is NAME).
/// With `FIXTURE_EVAL=nan`, a request whose samples carry no `finish_reason` (a held-out
/// evaluation's, not an actor's) is answered with a NaN, whatever the plan.
/// Each process writes `pid-<pid>` into `FIXTURE_DIR`; its reward version
/// is the content of `FIXTURE_DIR/version` when that file exists, read at every request.
public enum RewardWorkerFixture {
    public static let script = #"""
    import fcntl, json, os, sys, time
    d = os.environ["FIXTURE_DIR"]
    open(os.path.join(d, "pid-%d" % os.getpid()), "w").close()
    plan = dict(item.split("=") for item in os.environ.get("FIXTURE_PLAN", "").split(",") if item)
    def version():
        path = os.path.join(d, "version")
        return open(path).read().strip() if os.path.exists(path) else "fixture-1"
    print(json.dumps({"tether_reward_worker": 1, "version": version()}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        with open(os.path.join(d, "counter"), "a+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            f.seek(0)
            n = len(f.read()) + 1
            f.write("x")
        mode = plan.get(str(n), "ok")
        if os.environ.get("FIXTURE_EVAL") == "nan" and all("finish_reason" not in s.get("metadata", {}) for s in request["samples"]):
            mode = "nan"
        results = [{"reward": 1.0, "components": {"one": 1.0}} for _ in request["samples"]]
        if mode.startswith("version:"):
            with open(os.path.join(d, "version"), "w") as f:
                f.write(mode[len("version:"):])
        elif mode == "nan":
            results[0]["reward"] = float("nan")
        elif mode == "wrong_count":
            results = results[:-1]
        elif mode == "bad_json":
            print("{not json", flush=True)
            continue
        elif mode == "hang":
            time.sleep(3600)
        elif mode == "exit":
            sys.exit(3)
        elif mode == "error":
            print(json.dumps({"id": request["id"], "error": "boom"}), flush=True)
            continue
        print(json.dumps({"id": request["id"], "version": version(), "results": results}), flush=True)
    """#

    /// Writes the script into `directory` and returns the shell command that runs it.
    public static func install(in directory: URL) throws -> String {
        let path = directory.appendingPathComponent("fixture_worker.py")
        try script.write(to: path, atomically: true, encoding: .utf8)
        return "\(PeerPython.name) \(path.path)"
    }

    /// Process ids the fixture's processes wrote into `directory`.
    public static func pids(in directory: URL) -> [Int32] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? [])
            .filter { $0.hasPrefix("pid-") }.compactMap { Int32($0.dropFirst(4)) }
    }
}
