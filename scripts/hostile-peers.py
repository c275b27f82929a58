#!/usr/bin/env python3
"""Hostile peers against a live learner (pyzmq + protobuf; message classes from proto/tether.desc).

    hostile-peers.py --tether .build/release/tether [--keep] [--timeout SECONDS]

Starts a CURVE-protected learner and two honest actors (tiny model, on fresh loopback ports), then
attacks it with one peer per case: integers beyond range, out-of-range floats, forged and oversized
strings, malformed and oversized messages, a flood, ticket hoarding, impersonation with an allowed
key, a peer without CURVE, a key outside the allow-list and a weights subscriber that never reads.
After each case the learner must still be running, its version must have advanced, and the
counter that names the case's reason (read from metrics.jsonl) must have grown. Prints one table
row per case; exits 1 if any case fails. Every process it starts is killed on exit, and the whole
run is bounded by --timeout (default 150 s).
"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import zmq
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
B, G, ETA, MAX_NEW = 4, 4, 1, 4
LEASE = 4.0


def envelope_class():
    files = descriptor_pb2.FileDescriptorSet()
    with open(os.path.join(ROOT, "proto", "tether.desc"), "rb") as f:
        files.ParseFromString(f.read())
    pool = descriptor_pool.DescriptorPool()
    for proto in files.file:
        pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tether.Envelope"))


Envelope = envelope_class()


def envelope(**body):
    e = Envelope(protocol_version=1)
    for name, fields in body.items():
        getattr(e, name).SetInParent()
        for k, v in fields.items():
            target = getattr(getattr(e, name), k)
            if isinstance(v, list):
                target.extend(v)
            else:
                setattr(getattr(e, name), k, v)
    return e.SerializeToString()


def free_ports(n):
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


class Cluster:
    """The learner and two honest actors, with CURVE keys; killed (process group) on close."""

    def __init__(self, tether, work):
        self.tether, self.work = tether, work
        self.keys = os.path.join(work, "keys")
        self.run_dir = os.path.join(work, "run")
        self.procs = {}
        for name in ["learner", "actor-0", "actor-1", "evil", "stranger"]:
            subprocess.run([tether, "keygen", "--out", self.keys, "--name", name], check=True, stdout=subprocess.DEVNULL)
        with open(os.path.join(self.keys, "allowed_actors"), "w") as f:
            for name in ["actor-0", "actor-1", "evil"]:
                f.write(f"{self.public(name).decode()} {name}\n")
        p = free_ports(3)
        self.control, self.trajectories, self.weights = (f"tcp://127.0.0.1:{x}" for x in p)
        self.config = os.path.join(work, "config.yaml")
        with open(self.config, "w") as f:
            f.write(f"""model: {{checkpoint: "", vocab_size: 64, hidden_size: 32, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 2, intermediate_size: 64, max_position_embeddings: 64}}
task: {{name: addition, max_prompt_tokens: 16}}
algorithm: {{kl_beta: 0.04}}
rollout: {{group_size: {G}, prompts_per_batch: {B}, prompts_per_ticket: 1, max_new_tokens: {MAX_NEW}}}
staleness: {{max_staleness: {ETA}}}
learner:
  learning_rate: 0.001
  control_endpoint: {self.control}
  trajectory_endpoint: {self.trajectories}
  weights_endpoint: {self.weights}
actors: {{count: 2, lease_seconds: {LEASE}, heartbeat_seconds: 0.5, heartbeat_timeout_seconds: 30}}
wire: {{curve_keys_dir: {self.keys}, max_message_bytes: 1048576}}
checkpoint: {{every_steps: 1000000}}
run: {{steps: 1000000, seed: 1, out_dir: {work}, name: run}}
""")

    def key(self, name, ext):
        with open(os.path.join(self.keys, f"{name}.{ext}"), "rb") as f:
            return f.read().strip()

    def public(self, name):
        return self.key(name, "pub")

    def start(self, name, args):
        log = open(os.path.join(self.work, f"{name}.log"), "wb")
        self.procs[name] = subprocess.Popen([self.tether] + args + ["--threads", "1"], stdout=log, stderr=log,
                                            start_new_session=True)

    def start_all(self):
        self.start("learner", ["learner", "--config", self.config, "--out", self.run_dir])
        for a in ["actor-0", "actor-1"]:
            self.start(a, ["actor", "--config", self.config, "--id", a])

    def learner_alive(self):
        return self.procs["learner"].poll() is None

    def log(self, name):
        try:
            with open(os.path.join(self.work, f"{name}.log"), "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def metrics_since(self, offset):
        """Complete metrics lines after byte `offset`, and the offset after them."""
        try:
            with open(os.path.join(self.run_dir, "metrics.jsonl"), "rb") as f:
                f.seek(offset)
                data = f.read()
        except OSError:
            return [], offset
        end = data.rfind(b"\n") + 1
        out = []
        for line in data[:end].splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out, offset + end

    def last(self):
        """The newest complete metrics line (read from the file's tail: it grows by a line a step)."""
        path = os.path.join(self.run_dir, "metrics.jsonl")
        try:
            size = os.path.getsize(path)
        except OSError:
            return {}
        lines, _ = self.metrics_since(max(0, size - (256 << 10)))
        return lines[-1] if lines else {}

    def close(self):
        for p in self.procs.values():
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for p in self.procs.values():
            p.wait()


def value(line, key):
    v = line.get(key)
    if v is None:
        v = line.get("scalars", {}).get(key) if isinstance(line.get("scalars"), dict) else None
    return float(v or 0)


class Peer:
    """One hostile peer: a DEALER on control and a PUSH on trajectories, CURVE with key `key`
    (None: no CURVE at all)."""

    def __init__(self, ctx, cluster, key="evil", as_key=None):
        self.ctx, self.cluster = ctx, cluster
        self.version = 0
        self.dealer = self.socket(zmq.DEALER, cluster.control, key)
        self.push = self.socket(zmq.PUSH, cluster.trajectories, key)

    def socket(self, kind, endpoint, key, options=()):
        s = self.ctx.socket(kind)
        s.setsockopt(zmq.LINGER, 0)
        for k, v in options:
            s.setsockopt(k, v)
        if key is not None:
            s.curve_secretkey = self.cluster.key(key, "key")
            s.curve_publickey = self.cluster.public(key)
            s.curve_serverkey = self.cluster.public("learner")
        s.connect(endpoint)
        return s

    def control(self, **body):
        self.dealer.send(envelope(**body))

    def join(self, actor_id, have_version=0):
        self.control(actor_join={"actor_id": actor_id, "pid": 4242, "have_version": have_version})

    def heartbeat(self, actor_id, version):
        self.control(heartbeat={"sender_id": actor_id, "role": 2, "sequence": 1, "policy_version": version})

    def request(self, actor_id):
        self.control(ticket_request={"actor_id": actor_id, "count": 1})

    def poll_control(self, timeout):
        """Next message on control as (Envelope, frames) or None."""
        if not self.dealer.poll(int(timeout * 1000)):
            return None
        frames = self.dealer.recv_multipart()
        e = Envelope()
        e.ParseFromString(frames[0])
        return e

    def tickets(self, actor_id, wanted, seconds):
        """Asks for tickets for `seconds`, answering weight replies by heartbeating their version;
        returns every ticket received (never returns a group for any of them)."""
        got = []
        deadline = time.time() + seconds
        self.heartbeat(actor_id, self.version)
        self.request(actor_id)
        while time.time() < deadline and len(got) < wanted:
            e = self.poll_control(0.2)
            if e is None:
                continue
            body = e.WhichOneof("body")
            if body == "weights_header":
                self.version = e.weights_header.version
                self.heartbeat(actor_id, self.version)
                self.request(actor_id)
            elif body == "rollout_ticket":
                got.append((time.time(), e.rollout_ticket))
                self.request(actor_id)
        return got

    def group(self, actor_id, ticket, reward=1.0, logprob=-0.5, token_version=None):
        p = ticket.prompts[0]
        v = self.version if token_version is None else token_version
        samples = [{"completion_tokens": [1], "behaviour_logprobs": [logprob], "token_versions": [v], "reward": reward}
                   for _ in range(G)]
        e = Envelope(protocol_version=1)
        g = e.trajectory_group
        g.ticket_id, g.actor_id, g.prompt_id = ticket.ticket_id, actor_id, p.prompt_id
        g.prompt_tokens.extend(p.tokens)
        for s in samples:
            x = g.samples.add()
            x.completion_tokens.extend(s["completion_tokens"])
            x.behaviour_logprobs.extend(s["behaviour_logprobs"])
            x.token_versions.extend(s["token_versions"])
            x.reward = s["reward"]
        self.push.send(e.SerializeToString())

    def close(self):
        self.dealer.close()
        self.push.close()


class Suite:
    def __init__(self, cluster, deadline):
        self.cluster, self.deadline = cluster, deadline
        self.rows = []
        self.ctx = zmq.Context()

    def wait_counter(self, key, before, at_least, timeout=15.0):
        """Waits for `key` to grow by `at_least` and the version to advance past `before`'s."""
        v0, c0 = value(before, "version"), value(before, key)
        end = min(time.time() + timeout, self.deadline)
        line = before
        while time.time() < end and self.cluster.learner_alive():
            line = self.cluster.last()
            if value(line, key) - c0 >= at_least and value(line, "version") > v0:
                break
            time.sleep(0.05)
        return value(line, key) - c0, value(line, "version") - v0

    def case(self, name, key, action, at_least=1, extra_check=None):
        before = self.cluster.last()
        detail = ""
        try:
            detail = action() or ""
        except Exception as exc:  # a case that cannot even be sent is a failed case
            detail = f"peer error: {exc!r}"
        grew, advanced = self.wait_counter(key or "version", before, at_least)
        if key is None:
            grew = 0
        alive = self.cluster.learner_alive()
        ok = alive and grew >= at_least and advanced > 0 and not detail.startswith("peer error")
        if extra_check is not None:
            problem = extra_check()
            if problem:
                ok, detail = False, problem
        self.rows.append((name, key or "-", int(grew), alive, int(advanced), ok, detail))

    def table(self):
        w = max(len(r[0]) for r in self.rows)
        k = max(len(r[1]) for r in self.rows)
        out = [f"{'case':<{w}}  {'reason counted':<{k}}  {'+count':>7}  alive  {'+steps':>6}  result"]
        for name, key, grew, alive, advanced, ok, detail in self.rows:
            out.append(f"{name:<{w}}  {key:<{k}}  {grew:>7}  {'yes' if alive else 'NO':<5}  {advanced:>6}  "
                       f"{'ok' if ok else 'FAIL'}{'  ' + detail if detail else ''}")
        return "\n".join(out)


def run_cases(suite, cluster):
    ctx = suite.ctx
    evil = Peer(ctx, cluster)
    evil.join("evil")
    E = "wire/errors/"

    def on_live_ticket(**kw):
        def send():
            got = evil.tickets("evil", wanted=1, seconds=3 * LEASE)
            if not got:
                raise RuntimeError("the learner granted no ticket")
            evil.group("evil", got[0][1], **kw)
            return f"ticket {got[0][1].ticket_id & 0xFFFFFFFF}"
        return send

    suite.case("group token_versions = 2^63 (live ticket)", E + "integer_out_of_range", on_live_ticket(token_version=2**63))
    suite.case("group reward 1e39 (inf as Float, live ticket)", "dropped/reward_out_of_range", on_live_ticket(reward=1e39))
    suite.case("group log-prob -1e30 (live ticket)", "dropped/logprob_out_of_range", on_live_ticket(logprob=-1e30))
    suite.case("heartbeat policy_version = 2^63", E + "integer_out_of_range", lambda: evil.heartbeat("evil", 2**63))
    suite.case("actor_join have_version = 2^64-1", E + "integer_out_of_range", lambda: evil.join("evil", 2**64 - 1))
    suite.case("heartbeat version never published", "dropped/version_from_future", lambda: evil.heartbeat("evil", 10**9))

    # Ticket hoarding: take tickets as fast as the learner grants them, return none. With 3 live
    # actors the fair share is ceil(((v + eta + 1) * B - admitted) / 3) <= ceil((eta + 1) * B / 3).
    share = -(-((ETA + 1) * B) // 3)

    def hoard():
        got = evil.tickets("evil", wanted=4 * share, seconds=LEASE * 0.8)
        # Every ticket received within one lease is held at once (none is returned).
        if len(got) > share:
            raise RuntimeError(f"held {len(got)} new tickets at once, fair share is {share}")
        return f"{len(got)} new ticket(s) held at once, fair share {share}"

    suite.case("hoarding (takes tickets, returns none)", None, hoard, at_least=0)

    def impersonate():
        evil.join("actor-0")
        evil.heartbeat("actor-0", 0)
        evil.request("actor-0")

    suite.case("impersonation: key 'evil' claims actor-0", E + "identity_mismatch", impersonate, at_least=3,
               extra_check=lambda: "actor-0 was disturbed" if "actor actor-0 restarted" in cluster.log("learner") else None)

    forged = "x\nFORGED learner done: version 999\x1b[2J\u202e"

    def no_forged_line():
        if any(line.startswith("FORGED") for line in cluster.log("learner").splitlines()):
            return "a forged line reached the learner's log"
        return None

    suite.case("actor id with newline + terminal escapes", E + "invalid_identifier", lambda: evil.join(forged),
               extra_check=no_forged_line)
    suite.case("actor id of 512 KiB", E + "invalid_identifier", lambda: evil.join("a" * (512 << 10)))
    suite.case("control reason of 512 KiB", E + "text_too_long",
               lambda: evil.control(control={"kind": 2, "reason": "r" * (512 << 10)}))
    suite.case("garbage bytes", E + "malformed_protobuf", lambda: evil.dealer.send(b"\xff\xfe not a protobuf \x00"))
    suite.case("envelope without a body", E + "missing_message_type",
               lambda: evil.dealer.send(Envelope(protocol_version=1).SerializeToString()))
    suite.case("protocol version 99", E + "unsupported_protocol_version",
               lambda: evil.dealer.send(Envelope(protocol_version=99).SerializeToString()))

    def nan_reward():
        t = Envelope().rollout_ticket
        t.ticket_id = 1
        p = t.prompts.add()
        p.prompt_id = "0"
        p.tokens.extend([1, 2])
        evil.group("evil", t, reward=float("nan"))

    suite.case("NaN reward", E + "non_finite_value", nan_reward)

    def oversized():
        big = Peer(ctx, cluster)
        big.dealer.send(b"\x00" * (2 << 20))  # > wire.max_message_bytes: ZeroMQ closes the connection
        time.sleep(0.3)
        big.close()
        return "2 MiB frame: ZeroMQ closes the connection (ZMQ_MAXMSGSIZE), nothing reaches the learner"

    suite.case("oversized message (2 MiB > max_message_bytes)", None, oversized, at_least=0)

    def flood():
        for i in range(20000):
            evil.push.send(b"\x0a\xff\xff\xff\xff\x0f" + bytes([i & 0xFF]))
        return "20000 messages"

    def log_not_flooded():
        n = cluster.log("learner").count("rejected message from")
        return f"{n} rejection lines in the log" if n > 100 else None

    suite.case("flood of 20000 malformed groups", E + "malformed_protobuf", flood, at_least=20000, extra_check=log_not_flooded)

    def plain():
        p = Peer(ctx, cluster, key=None)
        p.join("plain")
        time.sleep(0.5)
        p.close()

    suite.case("peer without CURVE", "wire/handshake_failures", plain)

    def stranger():
        p = Peer(ctx, cluster, key="stranger")
        p.join("stranger")
        time.sleep(0.5)
        p.close()

    suite.case("key outside the allow-list", "wire/denied_connections", stranger)

    stalled = []

    def stalled_subscriber():
        sub = evil.socket(zmq.SUB, cluster.weights, "evil", options=[(zmq.RCVHWM, 1), (zmq.RCVBUF, 4096)])
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        stalled.append(sub)
        _, start = cluster.metrics_since(0)
        time.sleep(6)
        lines, _ = cluster.metrics_since(start)
        most = max((value(line, "weights/live_snapshots") for line in lines), default=0)
        if most > 8:
            raise RuntimeError(f"{int(most)} weight snapshots alive with a stalled subscriber")
        return f"{len(lines)} versions published in 6 s, at most {int(most)} snapshots alive"

    suite.case("weights subscriber that never reads", None, stalled_subscriber, at_least=0)
    for s in stalled:
        s.close()
    evil.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tether", default=os.path.join(ROOT, ".build", "release", "tether"))
    ap.add_argument("--timeout", type=float, default=150)
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs, metrics)")
    args = ap.parse_args()
    deadline = time.time() + args.timeout
    work = tempfile.mkdtemp(prefix="tether-hostile-")
    cluster = Cluster(args.tether, work)
    signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(TimeoutError(f"suite exceeded {args.timeout} s")))
    signal.alarm(int(args.timeout) + 30)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # still runs the cleanup below
    status = 1
    try:
        cluster.start_all()
        while time.time() < deadline and value(cluster.last(), "version") < 3:
            if not cluster.learner_alive():
                raise RuntimeError("learner exited before training:\n" + cluster.log("learner")[-3000:])
            time.sleep(0.1)
        if value(cluster.last(), "version") < 3:
            raise RuntimeError("the cluster did not start training:\n" + cluster.log("learner")[-3000:])
        suite = Suite(cluster, deadline)
        run_cases(suite, cluster)
        suite.ctx.destroy(linger=0)
        # The learner drains and exits cleanly on SIGTERM: it is still a working process.
        learner = cluster.procs["learner"]
        learner.send_signal(signal.SIGTERM)
        try:
            code = learner.wait(timeout=30)
        except subprocess.TimeoutExpired:
            code = None
        print(suite.table())
        final = cluster.last()
        print(f"learner: version {int(value(final, 'version'))}, wire errors {int(value(final, 'wire/errors_total'))}, "
              f"exit status after SIGTERM {code}")
        failed = [r for r in suite.rows if not r[5]]
        status = 0 if not failed and code == 0 else 1
        if status:
            print(f"hostile-peers: {len(failed)} case(s) failed; learner log tail:\n" + cluster.log("learner")[-3000:])
    except Exception as exc:
        print(f"hostile-peers: {exc!r}")
    finally:
        signal.alarm(0)
        cluster.close()
        if args.keep:
            print(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
