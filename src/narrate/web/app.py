"""The ASGI application: ``create_app(settings)`` wires API, UI, health and middleware."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import plotly
import swagger_ui_bundle
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from narrate import __version__
from narrate.bootstrap import Container, build_container
from narrate.config import Settings
from narrate.errors import NarrateError
from narrate.jobs.records import HEARTBEAT_INTERVAL_S
from narrate.services import recovery, scheduler
from narrate.web.api import (
    alerts,
    assistant,
    auth,
    batch,
    datasets,
    deployments,
    drift,
    explain,
    health,
    jobs,
    models,
    monitor,
    recipes,
    recommend,
    retrain,
    schedules,
    users,
)
from narrate.web.errors import install_error_handlers
from narrate.web.guard import RequestGuard
from narrate.web.middleware import HttpMetrics, NarrateMiddleware, install_request_id_logging
from narrate.web.pages import data as data_pages
from narrate.web.pages import deploy as deploy_pages
from narrate.web.pages import interpret as interpret_pages
from narrate.web.pages import models as model_pages
from narrate.web.pages import monitor as monitor_pages
from narrate.web.pages import routes as pages

__all__ = ["app_from_env", "create_app"]

log = logging.getLogger(__name__)
_HERE = Path(__file__).parent
_PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
_SWAGGER_UI = Path(str(swagger_ui_bundle.swagger_ui_path))
_SWAGGER_URL = "/static/vendor/swagger-ui"
API_PREFIX = "/api/v1"
_SWEEP_EVERY_S = 3 * HEARTBEAT_INTERVAL_S


async def _recover_jobs(c: Container) -> None:
    """Fail jobs whose owning process stopped beating and reconcile records pointing at them."""
    await asyncio.to_thread(recovery.recover_jobs, c)


async def _sweep_jobs(c: Container) -> None:
    """Keep recovering abandoned jobs while the server runs, not only at start-up, and
    expire batch outputs and old prediction log files."""
    while True:
        await asyncio.sleep(_SWEEP_EVERY_S)
        try:
            await _recover_jobs(c)
            await asyncio.to_thread(_expire, c)
        except NarrateError as exc:  # e.g. the database is briefly away: try next round
            log.warning("could not check for interrupted jobs: %s", exc.message)


async def _check_alerts(c: Container) -> None:
    """Evaluate every enabled alert rule every NARRATE_ALERT_CHECK_S seconds."""
    from narrate.services.alerts import check_all

    while True:
        await asyncio.sleep(c.settings.alert_check_s)
        try:
            await asyncio.to_thread(check_all, c)
        except NarrateError as exc:  # e.g. the database is briefly away: try next round
            log.warning("could not check alert rules: %s", exc.message)


def _expire(c: Container) -> None:
    from datetime import timedelta

    from narrate.services.batch import expire_outputs
    from narrate.services.prediction_log import delete_predictions_before
    from narrate.storage.sql.tables import utcnow

    expire_outputs(c)
    cutoff = utcnow() - timedelta(days=c.settings.prediction_log_retention_days)
    delete_predictions_before(c.db, c.blobs, cutoff)


def _start_serving(c: Container) -> None:
    """The prediction log writer, and every active deployment loaded (when configured)."""
    from narrate.services.predict import runtime_cache
    from narrate.services.prediction_log import PredictionLog

    if "prediction_log" not in c.extras:
        sink = PredictionLog(c.db, c.blobs, flush_interval_s=c.settings.prediction_log_flush_s)
        sink.start()
        c.extras["prediction_log"] = sink
    if c.settings.deploy_warm_at_start:
        loaded = runtime_cache(c).warm()
        if loaded:
            log.info("loaded %d deployment(s)", loaded)


def _stop_serving(c: Container) -> None:
    """Finish shadow work, then flush what the prediction log still holds."""
    cache = c.extras.pop("runtime_cache", None)
    if cache is not None:
        cache.close()
    sink = c.extras.pop("prediction_log", None)
    if sink is not None:
        sink.close()
    from narrate.services.alert_delivery import close_dispatcher

    close_dispatcher(c)


def create_app(
    settings: Settings, container: Container | None = None, *, close_container: bool = False
) -> FastAPI:
    """Build the app.

    Args:
        settings: Loaded settings (``load_settings()``).
        container: Pre-built services (tests); built from settings when None.
        close_container: Close a passed-in ``container`` (its job workers and database
            pool) when the app shuts down; one the app builds itself is always closed.

    Returns:
        A FastAPI app whose lifespan checks the schema and recovers interrupted jobs.
    """
    owns_container = container is None or close_container
    install_request_id_logging()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        c = app.state.container
        c.db.require_current_schema()
        await asyncio.to_thread(recovery.recover_at_start, c)
        await asyncio.to_thread(_start_serving, c)
        # Everything loaded so far (libraries, models) lives as long as the process: keep
        # it out of the garbage collector's full passes, which otherwise walk millions of
        # such objects and stall every request in flight (the 100-client tail latency).
        gc.collect()
        gc.freeze()
        sweeper = asyncio.create_task(_sweep_jobs(c))
        alert_checker = asyncio.create_task(_check_alerts(c))
        await asyncio.to_thread(scheduler.start_scheduler, c)
        try:
            yield
        finally:
            for task in (sweeper, alert_checker):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await asyncio.to_thread(scheduler.stop_scheduler, c)
            await asyncio.to_thread(_stop_serving, c)
            if owns_container:
                c.close()

    app = FastAPI(
        title="Narrate",
        version=__version__,
        description="AI-guided machine learning for tabular data, explained in plain language.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None,  # served below from local assets, under the CSP
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.container = container or build_container(settings)
    app.state.metrics = HttpMetrics()
    app.state.metrics_allow = health.parse_networks(settings.metrics_allow, "NARRATE_METRICS_ALLOW")
    app.state.templates = Jinja2Templates(directory=_HERE / "templates")
    install_error_handlers(app)

    # Deploy first: FastAPI tries routes in order, and predict is the hottest path.
    for router in (
        deployments.router,
        auth.router,
        users.router,
        jobs.router,
        datasets.router,
        recipes.router,
        models.router,
        batch.router,
        drift.router,
        explain.router,
        recommend.router,
        monitor.router,
        alerts.router,
        retrain.router,
        schedules.router,
        assistant.router,
    ):
        app.include_router(router, prefix=API_PREFIX)
    app.include_router(health.router)
    app.include_router(data_pages.router)
    app.include_router(model_pages.router)
    app.include_router(deploy_pages.router)
    app.include_router(interpret_pages.router)
    app.include_router(monitor_pages.router)
    app.include_router(pages.router)

    @app.get("/static/vendor/plotly.min.js", include_in_schema=False)
    async def plotly_js() -> FileResponse:
        return FileResponse(
            _PLOTLY_JS,
            media_type="text/javascript",
            headers={"Cache-Control": "public, max-age=86400"},
        )

    @app.get("/docs", include_in_schema=False)
    async def swagger_docs(request: Request) -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url=f"{API_PREFIX}/openapi.json",
            title="Narrate API",
            swagger_js_url=f"{_SWAGGER_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{_SWAGGER_URL}/swagger-ui.css",
            swagger_favicon_url=f"{_SWAGGER_URL}/favicon-32x32.png",
            oauth2_redirect_url=None,
        )
        # The page's one inline script (Swagger UI's set-up) runs under the CSP nonce.
        nonce = request.state.csp_nonce
        html = bytes(page.body).decode().replace("<script>", f'<script nonce="{nonce}">')
        return HTMLResponse(html)

    app.mount(_SWAGGER_URL, StaticFiles(directory=_SWAGGER_UI), name="swagger-ui")
    app.mount("/static", StaticFiles(directory=_HERE / "static"), name="static")

    # Innermost of the three, so its refusals still carry CORS and security headers.
    app.add_middleware(
        RequestGuard,
        settings=settings,
        public_paths=[f"{API_PREFIX}/auth/token"],
        upload_paths=[f"{API_PREFIX}/datasets", f"{API_PREFIX}/deployments/*/batch"],
        body_limits={
            f"{API_PREFIX}/deployments/*/predict": settings.max_predict_body_mb,
            f"{API_PREFIX}/deployments/*/actuals": settings.max_actuals_body_mb,
        },
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
            allow_credentials=False,
        )
    app.add_middleware(NarrateMiddleware, metrics=app.state.metrics)
    return app


def app_from_env() -> FastAPI:
    """The app of one ``narrate serve --workers N`` process, built from the environment.

    Each worker process builds its own container (database pool, blob store, job pool,
    loaded deployments, prediction log writer); the parent passed its settings down as
    ``NARRATE_*`` environment variables.
    """
    from narrate.config import load_settings

    return create_app(load_settings())
