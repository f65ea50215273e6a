"""GET /metrics in the Prometheus text format (needs a token: scrape with `authorization`)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from tocsin.api.deps import Reader, get_runtime
from tocsin.auth.service import Principal
from tocsin.observability.metrics import REGISTRY, JobQueueCollector
from tocsin.runtime import Runtime

router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=Response)
def metrics(runtime: Runtime = Depends(get_runtime), _: Principal = Reader) -> Response:
    queue = CollectorRegistry(auto_describe=False)
    queue.register(JobQueueCollector(runtime.read_factory, runtime.clock))
    body = generate_latest(REGISTRY) + generate_latest(queue)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
