"""A loopback AMI server that plays a recording as if it were the PBX.

It behaves like Asterisk where a client can tell: a banner, ``Login`` answered with the
client's own ActionID, the recorded events in order (the recorder's own responses left out),
``Ping``, ``CoreShowChannels``, ``QueueStatus`` and ``Getvar`` answered from the channels,
callers and channel variables that are alive at that point of the recording, ``Logoff``.
Actions it cannot perform are answered ``Response: Error`` and kept in
:attr:`ReplayServer.actions` so tests can check what a client sent (e.g. the ChanSpy
``Originate`` of a supervisor's whisper button).

With ``timestamps`` on and a jsonl recording, every event gets a ``Timestamp`` header made of
the recording's own clock, as Asterisk does with ``timestampevents = yes``; the ledger then
measures waits and talks in the recording's time however fast it is replayed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from service.ami.parser import AmiParser, BadMessage, Banner
from service.replay.recording import RecordedConnection, RecordedMessage, base_epoch

EOL = "\r\n"


def encode_message(headers: Iterable[tuple[str, str | None]]) -> bytes:
    lines = [k if value is None else f"{k}: {value}" for k, value in headers]
    return (EOL.join(lines) + EOL + EOL).encode("utf-8")


@dataclass
class _LiveChannel:
    headers: dict[str, str]
    bridge: str = ""
    created_t: float = 0.0
    variables: dict[str, str] = field(default_factory=dict)  # from VarSet, for Getvar


@dataclass
class _World:
    """What is alive at the current point of the recording."""

    channels: dict[str, _LiveChannel] = field(default_factory=dict)
    waiting: dict[tuple[str, str], tuple[int, float]] = field(default_factory=dict)
    members: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    now_t: float = 0.0

    def apply(self, message: RecordedMessage) -> None:
        if message.t is not None:
            self.now_t = message.t
        event = message.get("Event")
        if event is None:
            return
        h = {k: v or "" for k, v in message.headers}
        uniqueid = h.get("Uniqueid", "")
        if event == "Newchannel":
            self.channels[uniqueid] = _LiveChannel(h, created_t=self.now_t)
        elif event == "Hangup":
            self.channels.pop(uniqueid, None)
        elif event in ("Newstate", "NewCallerid", "NewAccountCode", "Newexten",
                       "NewConnectedLine") and uniqueid in self.channels:
            self.channels[uniqueid].headers.update(h)
        elif event == "VarSet" and uniqueid in self.channels:
            self.channels[uniqueid].variables[h.get("Variable", "")] = h.get("Value", "")
        elif event == "BridgeEnter" and uniqueid in self.channels:
            self.channels[uniqueid].bridge = h.get("BridgeUniqueid", "")
        elif event == "BridgeLeave" and uniqueid in self.channels:
            self.channels[uniqueid].bridge = ""
        elif event == "QueueCallerJoin":
            position = h.get("Position", "")
            self.waiting[(h.get("Queue", ""), uniqueid)] = (
                int(position) if position.isdigit() else 0, self.now_t)
        elif event in ("QueueCallerLeave", "QueueCallerAbandon"):
            self.waiting.pop((h.get("Queue", ""), uniqueid), None)
        elif event == "QueueMemberAdded":
            self.members[(h.get("Queue", ""), h.get("Interface", ""))] = h
        elif event == "QueueMemberRemoved":
            self.members.pop((h.get("Queue", ""), h.get("Interface", "")), None)

    def core_show_channels(self, action_id: str) -> list[list[tuple[str, str | None]]]:
        out: list[list[tuple[str, str | None]]] = []
        for uniqueid, channel in self.channels.items():
            h = channel.headers
            seconds = max(0, int(self.now_t - channel.created_t))
            out.append([
                ("Event", "CoreShowChannel"), ("ActionID", action_id),
                ("Channel", h.get("Channel", "")), ("ChannelState", h.get("ChannelState", "")),
                ("ChannelStateDesc", h.get("ChannelStateDesc", "")),
                ("CallerIDNum", h.get("CallerIDNum", "")),
                ("CallerIDName", h.get("CallerIDName", "")),
                ("AccountCode", h.get("AccountCode", "")), ("Context", h.get("Context", "")),
                ("Exten", h.get("Exten", "")), ("Priority", h.get("Priority", "")),
                ("Uniqueid", uniqueid), ("Linkedid", h.get("Linkedid", uniqueid)),
                ("Application", h.get("Application", "")),
                ("ApplicationData", h.get("AppData", "")),
                ("Duration", f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"),
                ("BridgeId", channel.bridge)])
        return out

    def getvar(self, channel_name: str, variable: str) -> str | None:
        """A live channel's variable as Asterisk's ``Getvar`` gives it ("" when unset);
        None when no such channel is alive."""
        for channel in self.channels.values():
            if channel.headers.get("Channel") == channel_name:
                return channel.variables.get(variable, "")
        return None

    def queue_status(self, action_id: str) -> list[list[tuple[str, str | None]]]:
        out: list[list[tuple[str, str | None]]] = []
        for (queue, interface), h in self.members.items():
            out.append([("Event", "QueueMember"), ("ActionID", action_id), ("Queue", queue),
                        ("Name", h.get("MemberName", "")), ("Location", interface),
                        ("StateInterface", h.get("StateInterface", interface)),
                        ("Status", h.get("Status", "")), ("Paused", h.get("Paused", "0"))])
        for (queue, uniqueid), (position, joined) in sorted(self.waiting.items(),
                                                            key=lambda i: i[1][0]):
            channel = self.channels.get(uniqueid)
            h = channel.headers if channel else {}
            out.append([("Event", "QueueEntry"), ("ActionID", action_id), ("Queue", queue),
                        ("Position", str(position)), ("Channel", h.get("Channel", "")),
                        ("Uniqueid", uniqueid), ("CallerIDNum", h.get("CallerIDNum", "")),
                        ("CallerIDName", h.get("CallerIDName", "")),
                        ("Wait", str(max(0, int(self.now_t - joined))))])
        return out


class ReplayServer:
    """Serve ``connections`` one after the other, one per accepted client connection."""

    def __init__(self, connections: list[RecordedConnection], *, timestamps: bool = True,
                 speed: float = 0.0, chunk_size: int | None = None,
                 disconnect_after: int | None = None, gap: int = 0,
                 username: str | None = None, secret: str | None = None,
                 rebase_to: float | None = None, after_login_s: float = 0.5,
                 hold_after_cut: bool = False, gate: asyncio.Event | None = None,
                 live_clock: bool = False, pause_at: Iterable[int] = (),
                 resume_on_drop: bool = False) -> None:
        self.connections = connections
        base = base_epoch(connections) if timestamps else None
        self.base = base
        self.offset = 0.0 if rebase_to is None or base is None else rebase_to - base
        self.speed = speed
        self.chunk_size = chunk_size
        # Test knobs: drop the connection after this many served events of the first
        # connection, and let ``gap`` events pass unseen (as Asterisk does during an outage).
        self.disconnect_after = disconnect_after
        self.gap = gap
        self.username, self.secret = username, secret
        self.after_login_s = after_login_s
        # live_clock: the recording's clock is moved, when streaming starts, to "now", so
        # that (paced at speed 1) every Timestamp is the moment the event is sent.
        self.live_clock = live_clock
        # Fail-over tests: when a client vanishes mid-recording (killed), the next client
        # to connect gets the rest, as a PBX goes on with or without a given client.
        self.resume_on_drop = resume_on_drop
        # Tests may hold the recording back (after login) until they are ready to watch it.
        self.gate = gate
        # ... or stop it after so many served events until they call proceed() (e.g. to stop
        # a database there), instead of guessing with sleeps where the replay has got to.
        self.pause_at = sorted(pause_at)
        self.paused = asyncio.Event()
        self._proceed = asyncio.Event()
        # Set when the test disconnect happened; with hold_after_cut, connections are
        # refused (a PBX that is unreachable) until resume() is called.
        self.cut = asyncio.Event()
        self._held = False
        self._hold_after_cut = hold_after_cut
        self.actions: list[dict[str, str]] = []
        self.finished = asyncio.Event()
        self.world = _World()
        self._server: asyncio.Server | None = None
        self._queue: list[tuple[int, int]] = []  # (connection index, start message index)
        for index in range(len(connections)):
            self._queue.append((index, 0))
        self._sessions: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._closing = asyncio.Event()
        self.port = 0

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self._server = await asyncio.start_server(self._serve, host, port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        """Stop accepting, end every session (their sockets are closed), wait for them."""
        if self._server is None:
            return
        self._server.close()
        self._closing.set()
        for writer in list(self._writers):
            writer.close()
        if self._sessions:
            await asyncio.wait(list(self._sessions), timeout=5)
        await self._server.wait_closed()

    def proceed(self) -> None:
        """Go on streaming after a ``pause_at`` stop."""
        self.paused.clear()
        self._proceed.set()

    def resume(self) -> None:
        """Accept connections again after a held cut."""
        self._held = False

    def _stamp(self, t: float | None) -> str | None:
        if self.base is None or t is None:
            return None
        return f"{self.base + self.offset + t:.6f}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._sessions.add(task)
        self._writers.add(writer)
        try:
            await self._session(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass
        finally:
            self._sessions.discard(task)
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self._queue or self._held:
            return  # nothing left to play, or held: refuse, as a PBX that is unreachable
        index, start = self._queue.pop(0)
        connection = self.connections[index]
        writer.write((connection.banner + EOL).encode())
        parser = AmiParser(expect_banner=False, kinds=("Action",))
        logged_in = asyncio.Event()
        stop = asyncio.Event()
        lock = asyncio.Lock()
        answered = asyncio.Event()  # the client's first action after Login was answered
        actions_task = asyncio.create_task(
            self._answer_actions(reader, writer, parser, logged_in, stop, lock, answered))
        try:
            async with asyncio.timeout(10):
                await logged_in.wait()
            # A client usually asks for a snapshot right after login, and a real PBX answers
            # before much else happens; give it that moment instead of a burst of events.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.after_login_s):
                    await answered.wait()
            if self.gate is not None:
                await self.gate.wait()
            if self.live_clock and self.base is not None:
                first_t = next((m.t for m in connection.messages[start:] if m.t is not None),
                               0.0)
                self.offset = time.time() - self.base - first_t
                self.live_clock = False
            # Paced on an absolute schedule (first message's time + t / speed): sleeping the
            # gap between messages would add every sleep's overshoot to all later ones.
            first: tuple[float, float] | None = None  # (wall clock, recording t)
            served = 0
            messages = connection.messages
            position = start
            while position < len(messages):
                message = messages[position]
                position += 1
                self.world.apply(message)
                if not message.is_event:
                    continue  # the recorder's own responses mean nothing to this client
                if self.speed > 0 and message.t is not None:
                    if first is None:
                        first = (time.monotonic(), message.t)
                    due = first[0] + (message.t - first[1]) / self.speed
                    delay = due - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                try:
                    await self._write(writer, self._with_stamp(message), lock)
                except (ConnectionError, OSError):
                    if self.resume_on_drop:
                        self._queue.insert(0, (index, position))
                    raise
                served += 1
                if self.pause_at and served == self.pause_at[0]:
                    self.pause_at.pop(0)
                    self._proceed.clear()
                    self.paused.set()
                    await self._proceed.wait()
                if (index == 0 and self.disconnect_after is not None
                        and served >= self.disconnect_after):
                    self.disconnect_after = None
                    skip_to = position
                    for _ in range(self.gap):
                        if skip_to >= len(messages):
                            break
                        self.world.apply(messages[skip_to])
                        skip_to += 1
                    self._queue.insert(0, (index, skip_to))
                    self._held = self._hold_after_cut
                    self.cut.set()
                    return
            if not self._queue:
                self.finished.set()
                # Keep answering actions (Ping, Logoff) until the client goes or we close.
                closing = asyncio.create_task(self._closing.wait())
                stopped = asyncio.create_task(stop.wait())
                try:
                    await asyncio.wait({closing, stopped}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    closing.cancel()
                    stopped.cancel()
        finally:
            actions_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await actions_task

    def _with_stamp(self, message: RecordedMessage) -> bytes:
        stamp = self._stamp(message.t)
        headers = list(message.headers)
        if stamp is not None and message.get("Timestamp") is None:
            headers.insert(2 if len(headers) > 1 and headers[1][0] == "Privilege" else 1,
                           ("Timestamp", stamp))
        return encode_message(headers)

    async def _write(self, writer: asyncio.StreamWriter, data: bytes,
                     lock: asyncio.Lock) -> None:
        """Write one whole message; answers to actions wait, so nothing interleaves."""
        async with lock:
            if not self.chunk_size:
                writer.write(data)
                await writer.drain()
                return
            await self._write_chunked(writer, data)

    async def _write_chunked(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        assert self.chunk_size
        for i in range(0, len(data), self.chunk_size):
            writer.write(data[i:i + self.chunk_size])
            await writer.drain()
            # Two turns of the loop: the reader's callback runs before the next write, so
            # each chunk arrives in a read of its own.
            await asyncio.sleep(0)
            await asyncio.sleep(0)

    async def _answer_actions(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                              parser: AmiParser, logged_in: asyncio.Event,
                              stop: asyncio.Event, lock: asyncio.Lock,
                              answered: asyncio.Event) -> None:
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    return
                for item in parser.feed(data):
                    if isinstance(item, Banner | BadMessage):
                        continue
                    action = dict(item)
                    self.actions.append(action)
                    reply = b"".join(encode_message(m) for m in self._reply(action, logged_in))
                    async with lock:
                        writer.write(reply)
                        await writer.drain()
                    name = action.get("Action", "").lower()
                    if name == "logoff":
                        writer.close()
                        return
                    if name != "login" and logged_in.is_set():
                        answered.set()
        finally:
            stop.set()

    def _reply(self, action: dict[str, str],
               logged_in: asyncio.Event) -> list[list[tuple[str, str | None]]]:
        name = action.get("Action", "").lower()
        action_id = action.get("ActionID", "")
        stamp = self._stamp(self.world.now_t)
        stamped: list[tuple[str, str | None]] = [("Timestamp", stamp)] if stamp else []
        if name == "login":
            if self.username is not None and (action.get("Username") != self.username or
                                              action.get("Secret") != self.secret):
                return [[("Response", "Error"), ("ActionID", action_id),
                         ("Message", "Authentication failed")]]
            logged_in.set()
            return [[("Response", "Success"), ("ActionID", action_id),
                     ("Message", "Authentication accepted")],
                    [("Event", "FullyBooted"), ("Privilege", "system,all"), *stamped,
                     ("Status", "Fully Booted")]]
        if not logged_in.is_set():
            return [[("Response", "Error"), ("ActionID", action_id),
                     ("Message", "Permission denied")]]
        if name == "ping":
            return [[("Response", "Success"), ("ActionID", action_id), ("Ping", "Pong"),
                     ("Timestamp", stamp or "0")]]
        if name == "logoff":
            return [[("Response", "Goodbye"), ("ActionID", action_id),
                     ("Message", "Thanks for all the fish.")]]
        if name in ("coreshowchannels", "queuestatus"):
            items = (self.world.core_show_channels(action_id) if name == "coreshowchannels"
                     else self.world.queue_status(action_id))
            complete = "CoreShowChannelsComplete" if name == "coreshowchannels" \
                else "QueueStatusComplete"
            return [[("Response", "Success"), ("ActionID", action_id), ("EventList", "start"),
                     ("Message", "List will follow")],
                    *[[*item[:2], *stamped, *item[2:]] for item in items],
                    [("Event", complete), ("ActionID", action_id), *stamped,
                     ("EventList", "Complete"), ("ListItems", str(len(items)))]]
        if name == "getvar":
            value = self.world.getvar(action.get("Channel", ""), action.get("Variable", ""))
            if value is None:
                return [[("Response", "Error"), ("ActionID", action_id),
                         ("Message", "No such channel")]]
            return [[("Response", "Success"), ("ActionID", action_id),
                     ("Variable", action.get("Variable", "")), ("Value", value)]]
        if name in ("originate", "blindtransfer", "redirect", "setvar"):
            # Accepted as a PBX would (nothing happens: the recording goes on as recorded);
            # tests read what was asked in ``actions``.
            message = {"originate": "Originate successfully queued",
                       "blindtransfer": "Transfer succeeded"}.get(name, "Success")
            return [[("Response", "Success"), ("ActionID", action_id), ("Message", message)]]
        return [[("Response", "Error"), ("ActionID", action_id),
                 ("Message", f"replay server: {action.get('Action')} is not performed")]]
