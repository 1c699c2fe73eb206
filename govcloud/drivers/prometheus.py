"""A client of Prometheus' HTTP API (``/api/v1/query_range``) for the idle report: plain urllib, no SDK.

Only what ``report idle`` needs: one range query per metric for every scraped VM at once (not one per VM:
10k VMs are one request each for CPU and memory), answered as plain series keyed by their labels. Failures
become ``TemporaryError`` (unreachable, timeout, 5xx: try again) or ``PermanentError`` (4xx, a query
Prometheus refuses, an answer that is not Prometheus'), raised ``from`` the original.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from govcloud.errors import PermanentError, TemporaryError


@dataclass(frozen=True)
class RangeSeries:
    """One series of a range query: its labels and (epoch seconds, value) samples, NaNs left out."""

    labels: dict[str, str]
    samples: list[tuple[float, float]]


class PrometheusClient:
    """``query_range`` against one Prometheus (``base``: e.g. ``http://127.0.0.1:9090``)."""

    def __init__(self, base: str, *, timeout: float = 30.0) -> None:
        if not base.startswith(("http://", "https://")):
            raise PermanentError(f"Prometheus URL {base!r}: expected http(s)://host:port")
        self.base = base.rstrip("/")
        self.timeout = timeout

    def _get(self, path: str, params: dict[str, str]) -> Any:
        url = f"{self.base}{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")[:300]
            if exc.code >= 500 or exc.code == 429:
                raise TemporaryError(f"Prometheus {self.base} answered {exc.code}: {detail}", delay=10.0) from exc
            raise PermanentError(f"Prometheus {self.base} refused {path} ({exc.code}): {detail}") from exc
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            raise TemporaryError(f"cannot reach Prometheus at {self.base}: {getattr(exc, 'reason', exc)}", delay=10.0) from exc
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise PermanentError(f"{self.base}{path} did not answer JSON: is it Prometheus?") from exc
        if not isinstance(data, dict) or data.get("status") != "success":
            raise PermanentError(f"Prometheus {self.base}: {data.get('error') if isinstance(data, dict) else data!r}")
        return data.get("data")

    MAX_POINTS = 10_000
    """Points per series per request: Prometheus refuses more than 11,000, so longer ranges are asked in pieces."""

    def query_range(self, query: str, *, start: float, end: float, step: float) -> list[RangeSeries]:
        """Evaluate ``query`` every ``step`` seconds over ``[start, end]``; one ``RangeSeries`` per result
        (a range of more than ``MAX_POINTS`` steps is asked in consecutive pieces and joined)."""
        merged: dict[tuple[tuple[str, str], ...], RangeSeries] = {}
        at = start
        while at <= end:
            last = min(end, at + step * (self.MAX_POINTS - 1))
            for series in self._range(query, at, last, step):
                key = tuple(sorted(series.labels.items()))
                if key in merged:
                    merged[key].samples.extend(series.samples)
                else:
                    merged[key] = series
            at = last + step
        return list(merged.values())

    def _range(self, query: str, start: float, end: float, step: float) -> list[RangeSeries]:
        data = self._get("/api/v1/query_range", {"query": query, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"})
        if not isinstance(data, dict) or data.get("resultType") != "matrix":
            raise PermanentError(f"Prometheus {self.base}: expected a matrix for {query!r}, got {data!r:.200}")
        found = []
        for item in data.get("result", []):
            samples = [(float(t), float(v)) for t, v in item.get("values", [])]
            found.append(RangeSeries({str(k): str(v) for k, v in item.get("metric", {}).items()},
                                     [(t, v) for t, v in samples if not math.isnan(v)]))
        return found
