import Foundation
import TetherCluster
import TetherWire
import XCTest
import Yams

/// `cluster/k8s/`: the shipped manifests pass every consistency rule of `KubernetesManifests`, each
/// rule fires on a manifest broken in memory, the pods' command lines run a real learner and real
/// actors here (paths, host and ports mapped to this machine), and, where the tools are installed,
/// kustomize renders them and the Kubernetes OpenAPI schema accepts them.
final class KubernetesManifestTests: XCTestCase {
    func testShippedManifestsAreConsistent() throws {
        let m = try KubernetesManifests()
        XCTAssertEqual(m.problems(), [])
        XCTAssertEqual(Set(m.objects.map { "\($0.kind)/\($0.name)" }),
                       ["ConfigMap/tether-config", "Secret/tether-curve-keys", "PersistentVolumeClaim/tether-runs",
                        "Deployment/tether-learner", "Service/tether-learner", "Deployment/tether-actor"])
        let actor = try XCTUnwrap(m.containers.first(where: \.isActor))
        let config = try m.runConfig(for: actor)
        XCTAssertEqual(config.staleness.maxStaleness, 2)
        XCTAssertEqual(config.actors.count, 2)
        XCTAssertEqual(config.learner.controlEndpoint, "tcp://tether-learner:5555")
        let learner = try XCTUnwrap(m.containers.first(where: \.isLearner))
        XCTAssertEqual(try m.runConfig(for: learner).learner.weightsEndpoint, "tcp://*:5557")
    }

    /// Applying the placeholder Secret by mistake gives a learner that stops with the reason
    /// instead of serving without real keys.
    func testPlaceholderSecretIsRefusedWithTheReason() throws {
        let m = try KubernetesManifests()
        let secret = try XCTUnwrap(m.object("Secret", "tether-curve-keys")?.body["stringData"] as? [String: String])
        XCTAssertEqual(Set(secret.keys), ["learner.key", "learner.pub", "actor.key", "actor.pub"])
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tether-k8s-placeholder-\(getpid())-\(UInt32.random(in: 0 ... .max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        for (file, text) in secret { try text.write(to: dir.appendingPathComponent(file), atomically: true, encoding: .utf8) }
        let config = try RunConfig.load(yaml: "wire: {curve_keys_dir: \(dir.path)}")
        XCTAssertThrowsError(try ClusterSecurity.learnerContext(config: config)) { error in
            XCTAssertTrue("\(error)".contains("actor.pub must be 40 Z85 characters"), "\(error)")
        }
    }

    /// One mutation per rule: each must be reported by name, so no rule passes vacuously.
    func testEachRuleReportsItsBrokenManifest() throws {
        let shipped = try KubernetesManifests.shippedTexts()
        let cases: [(file: String, old: String, new: String, expected: String)] = [
            ("actor.yaml", "apiVersion: apps/v1", "apiVersion: apps/v1beta1", "apiVersion apps/v1beta1, expected apps/v1"),
            ("configmap.yaml", "kind: ConfigMap", "kind: ConfigMapp", "ConfigMapp tether-config: unexpected kind"),
            ("actor.yaml", "matchLabels:\n      app.kubernetes.io/name: tether\n      app.kubernetes.io/component: actor",
             "matchLabels:\n      app.kubernetes.io/name: tether\n      app.kubernetes.io/component: actors", "does not match pod template labels"),
            ("actor.yaml", "matchLabels:\n      app.kubernetes.io/name: tether\n      app.kubernetes.io/component: actor",
             "matchLabels:\n      app.kubernetes.io/name: tether", "selector also selects the pods of Deployment tether-learner"),
            ("learner.yaml", "type: Recreate", "type: RollingUpdate", "the learner needs strategy Recreate"),
            ("learner.yaml", "spec:\n  replicas: 1", "spec:\n  replicas: 2", "the learner needs replicas 1"),
            ("learner.yaml", "  selector:\n    app.kubernetes.io/name: tether\n    app.kubernetes.io/component: learner",
             "  selector:\n    app.kubernetes.io/name: tether\n    app.kubernetes.io/component: actor", "does not match the learner pod labels"),
            ("learner.yaml", "port: 5556", "port: 5566", "exposes no port 5556 for the actors' trajectories endpoint"),
            ("learner.yaml", "containerPort: 5557", "containerPort: 5558", "declares no containerPort 5557"),
            ("learner.yaml", "targetPort: control", "targetPort: ctrl", "port 5555 reaches no learner container port"),
            ("learner.yaml", "learner.control_endpoint=tcp://*:5555", "learner.control_endpoint=tcp://tether-learner:5555",
             "it must bind all interfaces"),
            ("learner.yaml", "learner.weights_endpoint=tcp://*:5557", "learner.weights_endpoint=tcp://*:5559",
             "the actors' weights endpoint tcp://tether-learner:5557 does not reach the port the learner binds"),
            ("configmap.yaml", "trajectory_endpoint: tcp://tether-learner:5556", "trajectory_endpoint: tcp://127.0.0.1:5556",
             "actors connect to tcp://127.0.0.1:5556 for trajectories, not to a Service"),
            ("configmap.yaml", "max_staleness: 2", "max_stalenes: 2", "staleness.max_stalenes: unknown key; did you mean max_staleness?"),
            ("configmap.yaml", "curve_keys_dir: /etc/tether/keys", "curve_keys_dir: \"\"", "wire.curve_keys_dir is empty"),
            ("actor.yaml", "name: tether-config", "name: tether-cfg", "references ConfigMap tether-cfg, which no manifest defines"),
            ("learner.yaml", "secretName: tether-curve-keys", "secretName: tether-keys", "references Secret tether-keys, which no manifest defines"),
            ("learner.yaml", "- key: actor.pub", "- key: actors.pub", "projects key actors.pub, which Secret tether-curve-keys lacks"),
            ("actor.yaml", "              - key: learner.pub\n                path: learner.pub\n", "",
             "the actor reads learner.pub from wire.curve_keys_dir, but its Secret volume does not provide it"),
            ("learner.yaml", "claimName: tether-runs", "claimName: tether-run", "references PersistentVolumeClaim tether-run"),
            ("learner.yaml", "value: /var/lib/tether/runs/k8s", "value: /tmp/runs/k8s", "the run directory '/tmp/runs/k8s' is not on a PersistentVolumeClaim"),
            ("actor.yaml", "            - name: curve-keys\n              mountPath", "            - name: keys\n              mountPath",
             "volumeMount keys names no volume of the pod"),
            ("actor.yaml", "requests:\n              cpu: \"1\"", "requests:\n              cpu: 1500m", "CPU request 1.5 differs from actors.blas_threads 1"),
            ("learner.yaml", "limits:\n              cpu: \"2\"", "limits:\n              cpu: \"4\"", "CPU limit 4.0 differs from the request"),
            ("learner.yaml", "- --threads\n            - \"2\"", "- --threads\n            - \"1\"", "--threads 1 differs from learner.blas_threads 2"),
            ("configmap.yaml", "blas_threads: 1 ", "blas_threads: 2 ", "CPU request 1.0 differs from actors.blas_threads 2"),
            ("actor.yaml", "- $(POD_NAME)", "- actor-1", "the actor id must be --id $(POD_NAME)"),
            ("actor.yaml", "fieldPath: metadata.name", "fieldPath: metadata.namespace", "the actor id must be --id $(POD_NAME)"),
            ("actor.yaml", "replicas: 2", "replicas: 3", "replicas 3 differs from actors.count 2"),
        ]
        for c in cases {
            var texts = shipped
            let text = try XCTUnwrap(texts[c.file])
            XCTAssertTrue(text.contains(c.old), "\(c.file) no longer contains \(c.old.debugDescription): update this mutation")
            texts[c.file] = text.replacingOccurrences(of: c.old, with: c.new)
            let problems = try KubernetesManifests(texts: texts).problems()
            XCTAssertTrue(problems.contains { $0.contains(c.expected) },
                          "\(c.file): \(c.old.debugDescription) → \(c.new.debugDescription) should report \"\(c.expected)\"; got \(problems)")
        }
    }

    /// kustomization.yaml applies every object except the placeholder Secret; `kubectl kustomize`
    /// (offline) renders exactly those when kubectl is installed.
    func testKustomizationAppliesEverythingButThePlaceholderSecret() throws {
        let texts = try KubernetesManifests.shippedTexts()
        let k = try XCTUnwrap(Yams.load(yaml: try XCTUnwrap(texts["kustomization.yaml"])) as? [String: Any])
        XCTAssertEqual(k["resources"] as? [String], KubernetesManifests.manifestFiles.filter { $0 != "secret.yaml" })
        let m = try KubernetesManifests()
        let expected = Set(m.objects.filter { $0.kind != "Secret" }.map { "\($0.kind)/\($0.name)" })

        guard let kubectl = Self.executable("kubectl") else { throw XCTSkip("kubectl is not installed: `kubectl kustomize cluster/k8s` not run") }
        let (status, output) = try Self.run(kubectl, ["kustomize", KubernetesManifests.directory.path])
        XCTAssertEqual(status, 0, output)
        var rendered = Set<String>()
        for case let o as [String: Any] in try Yams.load_all(yaml: output) {
            rendered.insert("\(o["kind"] ?? "")/\((o["metadata"] as? [String: Any])?["name"] ?? "")")
        }
        XCTAssertEqual(rendered, expected)
    }

    /// The Kubernetes OpenAPI schema (strict: unknown fields are errors), via the PyPI package
    /// `kubernetes-validate`, which bundles the schemas and runs offline.
    func testManifestsMatchTheKubernetesOpenAPISchema() throws {
        // The peers venv scripts/test creates holds it beside its Python.
        let env = ProcessInfo.processInfo.environment
        let peersBin = URL(fileURLWithPath: env["TETHER_PYTHON"] ?? "/tmp/peers/bin/python").deletingLastPathComponent()
        let candidates = [env["KUBERNETES_VALIDATE"], peersBin.appendingPathComponent("kubernetes-validate").path,
                          "/tmp/peers/bin/kubernetes-validate"].compactMap { $0 }
        guard let tool = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) ?? Self.executable("kubernetes-validate") else {
            throw XCTSkip("kubernetes-validate is not installed (scripts/test installs it into the peers venv; tried \(candidates) and PATH)")
        }
        let files = KubernetesManifests.manifestFiles.map { KubernetesManifests.directory.appendingPathComponent($0).path }
        let (status, output) = try Self.run(tool, ["--strict"] + files)
        XCTAssertEqual(status, 0, output)
        XCTAssertEqual(output.components(separatedBy: " passed for resource ").count - 1, 6, output)
    }

    /// The image holds what the pods run: the learner's entry point at the path its command names,
    /// the `tether` binary on PATH, and the user the pods' securityContext runs as.
    func testDockerfileProvidesWhatThePodsRun() throws {
        let dockerfile = try String(contentsOf: KubernetesManifests.directory.appendingPathComponent("Dockerfile"), encoding: .utf8)
        let m = try KubernetesManifests()
        let learner = try XCTUnwrap(m.containers.first(where: \.isLearner))
        XCTAssertTrue(dockerfile.contains("COPY cluster/k8s/learner-entrypoint.sh \(learner.args[0])\n"), "the image lacks \(learner.args[0])")
        XCTAssertTrue(dockerfile.contains("COPY --from=build /out/tether /usr/local/bin/tether\n"))
        XCTAssertEqual(try XCTUnwrap(m.containers.first(where: \.isActor)).args.first, "tether")
        for c in m.containers {
            let uid = try XCTUnwrap((c.pod["securityContext"] as? [String: Any])?["runAsUser"] as? Int)
            XCTAssertTrue(dockerfile.contains("USER \(uid):"), "\(c.owner.label) runs as \(uid), the image's USER differs")
        }
        for package in ["libopenblas-dev", "libzmq3-dev", "libprotobuf-c-dev", "swift build -c release"] {
            XCTAssertTrue(dockerfile.contains(package), "Dockerfile: \(package) missing")
        }
    }

    /// Runs the pods' own command lines here: the ConfigMap's config, the Secret's files as each pod
    /// mounts them, the learner's entry point script and bind overrides, `$(POD_NAME)` expanded, and
    /// the Service name resolved to 127.0.0.1 with free ports. The model and run are shrunk through
    /// extra `--set`s. Then the learner is started again on the same run directory, as a rescheduled
    /// pod would be, and must resume from its checkpoint.
    func testPodCommandsRunACURVEClusterAndResume() throws {
        let h = try ClusterHarness("k8s")
        defer { h.cleanup() }
        let m = try KubernetesManifests()
        let learner = try XCTUnwrap(m.containers.first(where: \.isLearner))
        let actor = try XCTUnwrap(m.containers.first(where: \.isActor))
        let free = try FreePort.pick(count: 3)
        func localPorts(_ s: String) -> String {
            zip(["5555", "5556", "5557"], free).reduce(s) { $0.replacingOccurrences(of: ":\($1.0)", with: ":\($1.1)") }
        }

        // The Secret's content, as `tether keygen` would write it.
        let secretDir = h.root.appendingPathComponent("secret").path
        try CurveKeyPair.generate().write(directory: secretDir, name: "learner")
        try CurveKeyPair.generate().write(directory: secretDir, name: "actor")
        let configText = try XCTUnwrap(m.configMapData("tether-config")?["run.yaml"])
        let service = try XCTUnwrap(m.objects("Service").first).name

        /// Maps each of the container's mount paths to a local directory filled like the volume.
        func localize(_ c: KubernetesManifests.Container, role: String) throws -> (args: [String], env: [String: String]) {
            var paths: [(String, String)] = []
            for mount in c.mounts {
                let mountPath = try XCTUnwrap(mount["mountPath"] as? String)
                let volume = try XCTUnwrap(c.volume(named: try XCTUnwrap(mount["name"] as? String)))
                let local = h.root.appendingPathComponent("\(role)\(mountPath)")
                try FileManager.default.createDirectory(at: local, withIntermediateDirectories: true)
                if volume["configMap"] != nil {
                    try localPorts(configText.replacingOccurrences(of: "tcp://\(service):", with: "tcp://127.0.0.1:"))
                        .write(to: local.appendingPathComponent("run.yaml"), atomically: true, encoding: .utf8)
                }
                if let secret = volume["secret"] as? [String: Any] {
                    for item in try XCTUnwrap(secret["items"] as? [[String: Any]]) {
                        try FileManager.default.copyItem(atPath: "\(secretDir)/\(try XCTUnwrap(item["key"] as? String))",
                                                         toPath: local.appendingPathComponent(try XCTUnwrap(item["path"] as? String)).path)
                    }
                }
                paths.append((mountPath, local.path))
            }
            func mapped(_ s: String) -> String { paths.reduce(localPorts(s)) { $0.replacingOccurrences(of: $1.0, with: $1.1) } }
            var env: [String: String] = [:]
            for e in c.env {
                let name = try XCTUnwrap(e["name"] as? String)
                env[name] = (e["value"] as? String).map(mapped) ?? "\(c.owner.name)-test-\(role)"
            }
            var args = c.args.dropFirst().map { arg in env.reduce(mapped(arg)) { $0.replacingOccurrences(of: "$(\($1.key))", with: $1.value) } }
            args += ["--set", "wire.curve_keys_dir=\(mapped(try m.runConfig(for: c).wire.curveKeysDir))"] + Self.shrink.flatMap { ["--set", $0] }
            return (args, env)
        }

        let (learnerArgs, learnerEnv) = try localize(learner, role: "learner")
        XCTAssertFalse(FileManager.default.fileExists(atPath: h.root.appendingPathComponent("learner/etc/tether/keys/actor.key").path),
                       "the learner pod must not receive the actors' secret key")
        let entrypoint = KubernetesManifests.directory.appendingPathComponent("learner-entrypoint.sh")
        let runDir = try XCTUnwrap(learnerEnv["RUN_DIR"])
        let tether = ["TETHER": h.binary.path]
        func startActors(_ round: Int) throws -> [Process] {
            let replicas = try XCTUnwrap((actor.owner.body["spec"] as? [String: Any])?["replicas"] as? Int)
            return try (0..<replicas).map { i in
                let (args, env) = try localize(actor, role: "actor-\(round)-\(i)")
                XCTAssertFalse(FileManager.default.fileExists(atPath: h.root.appendingPathComponent("actor-\(round)-\(i)/etc/tether/keys/learner.key").path),
                               "an actor pod must not receive the learner's secret key")
                XCTAssertTrue(args.contains("tether-actor-test-actor-\(round)-\(i)"), "$(POD_NAME) not expanded: \(args)")
                return try h.start("actor-\(round)-\(i)", executable: h.binary, args, environment: env)
            }
        }

        let first = try h.start("learner", executable: entrypoint, learnerArgs + ["--set", "run.steps=2"], environment: learnerEnv.merging(tether) { $1 })
        let actors = try startActors(0)
        try h.expectCleanExit(first, "learner", timeout: 120)
        for (i, a) in actors.enumerated() { try h.expectCleanExit(a, "actor-0-\(i)", timeout: 30) }
        XCTAssertTrue(h.log("learner").contains("starting a new run in \(runDir)"), h.allLogs())
        XCTAssertTrue(h.log("learner").contains("actor tether-actor-test-actor-0-0 joined"), h.allLogs())
        XCTAssertEqual(Self.metricLines(runDir), 2)

        // The rescheduled pod: same run directory, the entry point must pass --resume.
        let second = try h.start("learner-resumed", executable: entrypoint, learnerArgs + ["--set", "run.steps=4"], environment: learnerEnv.merging(tether) { $1 })
        let actors2 = try startActors(1)
        try h.expectCleanExit(second, "resumed learner", timeout: 120)
        for (i, a) in actors2.enumerated() { try h.expectCleanExit(a, "actor-1-\(i)", timeout: 30) }
        XCTAssertTrue(h.log("learner-resumed").contains("resuming \(runDir) from step-2"), h.allLogs())
        XCTAssertTrue(h.log("learner-resumed").contains("resumed from checkpoint step-2"), h.allLogs())
        XCTAssertEqual(Self.metricLines(runDir), 4)
    }

    /// Overrides that make the ConfigMap's run fit a unit test (the shape ClusterHarness uses).
    static let shrink = [
        "model.hidden_size=32", "model.num_hidden_layers=1", "model.num_attention_heads=2", "model.num_key_value_heads=2",
        "model.intermediate_size=64", "model.max_position_embeddings=64", "task.max_prompt_tokens=16",
        "rollout.group_size=4", "rollout.prompts_per_batch=2", "rollout.prompts_per_ticket=1", "rollout.max_new_tokens=4",
        "checkpoint.every_steps=2", "actors.heartbeat_seconds=0.2", "actors.heartbeat_timeout_seconds=1.5",
    ]

    static func metricLines(_ runDir: String) -> Int {
        let text = (try? String(contentsOfFile: runDir + "/metrics.jsonl", encoding: .utf8)) ?? ""
        return text.split(separator: "\n").count
    }

    static func executable(_ name: String) -> String? {
        let dirs = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
        return dirs.map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Runs a tool to completion (at most 120 s), returning its status and combined output.
    static func run(_ tool: String, _ arguments: [String]) throws -> (Int32, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tool)
        p.arguments = arguments
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("tether-k8s-tool-\(getpid())-\(UInt32.random(in: 0 ... .max)).log")
        FileManager.default.createFile(atPath: out.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: out) }
        let handle = try FileHandle(forWritingTo: out)
        p.standardOutput = handle
        p.standardError = handle
        try p.run()
        let deadline = Date().addingTimeInterval(120)
        while p.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        if p.isRunning { p.terminate(); p.waitUntilExit(); throw KubernetesManifests.Problem("\(tool) did not finish within 120 s") }
        try handle.close()
        return (p.terminationStatus, try String(contentsOf: out, encoding: .utf8))
    }
}
