import Foundation
import TetherCluster
import Yams

/// The manifests of `cluster/k8s/` parsed with Yams, and the consistency rules a cluster needs but
/// `kubectl apply` does not check: selectors that select, ports that agree between the Service, the
/// learner container and the run config, volumes that exist, CPU that matches the BLAS threads, a
/// config that Tether itself accepts. `problems()` names every violation ("" when none), so a test
/// can break one rule in memory and see exactly that rule reported.
struct KubernetesManifests {
    struct Object {
        var file: String
        var body: [String: Any]
        var kind: String { body["kind"] as? String ?? "" }
        var name: String { (body["metadata"] as? [String: Any])?["name"] as? String ?? "" }
        var label: String { "\(file): \(kind) \(name)" }
    }

    /// A container with its pod, as the rules need it.
    struct Container {
        var owner: Object
        var pod: [String: Any]
        var body: [String: Any]
        var args: [String] { (body["command"] as? [Any] ?? []).map { "\($0)" } + (body["args"] as? [Any] ?? []).map { "\($0)" } }
        var isLearner: Bool { args.contains { $0 == "learner" || $0.hasSuffix("learner-entrypoint.sh") } }
        var isActor: Bool { args.contains("actor") }

        /// The value after `flag` in the command line.
        func option(_ flag: String) -> String? {
            guard let i = args.firstIndex(of: flag), i + 1 < args.count else { return nil }
            return args[i + 1]
        }
        var overrides: [String] { args.indices.filter { args[$0] == "--set" && $0 + 1 < args.count }.map { args[$0 + 1] } }
        var env: [[String: Any]] { body["env"] as? [[String: Any]] ?? [] }
        var mounts: [[String: Any]] { body["volumeMounts"] as? [[String: Any]] ?? [] }
        var volumes: [[String: Any]] { pod["volumes"] as? [[String: Any]] ?? [] }
        func volume(named name: String) -> [String: Any]? { volumes.first { $0["name"] as? String == name } }
        /// The volume mounted at the directory holding `path`, with the path inside it.
        func mount(holding path: String) -> (volume: [String: Any], relative: String)? {
            for m in mounts {
                guard let dir = m["mountPath"] as? String, path == dir || path.hasPrefix(dir + "/"),
                      let v = (m["name"] as? String).flatMap(volume(named:)) else { continue }
                return (v, String(path.dropFirst(dir.count)).trimmingCharacters(in: CharacterSet(charactersIn: "/")))
            }
            return nil
        }
    }

    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("cluster/k8s")
    /// The Kubernetes objects; kustomization.yaml is the kustomize config, not an object.
    static let manifestFiles = ["configmap.yaml", "secret.yaml", "learner.yaml", "actor.yaml"]
    static let expectedAPIVersions = ["ConfigMap": "v1", "Secret": "v1", "Service": "v1", "PersistentVolumeClaim": "v1", "Deployment": "apps/v1"]
    /// Files ClusterSecurity reads under wire.curve_keys_dir, by role (Sources/TetherCluster/ClusterWire.swift).
    static let curveFiles = ["learner": ["learner.key", "learner.pub", "actor.pub"], "actor": ["learner.pub", "actor.key", "actor.pub"]]

    var objects: [Object] = []

    /// `texts`: file name → YAML text (the files on disk when nil).
    init(texts: [String: String]? = nil) throws {
        let texts = try texts ?? Self.shippedTexts()
        for file in Self.manifestFiles {
            guard let text = texts[file] else { continue }
            for case let body as [String: Any] in try Yams.load_all(yaml: text) { objects.append(Object(file: file, body: body)) }
        }
    }

    static func shippedTexts() throws -> [String: String] {
        var texts: [String: String] = [:]
        for file in manifestFiles + ["kustomization.yaml"] {
            texts[file] = try String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8)
        }
        return texts
    }

    func objects(_ kind: String) -> [Object] { objects.filter { $0.kind == kind } }
    func object(_ kind: String, _ name: String) -> Object? { objects.first { $0.kind == kind && $0.name == name } }

    var containers: [Container] {
        objects("Deployment").flatMap { d -> [Container] in
            let pod = ((d.body["spec"] as? [String: Any])?["template"] as? [String: Any])?["spec"] as? [String: Any] ?? [:]
            return (pod["containers"] as? [[String: Any]] ?? []).map { Container(owner: d, pod: pod, body: $0) }
        }
    }

    /// The run config a container starts with: the ConfigMap file its `--config` names, plus its `--set`s.
    func runConfig(for c: Container) throws -> RunConfig {
        guard let path = c.option("--config") else { throw Problem("\(c.owner.label): container has no --config") }
        guard let (volume, key) = c.mount(holding: path), let cmName = (volume["configMap"] as? [String: Any])?["name"] as? String else {
            throw Problem("\(c.owner.label): --config \(path) is not on a ConfigMap volume")
        }
        guard let text = configMapData(cmName)?[key] else { throw Problem("\(c.owner.label): ConfigMap \(cmName) has no key \(key)") }
        do { return try RunConfig.load(yaml: text, source: "ConfigMap \(cmName) \(key)", overrides: c.overrides) } catch {
            throw Problem("ConfigMap \(cmName) \(key) does not load for \(c.owner.name): \(error)")
        }
    }

    func configMapData(_ name: String) -> [String: String]? { object("ConfigMap", name)?.body["data"] as? [String: String] }
    func secretKeys(_ name: String) -> Set<String>? {
        guard let s = object("Secret", name)?.body else { return nil }
        return Set((s["data"] as? [String: Any] ?? [:]).keys).union((s["stringData"] as? [String: Any] ?? [:]).keys)
    }

    struct Problem: Error, CustomStringConvertible { var description: String; init(_ d: String) { description = d } }

    func problems() -> [String] {
        var found: [String] = []
        checkKinds(&found)
        checkDeployments(&found)
        checkReferences(&found)
        checkRunConfigs(&found)
        checkService(&found)
        return found
    }

    private func checkKinds(_ found: inout [String]) {
        for o in objects {
            guard let expected = Self.expectedAPIVersions[o.kind] else { found.append("\(o.label): unexpected kind"); continue }
            if o.body["apiVersion"] as? String != expected {
                found.append("\(o.label): apiVersion \(o.body["apiVersion"] ?? "none"), expected \(expected)")
            }
            if o.name.isEmpty { found.append("\(o.file): \(o.kind) without metadata.name") }
        }
        for kind in ["ConfigMap", "Secret", "Service", "PersistentVolumeClaim"] where objects(kind).isEmpty { found.append("no \(kind)") }
        if !containers.contains(where: \.isLearner) { found.append("no learner container") }
        if !containers.contains(where: \.isActor) { found.append("no actor container") }
    }

    private func checkDeployments(_ found: inout [String]) {
        for d in objects("Deployment") {
            let spec = d.body["spec"] as? [String: Any] ?? [:]
            let selector = (spec["selector"] as? [String: Any])?["matchLabels"] as? [String: String] ?? [:]
            let labels = ((spec["template"] as? [String: Any])?["metadata"] as? [String: Any])?["labels"] as? [String: String] ?? [:]
            if selector.isEmpty || !selector.allSatisfy({ labels[$0.key] == $0.value }) {
                found.append("\(d.label): selector \(selector) does not match pod template labels \(labels)")
            }
        }
        for c in containers where c.isLearner {
            let spec = c.owner.body["spec"] as? [String: Any] ?? [:]
            if spec["replicas"] as? Int != 1 { found.append("\(c.owner.label): the learner needs replicas 1") }
            if (spec["strategy"] as? [String: Any])?["type"] as? String != "Recreate" {
                found.append("\(c.owner.label): the learner needs strategy Recreate (two learners must never share a run directory)")
            }
        }
        // Other Deployments' pods must not be selected by this one's selector (the learner and actor share a name label).
        let deployments = objects("Deployment")
        for a in deployments {
            let selector = ((a.body["spec"] as? [String: Any])?["selector"] as? [String: Any])?["matchLabels"] as? [String: String] ?? [:]
            for b in deployments where b.name != a.name {
                let labels = (((b.body["spec"] as? [String: Any])?["template"] as? [String: Any])?["metadata"] as? [String: Any])?["labels"] as? [String: String] ?? [:]
                if !selector.isEmpty && selector.allSatisfy({ labels[$0.key] == $0.value }) {
                    found.append("\(a.label): selector also selects the pods of Deployment \(b.name)")
                }
            }
        }
    }

    private func checkReferences(_ found: inout [String]) {
        for c in containers {
            for m in c.mounts {
                let name = m["name"] as? String ?? ""
                if c.volume(named: name) == nil { found.append("\(c.owner.label): volumeMount \(name) names no volume of the pod") }
            }
            for v in c.volumes {
                let vname = v["name"] as? String ?? ""
                if let cm = v["configMap"] as? [String: Any], let name = cm["name"] as? String, configMapData(name) == nil {
                    found.append("\(c.owner.label): volume \(vname) references ConfigMap \(name), which no manifest defines")
                }
                if let s = v["secret"] as? [String: Any], let name = s["secretName"] as? String {
                    guard let keys = secretKeys(name) else {
                        found.append("\(c.owner.label): volume \(vname) references Secret \(name), which no manifest defines"); continue
                    }
                    for item in s["items"] as? [[String: Any]] ?? [] {
                        let key = item["key"] as? String ?? ""
                        if !keys.contains(key) { found.append("\(c.owner.label): volume \(vname) projects key \(key), which Secret \(name) lacks") }
                    }
                }
                if let p = v["persistentVolumeClaim"] as? [String: Any], let name = p["claimName"] as? String,
                   object("PersistentVolumeClaim", name) == nil {
                    found.append("\(c.owner.label): volume \(vname) references PersistentVolumeClaim \(name), which no manifest defines")
                }
            }
            for e in c.env {
                guard let from = e["valueFrom"] as? [String: Any] else { continue }
                if let ref = from["configMapKeyRef"] as? [String: Any], let name = ref["name"] as? String,
                   configMapData(name)?[ref["key"] as? String ?? ""] == nil {
                    found.append("\(c.owner.label): env \(e["name"] ?? "") references missing ConfigMap key \(name)/\(ref["key"] ?? "")")
                }
                if let ref = from["secretKeyRef"] as? [String: Any], let name = ref["name"] as? String,
                   secretKeys(name)?.contains(ref["key"] as? String ?? "") != true {
                    found.append("\(c.owner.label): env \(e["name"] ?? "") references missing Secret key \(name)/\(ref["key"] ?? "")")
                }
            }
            if c.isActor {
                let podName = c.env.contains { ($0["name"] as? String) == "POD_NAME"
                    && (($0["valueFrom"] as? [String: Any])?["fieldRef"] as? [String: Any])?["fieldPath"] as? String == "metadata.name" }
                if c.option("--id") != "$(POD_NAME)" || !podName {
                    found.append("\(c.owner.label): the actor id must be --id $(POD_NAME) with POD_NAME from the downward API (metadata.name)")
                }
            }
            if c.isLearner {
                let runDir = c.env.first { $0["name"] as? String == "RUN_DIR" }?["value"] as? String ?? c.option("--out") ?? ""
                let volume = c.mount(holding: runDir)?.volume
                if volume?["persistentVolumeClaim"] == nil && volume?["emptyDir"] == nil {
                    found.append("\(c.owner.label): the run directory '\(runDir)' is not on a PersistentVolumeClaim or emptyDir volume")
                }
            }
        }
    }

    /// CPU quantity in cores: "2", 2, "1500m".
    static func cores(_ value: Any?) -> Double? {
        if let i = value as? Int { return Double(i) }
        if let d = value as? Double { return d }
        guard let s = value as? String else { return nil }
        return s.hasSuffix("m") ? Double(s.dropLast()).map { $0 / 1000 } : Double(s)
    }

    private func checkRunConfigs(_ found: inout [String]) {
        for c in containers where c.isLearner || c.isActor {
            let config: RunConfig
            do { config = try runConfig(for: c) } catch { found.append("\(error)"); continue }
            let role = c.isLearner ? "learner" : "actor"
            let blas = c.isLearner ? config.learner.blasThreads : config.actors.blasThreads
            let blasKey = c.isLearner ? "learner.blas_threads" : "actors.blas_threads"
            let threads = c.option("--threads").flatMap { Int($0) }
            let resources = c.body["resources"] as? [String: Any] ?? [:]
            let request = Self.cores((resources["requests"] as? [String: Any])?["cpu"])
            let limit = Self.cores((resources["limits"] as? [String: Any])?["cpu"])
            if threads != blas { found.append("\(c.owner.label): --threads \(threads.map(String.init) ?? "missing") differs from \(blasKey) \(blas)") }
            if request != Double(blas) { found.append("\(c.owner.label): CPU request \(request.map { "\($0)" } ?? "missing") differs from \(blasKey) \(blas)") }
            if limit != request { found.append("\(c.owner.label): CPU limit \(limit.map { "\($0)" } ?? "missing") differs from the request") }

            // Keys: wire.curve_keys_dir is the Secret mount and holds the files this role reads.
            if config.wire.curveKeysDir.isEmpty {
                found.append("\(c.owner.label): wire.curve_keys_dir is empty, but binding beyond loopback needs CURVE keys")
            } else if let (volume, _) = c.mount(holding: config.wire.curveKeysDir), let secret = volume["secret"] as? [String: Any] {
                let items = secret["items"] as? [[String: Any]]
                let files = items.map { Set($0.compactMap { $0["path"] as? String }) } ?? secretKeys(secret["secretName"] as? String ?? "") ?? []
                for needed in Self.curveFiles[role]! where !files.contains(needed) {
                    found.append("\(c.owner.label): the \(role) reads \(needed) from wire.curve_keys_dir, but its Secret volume does not provide it")
                }
            } else {
                found.append("\(c.owner.label): wire.curve_keys_dir \(config.wire.curveKeysDir) is not a Secret volume mount")
            }

            if c.isActor {
                let replicas = (c.owner.body["spec"] as? [String: Any])?["replicas"] as? Int
                if replicas != config.actors.count {
                    found.append("\(c.owner.label): replicas \(replicas.map(String.init) ?? "missing") differs from actors.count \(config.actors.count)")
                }
                let services = objects("Service").map(\.name)
                for e in ClusterEndpoint.allCases {
                    let host = Self.host(of: Self.endpoint(config, e))
                    if !services.contains(where: { host == $0 || host.hasPrefix($0 + ".") }) {
                        found.append("\(c.owner.label): actors connect to \(Self.endpoint(config, e)) for \(e.rawValue), not to a Service (\(services.joined(separator: ", ")))")
                    }
                }
            }
            if c.isLearner {
                for e in ClusterEndpoint.allCases {
                    let host = Self.host(of: Self.endpoint(config, e))
                    if host != "*" && host != "0.0.0.0" {
                        found.append("\(c.owner.label): the learner binds \(Self.endpoint(config, e)) for \(e.rawValue); it must bind all interfaces (tcp://*:PORT)")
                    }
                }
            }
        }
    }

    static func endpoint(_ config: RunConfig, _ e: ClusterEndpoint) -> String {
        switch e {
        case .control: return config.learner.controlEndpoint
        case .trajectories: return config.learner.trajectoryEndpoint
        case .weights: return config.learner.weightsEndpoint
        }
    }

    static func host(of endpoint: String) -> String {
        let rest = endpoint.replacingOccurrences(of: "tcp://", with: "")
        return rest.lastIndex(of: ":").map { String(rest[..<$0]) } ?? rest
    }
    static func port(of endpoint: String) -> Int? { endpoint.split(separator: ":").last.flatMap { Int($0) } }

    private func checkService(_ found: inout [String]) {
        guard let learner = containers.first(where: \.isLearner) else { return }
        let podLabels = ((learner.owner.body["spec"] as? [String: Any])?["template"] as? [String: Any])
            .flatMap { ($0["metadata"] as? [String: Any])?["labels"] as? [String: String] } ?? [:]
        let containerPorts = (learner.body["ports"] as? [[String: Any]] ?? []).compactMap { p -> (String, Int)? in
            guard let n = p["containerPort"] as? Int else { return nil }
            return (p["name"] as? String ?? "", n)
        }
        let actor = containers.first(where: \.isActor)
        let actorConfig = actor.flatMap { try? runConfig(for: $0) }
        let learnerConfig = try? runConfig(for: learner)
        for s in objects("Service") {
            let spec = s.body["spec"] as? [String: Any] ?? [:]
            let selector = spec["selector"] as? [String: String] ?? [:]
            if selector.isEmpty || !selector.allSatisfy({ podLabels[$0.key] == $0.value }) {
                found.append("\(s.label): selector \(selector) does not match the learner pod labels \(podLabels)")
            }
            var servicePorts: [Int: Int] = [:]  // port → container port it reaches
            for p in spec["ports"] as? [[String: Any]] ?? [] {
                guard let port = p["port"] as? Int else { continue }
                let target: Int?
                switch p["targetPort"] {
                case let name as String: target = containerPorts.first { $0.0 == name }?.1
                case let number as Int: target = containerPorts.contains { $0.1 == number } ? number : nil
                default: target = containerPorts.contains { $0.1 == port } ? port : nil
                }
                guard let t = target else { found.append("\(s.label): port \(port) reaches no learner container port"); continue }
                servicePorts[port] = t
            }
            for e in ClusterEndpoint.allCases {
                if let ep = actorConfig.map({ Self.endpoint($0, e) }), let port = Self.port(of: ep), servicePorts[port] == nil {
                    found.append("\(s.label): exposes no port \(port) for the actors' \(e.rawValue) endpoint \(ep)")
                }
                if let ep = learnerConfig.map({ Self.endpoint($0, e) }), let port = Self.port(of: ep), !containerPorts.contains(where: { $0.1 == port }) {
                    found.append("\(learner.owner.label): the learner binds \(ep) for \(e.rawValue) but declares no containerPort \(port)")
                }
                if let a = actorConfig.map({ Self.endpoint($0, e) }), let l = learnerConfig.map({ Self.endpoint($0, e) }), let ap = Self.port(of: a), servicePorts[ap] != Self.port(of: l) {
                    found.append("\(s.label): the actors' \(e.rawValue) endpoint \(a) does not reach the port the learner binds (\(l))")
                }
            }
        }
    }
}
