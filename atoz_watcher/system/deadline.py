"""Run a blocking call with a deadline enforced from outside it.

A call that talks to a remote peer can block where no timeout of its own reaches (a name lookup
in the C library, an event loop that will not unwind). ``call_within`` runs it on a thread of its
own and waits at most ``seconds``: the caller always gets an answer in time. A call that
overruns is abandoned, not killed (Python cannot kill a thread): it ends when its own limits end
it, and whatever it holds (a connection slot, say) it releases then, from that thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar, cast

from atoz_watcher.errors import AtozError

T = TypeVar("T")


class DeadlineExceededError(AtozError):
    """The call did not finish within its deadline; it was abandoned."""


class _Outcome(Generic[T]):
    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: T | None = None
        self.error: BaseException | None = None


def call_within(call: Callable[[], T], seconds: float, *, name: str) -> T:
    """``call()``'s result or exception, or DeadlineExceededError after ``seconds``."""
    outcome: _Outcome[T] = _Outcome()

    def run() -> None:
        try:
            outcome.value = call()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller as it is
            outcome.error = exc
        finally:
            outcome.done.set()

    # A daemon thread: one that overran must never hold up the process's exit.
    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    if not outcome.done.wait(max(seconds, 0.0)):
        raise DeadlineExceededError(f"{name}: no answer within {seconds:g} s")
    thread.join()  # it has finished: joining only reaps it
    if outcome.error is not None:
        raise outcome.error
    return cast("T", outcome.value)  # set whenever no error was
