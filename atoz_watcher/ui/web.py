"""What a page module uses: who is looking (``Viewer``), rendering (``Web.page``), and the
dependencies that refuse what may not pass (``viewer``, ``staff``, ``form``).

Handlers declare them as ``Annotated[Viewer, Depends(web.viewer)]`` (which needs the module
without ``from __future__ import annotations``, as ``web`` is local to ``router``), or as the
aliases below, which work either way: ``viewer: LoggedIn``, ``viewer: StaffOnly``, ``form:
PostedForm``.

A refusal is raised (``LoginNeeded``, ``Refused``) and answered by the handlers ``ui.app``
installs: a 303 to the login page, or the error page with its reason in an alert.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Final
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from starlette.datastructures import FormData

from atoz_watcher.ui.sessions import COOKIE, Ended, Session, SessionStore

PREFIX: Final = "/ui"
TEMPLATES: Final = Path(__file__).parent / "templates"

FORM_EXPIRED: Final = "This form has expired: reload the page and try again."
MAY_NOT_MOVE: Final = "Your account may look but not move files."

# The main navigation: (path, label), as base.html lists it.
NAV: Final = (
    (f"{PREFIX}/", "Today"),
    (f"{PREFIX}/inbox", "Inbox"),
    (f"{PREFIX}/patients", "Patients"),
    (f"{PREFIX}/health", "Health"),
)


@dataclass(frozen=True, slots=True)
class Viewer:
    name: str
    may_move: bool  # role "staff"
    csrf: str  # the session's CSRF token, for the forms the page renders


@dataclass(frozen=True, slots=True)
class NavItem:
    href: str
    label: str
    current: bool


class LoginNeeded(Exception):  # noqa: N818 - an answer, not a fault
    """No live session: 303 to the login page, back to ``next_path`` after."""

    def __init__(self, next_path: str, *, expired: bool) -> None:
        super().__init__(next_path)
        self.next_path = next_path
        self.expired = expired


class Refused(Exception):  # noqa: N818 - an answer, not a fault
    """The error page with ``message`` in an alert, and ``status`` (400, 403, 404)."""

    def __init__(self, status: int, message: str, viewer: Viewer | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.viewer = viewer


def safe_next(target: str | None) -> str:
    """Where to go after logging in: ``target`` when it is a path of the page, else its home.
    Never another site (``//evil``, ``/ui/../x``, ``https://...``, a backslash)."""
    home = f"{PREFIX}/"
    if not target or not target.startswith(home):
        return home
    path = target.split("?", 1)[0]
    if "//" in target or "\\" in target or "/../" in path + "/" or "/./" in path + "/":
        return home
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in target):  # noqa: PLR2004 - C0
        return home
    return target


class Web:
    """Rendering and the refusing dependencies, over one app's sessions."""

    def __init__(self, sessions: SessionStore, templates: Jinja2Templates | None = None) -> None:
        self.sessions = sessions
        self.templates = templates or Jinja2Templates(directory=TEMPLATES)

    def page(
        self,
        request: Request,
        viewer: Viewer | None,
        template: str,
        *,
        status_code: int = 200,
        **context: object,
    ) -> HTMLResponse:
        """``template`` (which extends base.html) with the viewer, its csrf, the nav and
        ``context``."""
        path = request.url.path
        nav = [
            NavItem(href, label, path == href or (href != f"{PREFIX}/" and path.startswith(href)))
            for href, label in NAV
        ]
        return self.templates.TemplateResponse(
            request,
            template,
            {"viewer": viewer, "csrf": viewer.csrf if viewer else "", "nav": nav, **context},
            status_code=status_code,
        )

    def session(self, request: Request) -> Session:
        """The request's live session, else LoginNeeded."""
        found = self.sessions.find(request.cookies.get(COOKIE))
        if isinstance(found, Session):
            return found
        path = request.url.path
        if request.url.query and request.method == "GET":
            path += "?" + request.url.query
        # After a POST, back to the page the form was on is unknown: the home page.
        next_path = path if request.method == "GET" else f"{PREFIX}/"
        raise LoginNeeded(next_path, expired=found is Ended.ENDED)

    async def viewer(self, request: Request) -> Viewer:
        """Logged in, else 303 to /ui/login?next=<path> (an ended session: ?expired=1)."""
        session = self.session(request)
        return Viewer(session.name, session.may_move, session.csrf)

    async def staff(self, request: Request) -> Viewer:
        """Logged in and may move files, else the 403 page."""
        viewer = await self.viewer(request)
        if not viewer.may_move:
            raise Refused(403, MAY_NOT_MOVE, viewer)
        return viewer

    async def form(self, request: Request) -> FormData:
        """A POSTed form whose ``csrf`` field is the session's token, else the 403 page."""
        session = self.session(request)
        form = await request.form()
        token = form.get("csrf")
        if not isinstance(token, str) or not hmac.compare_digest(
            token.encode(), session.csrf.encode()
        ):
            viewer = Viewer(session.name, session.may_move, session.csrf)
            raise Refused(403, FORM_EXPIRED, viewer)
        return form


# The dependencies as annotations a page module can write with ``from __future__ import
# annotations`` (FastAPI resolves a string annotation in the module's globals, where a router
# function's local ``web`` is not): ``viewer: LoggedIn``, ``viewer: StaffOnly``, ``form:
# PostedForm``. Each asks the app's own Web (``app.state.web``, set by ``create_ui``).
async def _viewer(request: Request) -> Viewer:
    return await _web_of(request).viewer(request)


async def _staff(request: Request) -> Viewer:
    return await _web_of(request).staff(request)


async def _form(request: Request) -> FormData:
    return await _web_of(request).form(request)


def _web_of(request: Request) -> Web:
    web = request.app.state.web
    if not isinstance(web, Web):
        raise TypeError("the app has no Web in app.state.web (made by ui.app.create_ui)")
    return web


LoggedIn = Annotated[Viewer, Depends(_viewer)]
StaffOnly = Annotated[Viewer, Depends(_staff)]
PostedForm = Annotated[FormData, Depends(_form)]


def login_url(next_path: str = "", *, expired: bool = False) -> str:
    """The login page, sending back to ``next_path`` after (when it is one of the page's)."""
    query = []
    if expired:
        query.append("expired=1")
    if next_path and safe_next(next_path) == next_path and next_path != f"{PREFIX}/":
        query.append("next=" + quote(next_path, safe="/"))
    return f"{PREFIX}/login" + ("?" + "&".join(query) if query else "")
