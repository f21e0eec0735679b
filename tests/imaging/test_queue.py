"""The thumbnail queue: threads that render what the daemon hands them, and survive bad jobs."""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from PIL import Image

from atoz_watcher.imaging.jobs import Outcome, ThumbJob, thumbnail_of
from atoz_watcher.imaging.queue import RenderNow, ThumbnailWorker, default_workers
from atoz_watcher.imaging.render import NO_ADJUST, Adjust, Renderer
from atoz_watcher.system.metrics import Metrics

STAMP = datetime(2000, 1, 1)


def job(folder: Path, name: str, *, image: bool = True) -> ThumbJob:
    source = folder / name
    if image:
        Image.new("RGB", (240, 160), (90, 90, 200)).save(source)
    else:
        source.write_bytes(b"not an image at all")
    return ThumbJob(source=source, dest=thumbnail_of(source), stamp=STAMP, pat_num=1, doc_num=1)


class ExplodingRenderer(Renderer):
    """A renderer with a bug: it raises something no one expects for one file."""

    def encode(
        self, source: Path | BinaryIO, *, name: str, adjust: Adjust = NO_ADJUST
    ) -> tuple[str, bytes]:
        if name == "boom.png":
            raise RuntimeError("a bug in a codec")
        return super().encode(source, name=name, adjust=adjust)


def outcomes(metrics: Metrics) -> dict[str, float]:
    return {
        outcome: metrics.registry.get_sample_value("atoz_thumbnails_total", {"outcome": outcome})
        or 0.0
        for outcome in ("made", "failed", "fresh", "missing")
    }


def test_every_job_is_rendered_and_bad_ones_do_not_stop_the_threads(tmp_path: Path) -> None:
    metrics = Metrics()
    worker = ThumbnailWorker(ExplodingRenderer(), workers=2, metrics=metrics)
    worker.start()
    try:
        jobs = [job(tmp_path, f"ok{i}.png") for i in range(20)]
        worker.submit(job(tmp_path, "boom.png"))
        worker.submit(job(tmp_path, "bad.png", image=False))
        for each in jobs:
            worker.submit(each)
        assert worker.wait_idle(timeout=60)
    finally:
        worker.close()

    assert all(each.dest.exists() for each in jobs)
    assert outcomes(metrics) == {"made": 20, "failed": 2, "fresh": 0, "missing": 0}
    assert metrics.registry.get_sample_value("atoz_thumbnail_queue_depth") == 0


def test_close_stops_every_thread(tmp_path: Path) -> None:
    worker = ThumbnailWorker(Renderer(), workers=3, metrics=Metrics())
    worker.start()
    worker.submit(job(tmp_path, "a.png"))
    worker.close()

    assert [t.name for t in threading.enumerate() if t.name.startswith("atoz-thumbs")] == []


def test_default_workers_is_one_per_core() -> None:
    assert default_workers(3) == 3
    assert default_workers(0) >= 1


def test_a_worker_without_metrics_renders_too(tmp_path: Path) -> None:
    worker = ThumbnailWorker(Renderer(), workers=1)
    worker.start()
    try:
        made = job(tmp_path, "a.png")
        worker.submit(made)
        assert worker.wait_idle(timeout=60)
    finally:
        worker.close()

    assert made.dest.exists()


def test_render_now_renders_on_the_callers_thread_and_reports_each_outcome(
    tmp_path: Path,
) -> None:
    reported: list[Outcome] = []
    render = RenderNow(Renderer(), on_outcome=reported.append)
    good, bad = job(tmp_path, "good.png"), job(tmp_path, "bad.png", image=False)

    assert [render(good), render(bad)] == [Outcome.MADE, Outcome.FAILED]
    assert reported == [Outcome.MADE, Outcome.FAILED]
    assert good.dest.exists()
    assert not bad.dest.exists()
