"""What every dashboard page shares: the settings and the read-only store, the access gate, the sidebar
filters, cached loading of query results, CSV downloads and chart helpers.

Pages stay thin: they call :func:`load` with a query function of :mod:`dashboards.data` (and its siblings)
and lay out what comes back.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Hashable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any, Generic, NoReturn, TypeVar, cast
from zoneinfo import ZoneInfo

import altair as alt
import pandas as pd  # type: ignore[import-untyped]  # pandas ships no type hints (no pandas-stubs here)
import streamlit as st
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from streamlit.runtime.scriptrunner import add_script_run_ctx, get_script_run_ctx

from core.errors import HypercareError
from core.i18n import N_, Gettext, Language, translations
from core.localtime import UTC_ZONE, zone_label
from core.localtime import zone as _zone
from core.schema import require_current_schema
from core.session import make_engine
from core.settings import redact_url
from dashboards import present
from dashboards.data import FilterOptions, Filters, filter_options
from dashboards.i18n import remember, viewer_language
from dashboards.present import records, to_csv
from dashboards.settings import DashboardsConfig
from dashboards.sql import read_only_engine
from hypercare.config import load_settings
from tickets.auth import login_attempt
from tickets.i18n import WORDS, word
from tickets.throttle import ThrottleRules

log = logging.getLogger(__name__)
T = TypeVar("T")
DEFAULT_DAYS = 14
USER_KEY = "hypercare_user"
KEPT_KEY = "hypercare_filters"
WHO_KEY = "hypercare_who"
_FORMAT: dict[str, str] = {"currency": "", "base_url": "", "language": "en", "zone": "UTC"}
"""How tables show money, times and words, and where their rows link: the settings' currency, the queue's
address, the site's language and zone (set by :func:`context` on every run; the same for every session of the
process: the viewer's own language is chosen per session by :func:`_tr`)."""


WORD_FIELDS = frozenset({"status", "ticket_status", "category", "level", "last_status", "role"})
"""Columns of stored values (``in_progress``, ``data``) a Chinese reader reads in words (tickets/i18n.py);
CSV downloads keep the stored values."""


def _tr() -> Gettext:
    """The translation function of this session's viewer (dashboards/i18n.py)."""
    return translations(viewer_language(_FORMAT["language"])).gettext


def _site_zone() -> ZoneInfo:
    return _zone(_FORMAT["zone"])


def _zone_name() -> str:
    return zone_label(datetime.now(UTC).astimezone(_site_zone()), _site_zone())


@dataclass(frozen=True)
class Context:
    settings: DashboardsConfig
    url: str
    engine: Engine
    now: datetime
    """The page's "now", to the minute (so cached results are shared within a minute)."""
    language: Language = "en"
    """The viewer's language (dashboards/i18n.py): what the page's words are shown in."""
    zone: ZoneInfo = UTC_ZONE
    """The site's time zone (``site.timezone``): the dates of the range picker, times and axes."""

    @property
    def gettext(self) -> Gettext:
        """The translation function of the viewer's language (``_ = ctx.gettext``)."""
        return translations(self.language).gettext

    @property
    def today(self) -> date:
        """Today in the site's zone (the range picker's days are the site's days)."""
        return self.now.astimezone(self.zone).date()

    @property
    def zone_name(self) -> str:
        """The site's zone as captions and axes name it: ``CST (Asia/Shanghai)``, ``UTC``."""
        return zone_label(self.now.astimezone(self.zone), self.zone)


@st.cache_resource(show_spinner=False)
def _engine(url: str, timeout_s: float) -> Engine:
    engine = read_only_engine(url, statement_timeout_s=timeout_s)
    require_current_schema(engine)
    return engine


def context() -> Context:
    """The settings (``HYPERCARE_CONFIG`` / ``HYPERCARE_*``, as the CLI reads them) and the read-only store;
    a problem stops the page with one clear line."""
    try:
        settings = load_settings()
        url = settings.store_url
        engine = _engine(url, settings.dashboard.statement_timeout_s)
    except HypercareError as exc:
        st.error(str(exc))
        st.stop()
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    site = settings.site
    _FORMAT.update(
        currency=settings.anomaly.currency,
        base_url=settings.server.base_url(),
        language=site.language,
        zone=site.timezone,
    )
    return Context(settings, url, engine, now, viewer_language(site.language), _zone(site.timezone))


# --- access --------------------------------------------------------------------------------------------


@st.cache_resource(show_spinner=False)
def _login_engine(url: str) -> Engine:
    """The dashboards' only writable connection: a login's failure counts and lockouts are rows of the store
    (tickets/throttle.py), shared with the ticket UI's login, and a rehashed password is kept."""
    return make_engine(url)


def _login(ctx: Context, username: str, password: str, address: str | None = None) -> str | None:
    """The role of the user if the login is good and the role may see the dashboard, else None (the same
    for a wrong password, an unknown name and a locked name or address: tickets.auth.login_attempt)."""
    roles = ctx.settings.dashboard.login_roles
    rules = ThrottleRules.of(ctx.settings.security)
    with Session(_login_engine(ctx.url)) as session:
        result = login_attempt(session, username, password, address=address, rules=rules)
        session.commit()
        role = result.user.role if result.user is not None else None
        remember(result.user.language if result.user is not None else None)  # dashboards/i18n.py
    return role if role in roles else None


def require_access(ctx: Context) -> str:
    """Who is looking: a logged-in Hypercare user with a dashboard role (``dashboard.login_roles``). Anyone
    else gets the login form and nothing more."""
    who = st.session_state.get(USER_KEY)
    if isinstance(who, str):
        return who
    _ = ctx.gettext
    st.title(_("Hypercare dashboards"))
    roles = ", ".join(ctx.settings.dashboard.login_roles)
    with st.form("login"):
        st.caption(_("Sign in with your Hypercare account (%(roles)s).") % {"roles": roles})
        username = st.text_input(_("Username"), key="login_username")
        password = st.text_input(_("Password"), type="password", key="login_password")
        submitted = st.form_submit_button(_("Sign in"))
    if submitted:
        address = st.context.ip_address  # None (or a stand-in under AppTest) when not known
        role = _login(ctx, username.strip(), password, address if isinstance(address, str) else None)
        if role is not None:
            st.session_state[USER_KEY] = f"{username.strip()} ({role})"
            log.info("dashboard login", extra={"username": username.strip(), "role": role})
            st.rerun()
        log.warning("dashboard login refused", extra={"username": username.strip()})
        st.error(_("Wrong username or password, or the account may not see the dashboards."))
    st.stop()
    raise AssertionError("unreachable")  # st.stop() ends the run


# --- filters -------------------------------------------------------------------------------------------


def page_filters(ctx: Context) -> Filters:
    """The date range and the source and queue filters, in the sidebar of every page. Each page renders
    them (widgets of the navigation script do not survive page switches in every Streamlit runner); the
    choice is kept in the session, so it follows the user from page to page."""
    kept = st.session_state.get(KEPT_KEY)
    default = (ctx.today - timedelta(days=DEFAULT_DAYS - 1), ctx.today)
    tz = _FORMAT["zone"]
    if isinstance(kept, Filters):
        default = (kept.start, kept.end)
    _ = ctx.gettext
    with st.sidebar:
        chosen = st.date_input(
            _("Date range (%(zone)s)") % {"zone": ctx.zone_name},
            value=default,
            key="range",
            max_value=ctx.today,
        )
    if isinstance(chosen, tuple | list) and len(chosen) == 2:
        start, end = chosen[0], chosen[1]
    elif isinstance(chosen, tuple | list) and len(chosen) == 1:
        start = end = chosen[0]
    elif isinstance(chosen, date):
        start = end = chosen
    else:
        start, end = default
    span = Filters(start, end, tz=tz)
    options: FilterOptions = load(ctx, "filter_options", lambda c: filter_options(c, span), span)
    with st.sidebar:
        sources = st.multiselect(
            _("Sources"),
            options.sources,
            default=[s for s in (kept.sources if isinstance(kept, Filters) else ()) if s in options.sources],
            key="sources",
        )
        queues = st.multiselect(
            _("Queues"),
            options.queues,
            default=[q for q in (kept.queues if isinstance(kept, Filters) else ()) if q in options.queues],
            key="queues",
        )
        st.caption(_("Signed in: %(who)s") % {"who": st.session_state.get(WHO_KEY, "?")})
        st.caption(_("Times in %(zone)s.") % {"zone": ctx.zone_name})
    flt = Filters(start, end, tuple(sorted(sources)), tuple(sorted(queues)), tz)
    st.session_state[KEPT_KEY] = flt
    return flt


# --- loading -----------------------------------------------------------------------------------------


@cache
def _cached_loader(ttl_s: float) -> Callable[..., Any]:
    @st.cache_data(ttl=ttl_s, show_spinner=False, max_entries=512)
    def run(
        name: str, url: str, key: tuple[Hashable, ...], _engine: Engine, _fn: Callable[[Any], Any]
    ) -> Any:
        with _engine.connect() as conn:
            return _fn(conn)

    return run


def load(ctx: Context, name: str, fn: Callable[[Connection], T], *key: Hashable) -> T:
    """``fn(connection)``, cached for ``dashboard.cache_ttl_s`` under (name, store, key); the key must
    hold every input of ``fn`` (filters, now...)."""
    try:
        result = _cached_loader(ctx.settings.dashboard.cache_ttl_s)(name, ctx.url, key, ctx.engine, fn)
    except SQLAlchemyError as exc:
        _failed(ctx, name, exc)
    return cast(T, result)


def _failed(ctx: Context, name: str, exc: SQLAlchemyError) -> NoReturn:
    log.warning("dashboard query failed", extra={"query": name, "error": type(exc).__name__})
    message = ctx.gettext("The store %(store)s could not answer (%(error)s); retry shortly.")
    st.error(message % {"store": redact_url(ctx.url), "error": type(exc).__name__})
    st.stop()
    raise AssertionError("unreachable")  # st.stop() ends the run


@cache
def _pool(threads: int) -> ThreadPoolExecutor:
    """The threads the pages' queries run on (shared by every session: at most ``threads`` queries of the
    dashboard at a time, each on its own connection of the read-only engine)."""
    return ThreadPoolExecutor(max_workers=threads, thread_name_prefix="dashboard-query")


class Pending(Generic[T]):
    """A query started by :func:`start`; :meth:`get` waits for its result."""

    def __init__(self, ctx: Context, name: str, future: Future[Any]) -> None:
        self._ctx, self._name, self._future = ctx, name, future

    def get(self) -> T:
        try:
            return cast(T, self._future.result())
        except SQLAlchemyError as exc:
            _failed(self._ctx, self._name, exc)


def start(ctx: Context, name: str, fn: Callable[[Connection], T], *key: Hashable) -> Pending[T]:
    """:func:`load`, started now on the dashboard's query threads (``dashboard.query_threads``): a page starts
    its independent queries first and then lays out the results as they are needed, so the page waits for
    the slowest query, not for their sum. Cached exactly like :func:`load` (same name and key)."""
    loader = _cached_loader(ctx.settings.dashboard.cache_ttl_s)
    script_ctx = get_script_run_ctx()

    def run() -> Any:
        if script_ctx is not None:  # the cache belongs to the session's script run
            add_script_run_ctx(threading.current_thread(), script_ctx)
        return loader(name, ctx.url, key, ctx.engine, fn)

    return Pending(ctx, name, _pool(ctx.settings.dashboard.query_threads).submit(run))


# --- presenting ----------------------------------------------------------------------------------------


def download(label: str, items: Iterable[Any], file_name: str, key: str) -> None:
    """The CSV download of ``items``; ``label`` (marked with ``N_`` by the page) is translated here."""
    _ = _tr()
    st.download_button(
        _("Download %(what)s (CSV)") % {"what": _(label)},
        to_csv(list(items)),
        file_name=file_name,
        mime="text/csv",
        key=key,
    )


def frame(items: Sequence[Any]) -> tuple[Any, dict[str, Any]]:
    """Rows as the table shows them, and the column settings: human headers, percentages as 63.2 %, money
    in the site currency, times in the site's zone (named in the header), the ticket id a link to the ticket
    in the queue's UI; headers in the viewer's language."""
    df = pd.DataFrame.from_records(records(items))
    config: dict[str, Any] = {}
    currency, base, _ = _FORMAT["currency"], _FORMAT["base_url"], _tr()
    if viewer_language(_FORMAT["language"]) != "en":  # English tables show the stored values, as before
        for field in WORD_FIELDS & set(df.columns):
            df[field] = [v if v is None or str(v) not in WORDS else word(_, v) for v in df[field]]
    # ``id`` is the ticket's own id, except in a row that names its ticket apart (a workaround's row)
    links = {"ticket_id"} if "ticket_id" in df.columns else {"id"}
    for field in list(df.columns):
        name = present.label(field, currency, _, _zone_name()) if field != "id" or "id" in links else _("Id")
        if field in links and base:
            df[field] = [None if v is None else present.ticket_url(base, int(v)) for v in df[field]]
            config[field] = st.column_config.LinkColumn(name, display_text=r"/tickets/(\d+)$")
        elif field == "check_id" and base:
            df[field] = [None if v is None else present.check_url(base, str(v)) for v in df[field]]
            config[field] = st.column_config.LinkColumn(name, display_text=r"[?&]q=([^&]+)")
        elif field in present.PERCENT_FIELDS or field.endswith("_ratio"):
            df[field] = pd.to_numeric(df[field], errors="coerce") * 100
            config[field] = st.column_config.NumberColumn(name, format="%.1f %%")
        elif field in present.MONEY_FIELDS:
            df[field] = pd.to_numeric(df[field], errors="coerce")
            config[field] = st.column_config.NumberColumn(name, format="%.2f")
        elif field in present.TIME_FIELDS:
            df[field] = pd.to_datetime(df[field], utc=True, errors="coerce").dt.tz_convert(_FORMAT["zone"])
            config[field] = st.column_config.DatetimeColumn(name, format="D MMM YYYY, HH:mm")
        elif field in present.DAY_FIELDS:
            df[field] = pd.to_datetime(df[field], errors="coerce")
            config[field] = st.column_config.DateColumn(name, format="D MMM YYYY")
        elif df[field].dtype == object or df[field].isna().any():
            # a missing value reads "—", not "None" (a number column with gaps becomes text for it)
            df[field] = [_cell(v) for v in df[field]]
            config[field] = st.column_config.Column(name)
        else:
            config[field] = st.column_config.Column(name)
    return df, config


def _cell(value: Any) -> str:
    """A cell of a column with gaps, as text: the value, or "—" where there is none."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    return str(value)


def table(items: Sequence[Any], name: str, *, key: str, empty: str = N_("Nothing in this range.")) -> None:
    """A table of rows (formatted by :func:`frame`) and the CSV download of exactly those rows; with no row,
    ``empty`` says why the table is empty. ``name`` and ``empty`` are marked with ``N_`` by the page and
    translated here."""
    if not items:
        st.info(_tr()(empty))
    else:
        df, config = frame(items)
        st.dataframe(df, hide_index=True, width="stretch", column_config=config)
    download(name, items, f"{key}.csv", key=f"csv_{key}")


Chart = alt.Chart | alt.LayerChart | alt.FacetChart


def chart(spec: Chart) -> None:
    st.altair_chart(spec, width="stretch")


def data(items: Iterable[Any]) -> Any:
    """Chart data as a DataFrame: Streamlit ships it as Arrow, where inline values would be validated
    against the Vega-Lite schema one by one (seconds for a few thousand points). Times (``at``, ``day``)
    become timestamps, so the axes show dates, not text or milliseconds."""
    df = pd.DataFrame.from_records(records(items))
    for field in ("at", "day"):
        if field in df.columns:
            df[field] = (
                pd.to_datetime(df[field], utc=True, errors="coerce")
                .dt.tz_convert(_FORMAT["zone"])
                .dt.tz_localize(None)
            )
    return df


def time_x(field: str = "at", *, daily: bool = False) -> alt.X:
    """A time axis in the site's zone (named under the axis), labelled ``07 Dec`` (days) or ``07 Dec
    14:00`` (hours)."""
    fmt = "%d %b" if daily else "%d %b %H:%M"
    return alt.X(
        f"{field}:T",
        title=None if _FORMAT["zone"] == "UTC" else _zone_name(),
        scale=alt.Scale(type="utc"),
        axis=alt.Axis(format=fmt, labelAngle=0, labelOverlap=True),
    )


def day_band(field: str = "day") -> alt.X:
    """Days as bands (bars side by side with ``xOffset``), labelled ``07 Dec``, UTC."""
    return alt.X(
        f"utcyearmonthdate({field}):O",
        title=None,
        axis=alt.Axis(format="%d %b", labelAngle=0, labelOverlap=True),
    )


def time_tip(field: str = "at", *, daily: bool = False) -> alt.Tooltip:
    """A tooltip's time or day in the site's zone (named)."""
    _ = _tr()
    return alt.Tooltip(
        f"{field}:T",
        title=(_("day (%(zone)s)") if daily else _("time (%(zone)s)")) % {"zone": _zone_name()},
        format="%d %b %Y %H:%M" if not daily else "%d %b %Y",
        formatType="utc",
    )


def percent(value: float | None) -> str:
    return present.pct(value)


def judged(column: Any, label: str, value: str, verdict: present.Verdict, help: str | None = None) -> None:
    """A tile with its verdict under the figure: colour and words (``▲ over target``)."""
    column.metric(label, value, delta=verdict.text, delta_color=verdict.colour, delta_arrow="off", help=help)
