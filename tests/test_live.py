"""The server's shared results and the keeper that prepares each new data version."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

from polars.testing import assert_frame_equal

from dashboard.live import Keeper, Results
from data_access.metrics import Filters, compute
from data_access.metrics.exit import answer
from data_access.metrics.requests import FreshnessRequest, MetricsRequest
from data_access.periods import HELSINKI
from tests.factories import add_contacts, make_store

ROOT = Path(__file__).resolve().parent.parent
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def _contacts(n: int, *, prefix: str) -> list[dict]:
    return [
        {"contact_id": f"{prefix}{i}", "occurred_at": NOW - dt.timedelta(hours=i + 1), "municipality_code": "853",
         "channel": ("phone", "chat")[i % 2], "resolved_first_contact": i % 3 == 0}
        for i in range(n)
    ]


def _request(metrics: tuple[str, ...], by: tuple[str, ...] = ()) -> MetricsRequest:
    today = NOW.astimezone(HELSINKI).date()  # days are local: from 22 UTC in winter, tomorrow's
    return MetricsRequest.of(metrics, Filters(start=today - dt.timedelta(days=30), end=today), by=by)


def _direct(store, request) -> object:
    if isinstance(request, FreshnessRequest):
        return answer(store, request)
    filters = request.periods if request.several else request.periods[0]
    return compute(store, metrics=list(request.metrics), filters=filters, by=list(request.by))


def test_sessions_asking_at_once_share_one_computation(engine, settings):
    add_contacts(engine, _contacts(40, prefix="a"))
    store = make_store(engine, settings)
    results = Results()
    request = _request(("contacts", "first_contact_resolution"), ("channel",))
    start = threading.Barrier(8)
    seen = []

    def session() -> None:
        start.wait()
        seen.append(results.get(store.view(), request))

    threads = [threading.Thread(target=session) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.computed == 1 and len(seen) == 8
    for frame in seen:
        assert_frame_equal(frame, _direct(store, request), check_row_order=False)


def test_the_keeper_prepares_a_new_version_before_publishing_it(engine, settings):
    add_contacts(engine, _contacts(30, prefix="a"))
    store = make_store(engine, settings)
    results_before = Results()
    from dashboard import live

    live._results[store] = results_before
    asked = [_request(("contacts",)), _request(("electronic_share",), ("municipality",)), FreshnessRequest(by="source_system")]
    old = store.view()
    for request in asked:
        results_before.get(old, request)
    keeper = Keeper(store, interval=60, remember_seconds=300)  # stepped by hand, not started
    keeper.step()
    assert keeper.published.version == old.version and results_before.computed == 3  # nothing new: nothing done

    add_contacts(engine, _contacts(12, prefix="b"))
    keeper.step()
    new = keeper.published
    assert new.version != old.version and new.version == store.version
    assert results_before.computed == 6  # the asked results, at the new version, by the keeper
    for request in asked:
        found = results_before.get(new, request)
        assert_frame_equal(found, _direct(store, request), check_row_order=False)
    assert results_before.computed == 6  # the sessions' reruns found them
    assert results_before.get(new, asked[0])["value"].to_list() != results_before.get(old, asked[0])["value"].to_list()


def test_requests_not_asked_lately_are_not_prepared(engine, settings):
    add_contacts(engine, _contacts(10, prefix="a"))
    store = make_store(engine, settings)
    results = Results()
    results.get(store.view(), _request(("contacts",)))
    assert results.recent(within_seconds=60) == [_request(("contacts",))]
    assert results.recent(within_seconds=0) == []  # forgotten
    add_contacts(engine, _contacts(3, prefix="b"))
    store.refresh()
    assert results.warm(store.view(), within_seconds=60) == 0 and results.computed == 1


def test_sessions_can_convert_the_same_result_at_once(tmp_path):
    """Twenty sessions hand the same cached result to st.dataframe (DataFrame.to_pandas) at
    the same moment. Converting one polars DataFrame from many threads at once can freeze the
    whole process (pola-rs/polars#27396), so every caller gets its own clone. Runs in a
    subprocess: a frozen interpreter fails at the timeout instead of hanging the suite."""
    code = textwrap.dedent(
        """
        from concurrent.futures import ThreadPoolExecutor
        import polars as pl
        from dashboard.live import Results

        class View:  # Results only hands the view to the computation, stubbed here
            def __init__(self, version):
                self.version = version
                self.key = (0, version)

        results = Results()
        for round_ in range(6):
            frame = pl.DataFrame({"a": [5234.523] * 100_000, "b": ["x"] * 100_000})
            results._done[((0, round_), ("registry",))] = frame
            with ThreadPoolExecutor(10) as pool:
                for future in [pool.submit(lambda: results.get(View(round_), ("registry",)).to_pandas()) for _ in range(100)]:
                    future.result()
        print("finished")
        """
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "finished"


def test_today_so_far_is_prepared_for_the_minute_the_next_rerun_asks(engine, settings, monkeypatch):
    """Sessions asked "today so far" up to 10:00; the keeper, at 10:01, prepares the request
    up to 10:01 (what the next reruns ask), not the earlier minute's again."""
    from dashboard import live

    add_contacts(engine, _contacts(10, prefix="a"))
    store = make_store(engine, settings)
    results = Results()
    today = NOW.date()
    earlier = MetricsRequest.of(("contacts",), Filters(start=today, end=today, until_minute=600))
    now_request = MetricsRequest.of(("contacts",), Filters(start=today, end=today, until_minute=601))
    results.get(store.view(), earlier)
    add_contacts(engine, _contacts(3, prefix="b"))
    store.refresh()
    view = store.view()
    monkeypatch.setattr(live, "_minutes_to_prepare", lambda: [601])
    assert results.warm(view, within_seconds=60) == 1
    assert results.computed == 2
    assert_frame_equal(results.get(view, now_request), _direct(view, now_request))
    assert results.computed == 2  # prepared
    results.get(view, earlier)
    assert results.computed == 3  # not prepared


def test_the_overview_cards_request_is_prepared_for_the_next_minute_too():
    """The cards ask six periods in one request; only the "today so far" ones move to the
    next minute, the whole days stay as asked."""
    from dashboard.live import _for_minute

    today = NOW.date()
    week_earlier = today - dt.timedelta(days=7)
    periods = (
        Filters(start=today, end=today, until_minute=600),
        Filters(start=week_earlier, end=week_earlier, until_minute=600),
        Filters(start=today - dt.timedelta(days=7), end=today - dt.timedelta(days=1)),
    )
    moved = _for_minute(MetricsRequest.of(("contacts",), periods), 601)
    assert [f.until_minute for f in moved.periods] == [601, 601, None]
    assert [(f.start, f.end) for f in moved.periods] == [(f.start, f.end) for f in periods]
    assert _for_minute(MetricsRequest.of(("contacts",), periods[2:]), 601).periods == periods[2:]


def test_a_view_keeps_its_version_while_the_store_moves_on(engine, settings):
    add_contacts(engine, _contacts(6, prefix="a"))
    store = make_store(engine, settings)
    before = store.view()
    add_contacts(engine, _contacts(4, prefix="b"))
    store.refresh()
    after = store.view()
    assert after.version > before.version
    assert before.contacts.height == 6 and after.contacts.height == 10
    request = _request(("contacts",))
    results = Results()
    assert results.get(before, request)["value"].to_list() == [6]
    assert results.get(after, request)["value"].to_list() == [10]


def test_page_runs_take_turns(tmp_path):
    from dashboard import state
    from data_access.config import Settings

    settings = Settings(data_dir=tmp_path, page_runs_at_once=2)
    running, most, waited = [0], [0], []
    lock = threading.Lock()
    start = threading.Barrier(6)

    def page_run() -> None:
        start.wait()
        with state.page_run_turn(settings) as queued:
            waited.append(queued)
            with lock:
                running[0] += 1
                most[0] = max(most[0], running[0])
            threading.Event().wait(0.05)
            with lock:
                running[0] -= 1

    threads = [threading.Thread(target=page_run) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most[0] == 2 and len(waited) == 6
    # two runs went at once, the others waited for one of them (50 ms each) or more
    assert sorted(waited)[2] >= 0.04


def test_a_page_run_kept_waiting_too_long_runs_anyway(tmp_path, monkeypatch):
    from dashboard import state
    from data_access.config import Settings

    monkeypatch.setattr(state, "TURN_WAIT_SECONDS", 0.2)
    settings = Settings(data_dir=tmp_path, page_runs_at_once=1)
    holding, release = threading.Event(), threading.Event()

    def hung_page_run() -> None:
        with state.page_run_turn(settings):
            holding.set()
            release.wait(10)

    hung = threading.Thread(target=hung_page_run)
    hung.start()
    holding.wait(5)
    with state.page_run_turn(settings) as queued:
        assert 0.19 <= queued < 5  # ran after the limit, not when the hung run ended
    release.set()
    hung.join()
    turns = state._turns[1]  # one turn again: the late run did not give back a turn it never had
    assert turns.acquire(blocking=False) and not turns.acquire(blocking=False)
    turns.release()


def test_in_a_minutes_last_seconds_the_next_minute_is_prepared_too(monkeypatch):
    import datetime as dt_

    from dashboard import live

    at = dt_.datetime(2026, 11, 30, 10, 0, 49)
    monkeypatch.setattr(live, "local_now", lambda: at)
    assert live._minutes_to_prepare() == [601]  # today so far: through 10.00
    at = at.replace(second=51)
    assert live._minutes_to_prepare() == [601, 602]
    at = at.replace(hour=23, minute=59)
    assert live._minutes_to_prepare() == [1440]  # not into tomorrow
