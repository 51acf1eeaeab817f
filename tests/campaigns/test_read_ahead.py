"""ReadAhead: a pure function worked out a step ahead in a thread (the lead import's next chunk)."""

from __future__ import annotations

import threading

import pytest

from campaigns.read_ahead import ReadAhead


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.release = threading.Event()
        self.release.set()

    def read(self, text: str) -> str:
        self.release.wait(5)
        self.calls.append((text, threading.current_thread().name))
        if text == "boom":
            raise ValueError("unreadable")
        return text.upper()


def test_a_key_started_ahead_is_read_in_the_background_thread_once() -> None:
    recorder = Recorder()
    ahead = ReadAhead(recorder.read, name="test-read")

    ahead.start("abc")

    assert ahead.take("abc") == "ABC"
    assert len(recorder.calls) == 1
    assert recorder.calls[0][1].startswith("test-read")


def test_take_without_start_reads_in_the_calling_thread() -> None:
    recorder = Recorder()
    ahead = ReadAhead(recorder.read, name="test-read")

    assert ahead.take("abc") == "ABC"
    assert recorder.calls == [("abc", threading.current_thread().name)]


def test_another_key_than_the_one_read_ahead_is_read_anew_and_the_stale_result_dropped() -> None:
    recorder = Recorder()
    ahead = ReadAhead(recorder.read, name="test-read")
    ahead.start("old")
    ahead.take("old")  # settles the thread's work before the next start
    ahead.start("stale")

    assert ahead.take("new") == "NEW"
    # The stale result is gone: taking its key again reads it again, here.
    assert ahead.take("stale") == "STALE"
    assert recorder.calls[-1] == ("stale", threading.current_thread().name)


def test_a_later_start_replaces_one_never_taken() -> None:
    recorder = Recorder()
    recorder.release.clear()  # the first read waits, so the second start finds it pending
    ahead = ReadAhead(recorder.read, name="test-read")
    ahead.start("first")
    ahead.start("second")
    recorder.release.set()

    assert ahead.take("second") == "SECOND"
    assert ahead.take("first") == "FIRST"
    assert recorder.calls[-1][1] == threading.current_thread().name


def test_an_error_reading_ahead_is_raised_by_take() -> None:
    ahead = ReadAhead(Recorder().read, name="test-read")
    ahead.start("boom")

    with pytest.raises(ValueError, match="unreadable"):
        ahead.take("boom")
