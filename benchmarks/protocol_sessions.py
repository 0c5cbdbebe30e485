"""Dashboard sessions without a browser: each holds Streamlit's websocket and does what the
browser's script does for the overview — asks for the page, then reruns the live-refresh
fragment whenever the server's auto-rerun interval says so.

Twenty headless Chromium pages take this machine's two cores for themselves (session 3: one
to four page runs a minute). The server cannot tell these sessions from browsers: the same
page runs, the same deltas sent (none taken from the browser's message cache, so if
anything more work than a browser causes). What they leave out is the browser's rendering,
which the data time the server logs never included.

    sessions = ProtocolSessions("ws://127.0.0.1:8501/_stcore/stream", count=20)
    sessions.start(); ...; sessions.stop(); sessions.summary()
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field

import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg


@dataclass
class SessionLog:
    page_runs: int = 0  # full runs the server finished for this session
    fragment_runs: int = 0
    exceptions: int = 0  # st.exception deltas: an error shown on the page
    errors: list[str] = field(default_factory=list)  # connection-level failures


def _rerun(page_hash: str, fragment_id: str = "") -> bytes:
    msg = BackMsg()
    state = msg.rerun_script
    state.query_string = ""
    state.page_script_hash = page_hash
    if fragment_id:
        state.fragment_id = fragment_id
        state.is_auto_rerun = True
    return msg.SerializeToString()


async def _session(url: str, stop: asyncio.Event, log: SessionLog, cookies: dict[str, str] | None) -> None:
    # Signed in: what the browser sends, its cookies (the sign-in and the XSRF token), the
    # token again as the second subprotocol, and its origin; Streamlit reads the signed-in
    # person from the cookie only when the token matches and the origin is given.
    signed = {} if not cookies else {
        "additional_headers": {"Cookie": "; ".join(f"{name}={value}" for name, value in cookies.items())},
        "origin": websockets.Origin(url.replace("ws://", "http://").split("/_stcore")[0]),
    }
    protocols = ["streamlit", *([cookies["_streamlit_xsrf"]] if cookies else [])]
    try:
        async with websockets.connect(url, subprotocols=protocols, max_size=None, open_timeout=120, **signed) as ws:
            page_hash = ""
            await ws.send(_rerun(page_hash))
            timers: dict[str, asyncio.Task] = {}

            async def every(seconds: float, fragment_id: str) -> None:
                while not stop.is_set():
                    await asyncio.sleep(seconds)
                    await ws.send(_rerun(page_hash, fragment_id))

            while not stop.is_set():
                try:
                    raw = await asyncio.wait_for(ws.recv(), timeout=0.5)
                except TimeoutError:
                    continue
                msg = ForwardMsg()
                msg.ParseFromString(raw)
                kind = msg.WhichOneof("type")
                if kind == "new_session":
                    page_hash = msg.new_session.page_script_hash or page_hash
                elif kind == "navigation":
                    page_hash = msg.navigation.page_script_hash or page_hash
                elif kind == "auto_rerun":
                    fragment_id = msg.auto_rerun.fragment_id
                    if fragment_id not in timers:
                        timers[fragment_id] = asyncio.create_task(every(msg.auto_rerun.interval, fragment_id))
                elif kind == "delta" and msg.delta.new_element.WhichOneof("type") == "exception":
                    log.exceptions += 1
                elif kind == "script_finished":
                    if msg.script_finished == ForwardMsg.FINISHED_SUCCESSFULLY:
                        log.page_runs += 1
                    elif msg.script_finished == ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY:
                        log.fragment_runs += 1
            for task in timers.values():
                task.cancel()
    except Exception as exc:
        log.errors.append(f"{type(exc).__name__}: {exc}")


class ProtocolSessions:
    """``count`` sessions on one event loop in a thread of their own."""

    def __init__(self, url: str, count: int, cookies: dict[str, str] | None = None) -> None:
        """``cookies``: a signed-in browser's (the sign-in and the XSRF cookie), for every session."""
        self.url, self.count, self.cookies = url, count, cookies
        self.logs = [SessionLog() for _ in range(count)]
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="protocol-sessions", daemon=True)
        self._ready = threading.Event()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._stop = asyncio.Event()
        self._ready.set()
        self._loop.run_until_complete(asyncio.gather(*(_session(self.url, self._stop, log, self.cookies) for log in self.logs)))

    def start(self) -> None:
        self._thread.start()
        self._ready.wait()

    def wait_for_first_runs(self, timeout: float) -> bool:
        """True when every session has had its first page run."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(log.page_runs or log.errors for log in self.logs):
                return True
            time.sleep(0.2)
        return False

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=30)

    def summary(self) -> dict:
        return {
            "page_runs_seen": sum(log.page_runs for log in self.logs),
            "fragment_runs_seen": sum(log.fragment_runs for log in self.logs),
            "page_exceptions": sum(log.exceptions for log in self.logs),
            "connection_errors": [error for log in self.logs for error in log.errors],
        }
