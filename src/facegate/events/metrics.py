"""Prometheus metrics of the live side: cameras, decisions and event sinks."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class LiveMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry or CollectorRegistry()
        self.frames = Counter("facegate_camera_frames", "Frames processed", ["camera"], registry=r)
        self.skipped = Counter(
            "facegate_camera_frames_skipped",
            "Frames decoded but not processed (a newer one was)",
            ["camera"],
            registry=r,
        )
        self.up = Gauge("facegate_camera_up", "1 while the camera streams", ["camera"], registry=r)
        self.reconnects = Counter(
            "facegate_camera_reconnects", "Reconnection attempts", ["camera"], registry=r
        )
        self.frame_seconds = Histogram(
            "facegate_camera_frame_seconds",
            "Time to process one frame",
            ["camera"],
            buckets=(0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6),
            registry=r,
        )
        self.decisions = Counter(
            "facegate_door_decisions", "Door decisions", ["door", "decision"], registry=r
        )
        self.decision_latency = Histogram(
            "facegate_door_decision_seconds",
            "From the first frame a face is seen to its decision",
            ["door"],
            buckets=(0.1, 0.25, 0.5, 1, 2, 4, 8),
            registry=r,
        )
        self.sink_dropped = Counter(
            "facegate_sink_dropped", "Events dropped because a sink's queue was full", ["sink"], registry=r
        )
        self.sink_failed = Counter(
            "facegate_sink_failed", "Events a sink failed to deliver after its retries", ["sink"], registry=r
        )
        self.sink_delivered = Counter(
            "facegate_sink_delivered", "Events delivered by a sink", ["sink"], registry=r
        )
        self.fenced = Counter(
            "facegate_events_fenced",
            "Events a replica dropped because its lease on the camera had run out",
            ["camera"],
            registry=r,
        )
        self.leases = Gauge(
            "facegate_camera_leased", "1 while this replica holds the camera's lease", ["camera"], registry=r
        )
