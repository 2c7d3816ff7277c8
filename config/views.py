"""Operators' endpoints: ``/healthz`` for load balancers and monitors, ``/metrics``
for Prometheus. Thin: the checks live in config.health, the metrics in config.metrics."""

from channels.layers import get_channel_layer
from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseNotFound, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from config import health, metrics


@never_cache
@require_GET
async def healthz(request: HttpRequest) -> JsonResponse:
    """200 and {"status": "ok", …} when every check passes, else 503. No sign-in:
    it names checks, states and ages only, never hosts, errors or counts of people."""
    report = await health.report_async()
    return JsonResponse(report.public(), status=200 if report.ok else 503)


@never_cache
@require_GET
async def metrics_view(request: HttpRequest) -> HttpResponse:
    """This process's metrics for Prometheus, for a bearer of KONTOR_METRICS_TOKEN
    only; without a token configured there are none (404)."""
    token = settings.KONTOR_METRICS_TOKEN
    if not token:
        return HttpResponseNotFound("Not found", content_type="text/plain")
    if not metrics.authorized(request.headers.get("Authorization", ""), token):
        response = HttpResponse("Unauthorized", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="kontor-metrics"'
        return response
    await metrics.refresh(get_channel_layer())
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
