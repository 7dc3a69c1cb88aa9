"""The ASGI application: ``create_app(settings)`` wires API, UI, health and middleware."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import plotly
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from narrate import __version__
from narrate.bootstrap import Container, build_container
from narrate.config import Settings
from narrate.jobs.records import recover_interrupted
from narrate.web.api import auth, datasets, health, jobs, models, recipes, users
from narrate.web.errors import install_error_handlers
from narrate.web.middleware import HttpMetrics, NarrateMiddleware
from narrate.web.pages import data as data_pages
from narrate.web.pages import models as model_pages
from narrate.web.pages import routes as pages

__all__ = ["create_app"]

log = logging.getLogger(__name__)
_HERE = Path(__file__).parent
_PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
API_PREFIX = "/api/v1"


def create_app(settings: Settings, container: Container | None = None) -> FastAPI:
    """Build the app.

    Args:
        settings: Loaded settings (``load_settings()``).
        container: Pre-built services (tests); built from settings when None.

    Returns:
        A FastAPI app whose lifespan checks the schema and recovers interrupted jobs.
    """
    owns_container = container is None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        c = app.state.container
        c.db.require_current_schema()
        n = recover_interrupted(c.db)
        if n:
            log.warning("marked %d interrupted job(s) as failed", n)
        yield
        if owns_container:
            c.close()

    app = FastAPI(
        title="Narrate",
        version=__version__,
        description="AI-guided machine learning for tabular data, explained in plain language.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.container = container or build_container(settings)
    app.state.metrics = HttpMetrics()
    app.state.templates = Jinja2Templates(directory=_HERE / "templates")
    install_error_handlers(app)

    for router in (
        auth.router,
        users.router,
        jobs.router,
        datasets.router,
        recipes.router,
        models.router,
    ):
        app.include_router(router, prefix=API_PREFIX)
    app.include_router(health.router)
    app.include_router(data_pages.router)
    app.include_router(model_pages.router)
    app.include_router(pages.router)

    @app.get("/static/vendor/plotly.min.js", include_in_schema=False)
    async def plotly_js() -> FileResponse:
        return FileResponse(
            _PLOTLY_JS,
            media_type="text/javascript",
            headers={"Cache-Control": "public, max-age=86400"},
        )

    app.mount("/static", StaticFiles(directory=_HERE / "static"), name="static")

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
