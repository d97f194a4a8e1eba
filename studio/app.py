"""The studio's web app: Flask-Admin over every service's tables (studio.catalogue).

Read-only unless STUDIO_WRITE=1: it connects as the studio's role (`studio_ro` in the
default database; shared.bootstrap: SELECT only, read-only transactions). With STUDIO_WRITE=1 (local
development only) each service's tables are edited through that service's own role, and
every page says that those edits raise no events.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from flask import Flask, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_admin import Admin, AdminIndexView, expose
from flask_admin.contrib.sqla import ModelView
from flask_admin.theme import Bootstrap4Theme
from flask_sqlalchemy import SQLAlchemy
from markupsafe import Markup, escape
from sqlalchemy.engine import make_url

from shared.bootstrap import studio_password, studio_role
from shared.config import database_url, env
from studio.catalogue import Catalogue, Entry, Relation

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
RELATED_SHOWN = 50  # rows of a relation listed on a detail page


@dataclass(frozen=True)
class StudioSettings:
    host: str
    port: int
    password: str
    write: bool
    secret_key: str

    @classmethod
    def from_env(cls) -> StudioSettings:
        return cls(host=env("STUDIO_HOST", "127.0.0.1"), port=int(env("STUDIO_PORT", "5555")),
                   password=env("STUDIO_PASSWORD", ""), write=env("STUDIO_WRITE", "") == "1",
                   secret_key=env("STUDIO_SECRET_KEY", "") or secrets.token_hex(32))

    def refusal(self) -> str | None:
        """Why the studio must not start with these settings, if it must not."""
        if self.host not in LOCAL_HOSTS and not self.password:
            return (f"studio: refusing to listen on {self.host} without STUDIO_PASSWORD "
                    "(only 127.0.0.1 may go without one)")
        return None


def bind_urls(services: list[str], *, write: bool) -> dict[str, str]:
    """Each service's connection: its own role when editing, else the read-only role of
    that service's database."""
    urls = {}
    for service in services:
        url = make_url(database_url(service))
        if not write:
            url = url.set(username=studio_role(url.database),
                          password=studio_password(url.database))
        urls[service] = url.render_as_string(hide_password=False)
    return urls


def create_app(settings: StudioSettings | None = None,
               catalogue: Catalogue | None = None) -> Flask:
    settings = settings or StudioSettings.from_env()
    if (why := settings.refusal()) is not None:
        raise SystemExit(why)
    catalogue = catalogue or Catalogue()
    services = list(catalogue.by_service())
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SQLALCHEMY_BINDS=bind_urls(services, write=settings.write),
        SQLALCHEMY_ENGINE_OPTIONS={
            "pool_size": 2, "max_overflow": 2, "hide_parameters": True,
            # A browse never holds up a live database for long.
            "connect_args": {"connect_timeout": 5, "options": "-c statement_timeout=15s"},
        },
        FLASK_ADMIN_FLUID_LAYOUT=True,
    )
    db = SQLAlchemy(app)
    app.extensions["studio"] = {"settings": settings, "catalogue": catalogue, "db": db}
    _guard(app, settings)

    admin = Admin(app, name="Growth Diary studio", url="/",
                  index_view=CountsView(catalogue, db, url="/", endpoint="admin"),
                  theme=Bootstrap4Theme(base_template="studio/base.html", fluid=True))
    views: dict[str, TableView] = {}
    for entries in catalogue.by_service().values():  # menus grouped by service, in order
        for entry in entries:
            view = table_view(entry, db, views, write=settings.write)
            views[entry.key] = view
            admin.add_view(view)

    @app.context_processor
    def studio_context() -> dict[str, Any]:
        return {"studio_write": settings.write, "studio_role": studio_role(),
                "studio_login": bool(settings.password)}

    @app.get("/healthz")
    def healthz() -> ResponseReturnValue:
        return {"status": "ok"}

    return app


def _guard(app: Flask, settings: StudioSettings) -> None:
    """A password from the environment, asked once per browser session."""

    @app.before_request
    def signed_in() -> ResponseReturnValue | None:
        endpoint = request.endpoint or ""
        if (not settings.password or session.get("signed_in") or endpoint == "healthz"
                or endpoint in ("login", "static") or endpoint.endswith(".static")):
            return None
        return redirect(url_for("login", next=request.full_path.rstrip("?")))

    @app.route("/login", methods=["GET", "POST"])
    def login() -> ResponseReturnValue:
        failed = False
        if request.method == "POST":
            given = request.form.get("password", "").encode()
            if hmac.compare_digest(given, settings.password.encode()):
                session.clear()
                session["signed_in"] = True
                target = request.args.get("next", "/")
                return redirect(target if target.startswith("/") and not
                                target.startswith("//") else "/")
            failed = True
        return render_template("studio/login.html", failed=failed), 401 if failed else 200

    @app.post("/logout")
    def logout() -> ResponseReturnValue:
        session.clear()
        return redirect(url_for("login"))


class CountsView(AdminIndexView):
    """The home page: every service's tables with their row counts."""

    def __init__(self, catalogue: Catalogue, db: SQLAlchemy, **kwargs: Any) -> None:
        super().__init__(name="Tables", **kwargs)
        self.catalogue, self.db = catalogue, db

    @expose()
    def index(self) -> str:
        groups = []
        for service, entries in self.catalogue.by_service().items():
            with self.db.engines[service].connect() as conn:
                groups.append((service, [(e, row_count(conn, e)) for e in entries]))
        return self.render("studio/index.html", groups=groups)


def row_count(conn: sa.Connection, entry: Entry) -> int | None:
    """The table's rows; None when the table is not there (the schema is behind the models:
    `make migrate`)."""
    try:
        with conn.begin_nested() if conn.in_transaction() else conn.begin():
            return int(conn.execute(sa.select(sa.func.count()).select_from(entry.table))
                       .scalar_one())
    except sa.exc.ProgrammingError:
        return None


class TableView(ModelView):
    """One table: paged list sortable by any column, filters, search, a detail page that
    lists its relations; secrets masked everywhere."""

    entry: Entry
    related_views: dict[str, TableView]
    page_size = 50
    can_set_page_size = True
    can_view_details = True
    column_display_pk = True
    column_display_all_relations = False
    named_filter_urls = True  # ?flt0_status_equals=PUBLISHED: links that say what they do

    def is_accessible(self) -> bool:
        return True  # the app's before_request has signed the browser in


def table_view(entry: Entry, db: SQLAlchemy, views: dict[str, TableView], *,
               write: bool) -> TableView:
    masked = {c: _mask for c in entry.secrets}
    relations = {r.name: _relation_formatter(r, views) for r in entry.relations}
    listed = {c: _truncate for c in entry.visible
              if isinstance(entry.table.c[c].type, sa.Text | sa.JSON)}
    order = next((c for c in ("created_at", "updated_at") if c in entry.table.c), None)
    attributes: dict[str, Any] = dict(
        entry=entry,
        related_views=views,
        column_list=entry.columns,
        column_details_list=entry.columns + [r.name for r in entry.relations],
        column_sortable_list=entry.visible,
        column_filters=entry.filters,
        column_searchable_list=entry.searchable or None,
        column_formatters={**listed, **masked},
        column_formatters_detail={**masked, **relations},
        column_default_sort=(order, True) if order else None,
        form_excluded_columns=entry.secrets + [r.name for r in entry.relations],
        can_create=write, can_edit=write, can_delete=write,
    )
    cls = type(f"{entry.model.__name__}View", (TableView,), attributes)
    view: TableView = cls(entry.model, db, name=entry.table.name, category=entry.service,
                          endpoint=entry.endpoint, url=f"/{entry.service}/{entry.table.name}")
    return view


def _mask(view: Any, context: Any, model: Any, name: str) -> Markup:
    if getattr(model, name) is None:
        return Markup('<span class="text-muted">(empty)</span>')
    return Markup('<span class="text-muted" title="secret: never shown">••••••</span>')


def _truncate(view: Any, context: Any, model: Any, name: str) -> str:
    value = getattr(model, name)
    text = "" if value is None else str(value)
    return text if len(text) <= 80 else f"{text[:80]}…"


def _relation_formatter(relation: Relation, views: dict[str, TableView]) -> Any:
    target = relation.target

    def link(row: Any) -> Markup:
        view = views[target]
        href = url_for(f"{view.endpoint}.details_view", id=view.get_pk_value(row))
        return Markup('<a href="{}">{}</a>').format(href, str(row))

    def render(view: Any, context: Any, model: Any, name: str) -> Markup:
        value = getattr(model, name)
        if not relation.many:
            return link(value) if value is not None else Markup("")
        rows = list(value)
        items = Markup("").join(Markup("<li>{}</li>").format(link(r))
                                for r in rows[:RELATED_SHOWN])
        more = (Markup("<li>… {} more</li>").format(len(rows) - RELATED_SHOWN)
                if len(rows) > RELATED_SHOWN else Markup(""))
        listed = Markup("")
        if relation.via is not None:  # the same rows in the target's list, to page and sort
            column, ours = relation.via
            href = url_for(f"{views[target].endpoint}.index_view",
                           **{f"flt0_{column}_equals": getattr(model, ours)})
            listed = Markup(' <a class="related-list" href="{}">(as a list)</a>').format(href)
        return Markup('<span class="related-count">{} {}</span>{}<ul class="related">{}{}</ul>'
                      ).format(len(rows), escape(target.split(".", 1)[1]), listed, items, more)

    return render
