"""The application factory: ``create_app(settings)`` wires every package into one Starlette app.

Resources (the database, Redis, the in-process job runner) are opened in the lifespan and handed
to requests through ``app.state``; nothing is opened at import time.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import datetime

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount, WebSocketRoute

from patient_portal import health, pages
from patient_portal.api.v1 import api
from patient_portal.auth.middleware import AuthMiddleware, CsrfMiddleware
from patient_portal.auth.verifier import Verifier
from patient_portal.consults import Hub, consult_socket
from patient_portal.crypto.keyring import keyring_for, use_keyring
from patient_portal.db import database
from patient_portal.errors import (
    NulGuardMiddleware,
    UnexpectedErrorMiddleware,
    exception_handlers,
    refuse_csrf,
)
from patient_portal.i18n import load_catalogues
from patient_portal.jobs import running_jobs, utc_now
from patient_portal.maintenance import product_registry, schedule_daily
from patient_portal.middleware import LocaleMiddleware, SecurityHeadersMiddleware
from patient_portal.notify import Composite
from patient_portal.pubsub import InMemoryPubSub, PubSub, RedisPubSub
from patient_portal.recordings import Recordings
from patient_portal.settings import Settings
from patient_portal.static import MOUNT, StaticAssets
from patient_portal.templating import build_templates
from patient_portal.views import (  # noqa: F401 - register on `api`
    api_booking,
    api_clinic_setup,
    api_consults,
    api_forms,
    api_identity,
)
from patient_portal.views import booking as booking_views
from patient_portal.views import calendar as calendar_views
from patient_portal.views import clinic_setup as clinic_setup_views
from patient_portal.views import consult_pages as consult_page_views
from patient_portal.views import form_attachments as form_attachment_views
from patient_portal.views import forms_patient as forms_patient_views
from patient_portal.views import forms_staff as forms_staff_views
from patient_portal.views import id_photos as id_photo_views
from patient_portal.views import passkeys as passkey_views
from patient_portal.views import passwords as password_views
from patient_portal.views import patient as patient_views
from patient_portal.views import recordings as recording_views
from patient_portal.views import staff as staff_views
from patient_portal.waitlist_jobs import QueueHolder
from patient_portal.wiring import build_identity, build_notifier, build_turn, build_verifier
from video.precall import PrecallService, PrecallSettings, configure_ice
from video.recording import RecorderService, RecorderSettings

logger = logging.getLogger(__name__)


def create_app(
    settings: Settings,
    *,
    demo: bool = False,
    verifier: Verifier | None = None,
    notifier: Composite | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> Starlette:
    """A fully wired portal for ``settings``. Opening it (lifespan) connects to the database.

    ``demo`` makes the console SMS provider accept a fixed code (``tsunagu demo`` only);
    ``verifier``, ``notifier`` and ``clock`` replace the configured ones (tests).
    """
    catalogues = load_catalogues()
    assets = StaticAssets()
    messages = notifier or build_notifier(settings, demo=demo)
    queue_holder = QueueHolder()
    job_registry = product_registry(settings, messages, queue_holder)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            stack.enter_context(
                use_keyring(keyring_for(settings.key_file, production=settings.is_production))
            )
            await stack.enter_async_context(database(settings))
            stack.push_async_callback(messages.aclose)
            pubsub: PubSub
            if settings.redis_url is not None:
                from redis.asyncio import Redis

                client = Redis.from_url(settings.redis_url.reveal(), socket_timeout=5)
                stack.push_async_callback(client.aclose)
                app.state.redis = client
                pubsub = RedisPubSub(settings.redis_url.reveal())
            else:
                pubsub = InMemoryPubSub()
            stack.push_async_callback(pubsub.close)
            app.state.pubsub = pubsub
            sms = verifier or build_verifier(settings, clock, demo=demo)
            if hasattr(sms, "aclose"):
                stack.push_async_callback(sms.aclose)
            identity = build_identity(settings, redis=app.state.redis, clock=clock, verifier=sms)
            app.state.identity = identity
            app.state.audit = identity.audit
            app.state.resolve_auth = identity.resolve
            jobs = await stack.enter_async_context(
                running_jobs(settings, job_registry, clock=clock)
            )
            queue_holder.queue = jobs
            await schedule_daily(jobs, job_registry, settings, utc_now())
            app.state.jobs = jobs
            app.state.consults = Hub(pubsub, identity.audit, clock)
            turn, twilio = build_turn(settings)
            if twilio is not None:
                stack.push_async_callback(twilio.aclose)
            app.state.turn = turn
            configure_ice(host_addresses=settings.ice_host_addresses or None)
            precall = PrecallService(PrecallSettings())
            stack.push_async_callback(precall.close_all)
            app.state.precall = precall
            app.state.precall_tasks = set()
            recorder = RecorderService(
                RecorderSettings(max_seconds=settings.recording_max_minutes * 60.0)
            )
            recordings = Recordings(recorder, pubsub, settings.recordings_path, clock)
            stack.push_async_callback(recordings.close)
            await recordings.mark_interrupted()
            app.state.recordings = recordings
            logger.info("portal ready (database: %s)", settings.database.backend.value)
            yield

    routes: list[BaseRoute] = [
        *pages.routes,
        *patient_views.routes,
        *staff_views.routes,
        *passkey_views.routes,
        *password_views.routes,
        *booking_views.routes,
        *clinic_setup_views.routes,
        *calendar_views.routes,
        *forms_staff_views.routes,
        *forms_patient_views.routes,
        *form_attachment_views.routes,
        *consult_page_views.routes,
        *id_photo_views.routes,
        *recording_views.routes,
        WebSocketRoute("/consults/{appointment_id}/ws", consult_socket),
        *health.routes,
        *api.routes(),
        Mount(MOUNT, app=assets, name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(SecurityHeadersMiddleware),
            Middleware(LocaleMiddleware, default_locale=settings.default_locale),
            Middleware(UnexpectedErrorMiddleware),
            Middleware(NulGuardMiddleware),
            Middleware(AuthMiddleware),
            Middleware(
                CsrfMiddleware,
                secret_key=settings.secret_key.reveal(),
                refuse=refuse_csrf,
                secure_cookie=settings.is_production,
            ),
        ],
        exception_handlers=exception_handlers,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.catalogues = catalogues
    app.state.templates = build_templates(catalogues, assets, settings.secret_key.reveal())
    app.state.redis = None
    app.state.api = api
    app.state.job_registry = job_registry
    app.state.clock = clock
    return app
