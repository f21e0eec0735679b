"""Metrics: real HTTP GETs against the endpoint on loopback, parsed with Prometheus' parser."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from atoz_watcher.system.metrics import LATENCY_BUCKETS, Metrics, MetricsServer

TIMEOUT = 10


def get(server: MetricsServer, path: str = "/metrics") -> tuple[int, str, str]:
    url = f"http://127.0.0.1:{server.port}{path}"
    with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
        body = response.read().decode("utf-8")
        return response.status, response.headers["Content-Type"], body


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the exposition text: (name, sorted labels) -> value."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
def server(metrics: Metrics) -> Iterator[MetricsServer]:
    served = metrics.serve("127.0.0.1", 0)
    yield served
    served.close()


class TestEndpoint:
    def test_binds_an_ephemeral_port(self, server: MetricsServer) -> None:
        assert server.port > 0

    def test_serves_prometheus_text(self, server: MetricsServer) -> None:
        status, content_type, body = get(server)
        assert status == 200
        assert content_type.startswith("text/plain")
        assert "# TYPE atoz_files_registered_total counter" in body
        assert "# TYPE atoz_queue_depth gauge" in body
        assert "# TYPE atoz_registration_latency_seconds histogram" in body

    def test_other_paths_are_not_found(self, server: MetricsServer) -> None:
        with pytest.raises(urllib.error.HTTPError) as info:
            get(server, "/")
        assert info.value.code == 404
        info.value.close()

    def test_values_after_calls(self, metrics: Metrics, server: MetricsServer) -> None:
        metrics.registered()
        metrics.registered(4)
        metrics.skipped("no-patient")
        metrics.skipped("no-patient")
        metrics.skipped("ignored")
        metrics.error("database")
        metrics.error("permission")
        metrics.error("database")
        metrics.set_queue_depth(7)
        metrics.set_queue_depth(3)
        metrics.scan_completed(1_700_000_000.5)
        metrics.observe_latency(0.07)
        metrics.observe_latency(2.0)
        metrics.observe_latency(120.0)

        values = samples(get(server)[2])

        assert values["atoz_files_registered_total", ()] == 5
        assert values["atoz_files_skipped_total", (("reason", "no-patient"),)] == 2
        assert values["atoz_files_skipped_total", (("reason", "ignored"),)] == 1
        assert values["atoz_errors_total", (("kind", "database"),)] == 2
        assert values["atoz_errors_total", (("kind", "permission"),)] == 1
        assert values["atoz_queue_depth", ()] == 3
        assert values["atoz_last_successful_scan_timestamp_seconds", ()] == 1_700_000_000.5
        latency = "atoz_registration_latency_seconds"
        assert values[f"{latency}_count", ()] == 3
        assert values[f"{latency}_sum", ()] == pytest.approx(122.07)
        assert values[f"{latency}_bucket", (("le", "0.05"),)] == 0
        assert values[f"{latency}_bucket", (("le", "0.1"),)] == 1
        assert values[f"{latency}_bucket", (("le", "2.5"),)] == 2
        assert values[f"{latency}_bucket", (("le", "60.0"),)] == 2
        assert values[f"{latency}_bucket", (("le", "+Inf"),)] == 3

    def test_a_scrape_sees_later_changes(self, metrics: Metrics, server: MetricsServer) -> None:
        metrics.set_queue_depth(1)
        assert samples(get(server)[2])["atoz_queue_depth", ()] == 1
        metrics.set_queue_depth(0)
        assert samples(get(server)[2])["atoz_queue_depth", ()] == 0


class TestRegistry:
    def test_each_metrics_object_has_its_own_registry(self) -> None:
        first, second = Metrics(), Metrics()
        first.registered(3)
        assert first.registry is not second.registry
        assert second.registry.get_sample_value("atoz_files_registered_total") == 0
        assert first.registry.get_sample_value("atoz_files_registered_total") == 3

    def test_a_given_registry_is_used(self) -> None:
        registry = CollectorRegistry()
        Metrics(registry).set_queue_depth(9)
        assert registry.get_sample_value("atoz_queue_depth") == 9

    def test_latency_buckets_span_fifty_ms_to_a_minute(self) -> None:
        assert LATENCY_BUCKETS[0] == 0.05
        assert LATENCY_BUCKETS[-1] == 60
        assert list(LATENCY_BUCKETS) == sorted(LATENCY_BUCKETS)


class TestClose:
    def test_close_leaves_no_thread_and_frees_the_port(self, metrics: Metrics) -> None:
        before = set(threading.enumerate())
        server = metrics.serve("127.0.0.1", 0)
        get(server)
        server.close()
        assert set(threading.enumerate()) <= before
        with pytest.raises(urllib.error.URLError):
            get(server)

    def test_close_twice_is_harmless(self, metrics: Metrics) -> None:
        server = metrics.serve("127.0.0.1", 0)
        server.close()
        server.close()

    def test_context_manager_closes(self, metrics: Metrics) -> None:
        before = set(threading.enumerate())
        with metrics.serve("127.0.0.1", 0) as server:
            assert get(server)[0] == 200
        assert set(threading.enumerate()) <= before

    def test_the_port_can_be_served_again_after_close(self, metrics: Metrics) -> None:
        server = metrics.serve("127.0.0.1", 0)
        port = server.port
        server.close()
        with metrics.serve("127.0.0.1", port) as again:
            assert again.port == port
            assert get(again)[0] == 200

    def test_a_port_in_use_raises_and_starts_no_thread(
        self, metrics: Metrics, server: MetricsServer
    ) -> None:
        before = set(threading.enumerate())
        with pytest.raises(OSError, match="in use"):
            metrics.serve("127.0.0.1", server.port)
        assert set(threading.enumerate()) <= before
