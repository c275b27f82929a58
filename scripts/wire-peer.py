#!/usr/bin/env python3
"""Python peer for TetherWire's interop test (pyzmq + protobuf, classes built from proto/tether.desc).

    wire-peer.py DESCRIPTOR_SET PULL_FROM_ENDPOINT PUSH_TO_ENDPOINT

Receives one Envelope from PULL_FROM_ENDPOINT (Tether encoded it) and prints it as one JSON line
(field names as in tether.proto). Then reads one JSON Envelope per line from stdin, encodes each with
Python's protobuf and sends it to PUSH_TO_ENDPOINT, until stdin closes.
"""
import json
import sys

import zmq
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory


def envelope_class(path):
    files = descriptor_pb2.FileDescriptorSet()
    with open(path, "rb") as f:
        files.ParseFromString(f.read())
    pool = descriptor_pool.DescriptorPool()
    for proto in files.file:
        pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tether.Envelope"))


def main():
    desc, pull_from, push_to = sys.argv[1:4]
    Envelope = envelope_class(desc)
    ctx = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    pull.setsockopt(zmq.LINGER, 0)
    pull.connect(pull_from)
    push = ctx.socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 2000)
    push.connect(push_to)
    if not pull.poll(10000):
        print(json.dumps({"error": "no message from Tether within 10 s"}), flush=True)
        return 1
    frames = pull.recv_multipart()
    env = Envelope()
    env.ParseFromString(frames[0])
    decoded = json_format.MessageToDict(env, preserving_proto_field_name=True)
    print(json.dumps({"frames": len(frames), "envelope": decoded}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        out = json_format.Parse(line, Envelope())
        push.send(out.SerializeToString())
    push.close()
    pull.close()
    ctx.term()
    return 0


if __name__ == "__main__":
    sys.exit(main())
