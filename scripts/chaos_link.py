#!/usr/bin/env python3
"""A TCP relay that stands for one actor's network link, so a link can be cut without root.

Listens on 127.0.0.1:LISTEN_i and relays each connection to 127.0.0.1:TARGET_i (one pair per
learner endpoint: control, trajectories, weights). SIGUSR1 cuts the link, SIGUSR2 restores it.
A cut link stops moving bytes in both directions without closing anything, as a pulled cable
does: what the peers send waits in the socket buffers (and back-pressures the senders) and
arrives, late, when the link comes back; new connections are accepted but carry nothing.

usage: chaos_link.py LISTEN:TARGET [LISTEN:TARGET ...]
"""
import asyncio
import signal
import sys


class Link:
    def __init__(self):
        self.up = asyncio.Event()
        self.up.set()

    async def pump(self, reader, writer):
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                await self.up.wait()
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            try:
                writer.close()
            except OSError:
                pass

    async def relay(self, target, reader, writer):
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target)
        except OSError:
            writer.close()
            return
        await asyncio.gather(self.pump(reader, up_writer), self.pump(up_reader, writer))


async def main(pairs):
    link = Link()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, link.up.clear)
    loop.add_signal_handler(signal.SIGUSR2, link.up.set)
    servers = []
    for listen, target in pairs:
        servers.append(await asyncio.start_server(
            lambda r, w, t=target: link.relay(t, r, w), "127.0.0.1", listen, reuse_address=True))
    print("relaying " + ", ".join(f"{l}->{t}" for l, t in pairs), flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    try:
        pairs = [tuple(int(x) for x in a.split(":")) for a in sys.argv[1:]]
    except ValueError:
        sys.exit(f"chaos_link.py: arguments must be LISTEN:TARGET port pairs, got {sys.argv[1:]}")
    asyncio.run(main(pairs))
