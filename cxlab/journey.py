"""The journey map: the team's model of its customer journey.

A map groups touchpoints into ordered *moments of truth* (ZMOT, FMOT, SMOT, UMOT by
default), each with a phase relative to the purchase (``before``, ``during``, ``after``),
and names the funnel steps, the conversion touchpoint, the conversion window and the
inactivity gap that splits sessions.
"""
from __future__ import annotations

import math
import re
import reprlib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import pandas as pd
import yaml

from .exceptions import JourneyMapError, did_you_mean

PHASES = ("before", "during", "after")
_KEYS = ("name", "moments", "funnel", "conversion", "conversion_window", "session_gap", "roles",
         "exposures", "costs", "currency", "labels")
#: optional ``roles:``: which touchpoints play a part the KPIs need (cxlab.kpis)
ROLES = ("care_contact", "care_reply", "care_resolution", "upgrade")
_MOMENT_KEYS = ("id", "label", "phase", "touchpoints")
_DURATION = re.compile(r"^\s*-?\d+(\.\d+)?\s*[A-Za-z]+\s*$")
_SHOW = reprlib.Repr()
_SHOW.maxlevel, _SHOW.maxlist, _SHOW.maxdict, _SHOW.maxstring, _SHOW.maxother = 2, 4, 4, 60, 60


def _show(value) -> str:
    """A bounded repr of a value from the map, for error messages (a map given as a dict
    may nest millions of values; the message shows the start)."""
    return _SHOW.repr(value)


class _NoAliasLoader(yaml.SafeLoader):
    """YAML's safe loader that refuses aliases (``*name``).

    A journey map is small and written out in full; an alias is how a few lines of YAML
    expand into billions of values (the "billion laughs"), so one is refused where it is
    met, before anything is built from it. Anchors alone (``&name``) are harmless. Values
    nested deeper than ``max_depth`` (a map needs 4 levels) are refused too, before the
    composer's recursion runs out of stack.
    """

    max_depth = 16

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            raise yaml.composer.ComposerError(
                None, None, f"found the alias *{event.anchor}: a journey map is written out in "
                "full, without YAML aliases (they can expand a small file into billions of values)",
                event.start_mark)
        self._depth = getattr(self, "_depth", 0) + 1
        try:
            if self._depth > self.max_depth:
                raise yaml.composer.ComposerError(
                    None, None, f"values nest deeper than {self.max_depth} levels; a journey map "
                    "needs 4", event.start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def load_yaml(text: str, *, source: str):
    """Parse journey-map YAML with :class:`_NoAliasLoader`; JourneyMapError naming ``source``."""
    try:
        return yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise JourneyMapError(source, f"not valid YAML: {exc}") from None
    except RecursionError:        # nesting the parser itself could not follow
        raise JourneyMapError(source, "not valid YAML: values nest too deeply") from None


def _require_str(value, *, key: str, what: str = "a name") -> str:
    """``value`` if it is a non-empty string, else JourneyMapError naming ``key`` and the type."""
    if not isinstance(value, str) or not value:
        got = "an empty string" if value == "" else f"{type(value).__name__} {_show(value)}"
        raise JourneyMapError(key, f"must be {what} (a string); got {got}")
    return value


def _cost(value, *, key: str) -> float:
    """A cost: a finite number >= 0 (booleans and text refused)."""
    if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
            or value < 0):
        raise JourneyMapError(key, f"must be a cost, a number >= 0; got {type(value).__name__} "
                                   f"{_show(value)}")
    return float(value)


def _currency(value) -> str:
    """An ISO 4217 code: three upper-case letters (``EUR``, ``USD``)."""
    code = _require_str(value, key="currency", what="an ISO 4217 code such as 'EUR'")
    if not re.fullmatch(r"[A-Z]{3}", code):
        raise JourneyMapError("currency", f"{_show(code)} is not an ISO 4217 code (three capital letters, "
                                          "e.g. 'EUR', 'USD')")
    return code


def parse_duration(value, *, key: str) -> pd.Timedelta:
    """Parse a duration that carries a unit (``"30min"``, ``"7D"``, a Timedelta).

    A bare number is refused: ``7`` could be days, hours or nanoseconds.
    """
    if isinstance(value, pd.Timedelta):
        td = value
    elif hasattr(value, "total_seconds"):  # datetime.timedelta
        td = pd.Timedelta(value)
    elif isinstance(value, str) and _DURATION.match(value):
        try:
            td = pd.Timedelta(value.strip())
        except ValueError as exc:
            raise JourneyMapError(key, f"{_show(value)} is not a duration ({exc}); "
                                       "write e.g. '30min', '12h' or '7D'") from None
    else:
        raise JourneyMapError(key, f"{_show(value)} is not a duration with a unit; "
                                   "write e.g. '30min', '12h' or '7D'")
    if td <= pd.Timedelta(0):
        raise JourneyMapError(key, f"{_show(value)} must be a positive duration")
    return td


def _require_names(value, *, key: str, what: str) -> list[str]:
    """``value`` if it is a non-empty list of non-empty strings, else JourneyMapError naming
    ``key`` (and the first item that is not a string, as ``key[i]``)."""
    if not isinstance(value, list) or not value:
        raise JourneyMapError(key, f"must be {what}, not {_show(value)}")
    for i, item in enumerate(value):
        _require_str(item, key=f"{key}[{i}]", what="a touchpoint")
    return value


def _format_duration(td: pd.Timedelta) -> str:
    seconds = int(td.total_seconds())
    for unit, size in (("D", 86400), ("h", 3600), ("min", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@dataclass(frozen=True)
class Moment:
    """One moment of truth: ``id`` (e.g. ``"FMOT"``), label, phase and touchpoints in order."""

    id: str
    label: str
    phase: str
    touchpoints: tuple[str, ...]


@dataclass(frozen=True)
class JourneyCheck:
    """What :meth:`JourneyMap.check` found in the data.

    ``known`` and ``unknown`` are tables with one row per touchpoint: ``touchpoint``,
    ``n_events``, ``n_customers``, and for unknown ones ``examples`` (a few customer ids).
    """

    known: pd.DataFrame
    unknown: pd.DataFrame
    missing: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """True when every touchpoint in the data is in the map."""
        return self.unknown.empty

    @property
    def unknown_events(self) -> int:
        return int(self.unknown["n_events"].sum()) if not self.unknown.empty else 0

    def __str__(self) -> str:
        if self.ok:
            lines = [f"all {len(self.known)} touchpoints in the data are in the journey map"]
        else:
            lines = [f"{len(self.unknown)} touchpoints in the data are not in the journey map "
                     f"({self.unknown_events} events, kept in the workspace):"]
            for row in self.unknown.itertuples():
                lines.append(f"  {row.touchpoint!r}: {row.n_events} events, "
                             f"{row.n_customers} customers, e.g. {', '.join(row.examples)}")
        if self.missing:
            lines.append(f"map touchpoints never seen in the data: {', '.join(self.missing)}")
        return "\n".join(lines)

    __repr__ = __str__


@dataclass(frozen=True)
class JourneyMap:
    """A validated journey map.

    Build one with :meth:`default`, :meth:`from_yaml` or :meth:`from_dict`. Invalid maps
    raise :class:`~cxlab.exceptions.JourneyMapError` naming the offending key.

    Examples
    --------
    >>> jm = JourneyMap.default()
    >>> jm.moment_of("checkout"), jm.phase_of("checkout")
    ('FMOT', 'during')
    >>> [m.id for m in jm.moments]
    ['ZMOT', 'FMOT', 'SMOT', 'UMOT']
    """

    name: str
    moments: tuple[Moment, ...]
    funnel: tuple[str, ...]
    conversion: str
    conversion_window: pd.Timedelta
    session_gap: pd.Timedelta
    role_map: tuple[tuple[str, tuple[str, ...]], ...] = ()
    #: touchpoints a drop-off report examines as exposures (``exposures:``); empty: the
    #: report chooses (the touchpoints outside the funnel in the moments up to conversion)
    exposures: tuple[str, ...] = ()
    #: cost of serving one contact at a touchpoint (``costs:``), in :attr:`currency`
    cost_map: tuple[tuple[str, float], ...] = ()
    #: ISO 4217 code of the costs and values (``currency:``, e.g. ``EUR``); None when not given
    currency: str | None = None
    #: business label of a touchpoint for reports (``labels:``); others show their name
    label_map: tuple[tuple[str, str], ...] = ()

    # ------------------------------------------------------------------ building
    @classmethod
    def default(cls) -> "JourneyMap":
        """The shipped map: ZMOT, FMOT, SMOT, UMOT for a retail journey."""
        text = resources.files("cxlab").joinpath("journey.yml").read_text(encoding="utf-8")
        source = "cxlab default journey.yml"
        return cls.from_dict(load_yaml(text, source=source), source=source)

    @classmethod
    def coerce(cls, journey=None) -> "JourneyMap":
        """``journey`` as a map: None gives the default map, a path is read as YAML."""
        if journey is None:
            return cls.default()
        if isinstance(journey, JourneyMap):
            return journey
        return cls.from_yaml(journey)

    @classmethod
    def from_yaml(cls, path) -> "JourneyMap":
        """Load and validate a map from a YAML file (YAML aliases are refused, see
        :func:`load_yaml`)."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise JourneyMapError(str(path), f"not UTF-8 text (byte {exc.start}: "
                                             f"{exc.object[exc.start:exc.start + 1]!r})") from None
        return cls.from_dict(load_yaml(text, source=str(path)), source=str(path))

    @classmethod
    def from_dict(cls, data, *, source: str = "journey map") -> "JourneyMap":
        """Validate a map given as a dict (the YAML structure)."""
        if not isinstance(data, dict):
            raise JourneyMapError("(top level)", f"{source} must be a mapping with keys {_KEYS}")
        for key in data:
            if key not in _KEYS:
                raise JourneyMapError(str(key), "unknown key" + did_you_mean(str(key), _KEYS))
        for key in ("moments", "funnel", "conversion"):
            if key not in data:
                raise JourneyMapError(key, "is required")
        moments = cls._parse_moments(data["moments"])
        owner: dict[str, str] = {}
        for m in moments:
            for tp in m.touchpoints:
                if tp in owner:
                    where = (f"in moment {owner[tp]} and again in {m.id}" if owner[tp] != m.id
                             else f"twice in moment {m.id}")
                    raise JourneyMapError(f"moments[{m.id}].touchpoints",
                                          f"touchpoint {tp!r} is listed {where}; "
                                          "a touchpoint belongs to one moment")
                owner[tp] = m.id
        funnel = data["funnel"]
        if not isinstance(funnel, list) or len(funnel) < 2:
            raise JourneyMapError("funnel", "must be a list of at least two touchpoints")
        for i, step in enumerate(funnel):
            _require_str(step, key=f"funnel[{i}]", what="a touchpoint")
            if step not in owner:
                raise JourneyMapError(f"funnel[{i}]", f"step {step!r} is not a touchpoint of "
                                      "any moment" + did_you_mean(str(step), owner))
        if len(set(funnel)) != len(funnel):
            raise JourneyMapError("funnel", "lists a step twice")
        conversion = _require_str(data["conversion"], key="conversion", what="a touchpoint")
        if conversion not in owner:
            raise JourneyMapError("conversion", f"{conversion!r} is not a touchpoint of any "
                                  "moment" + did_you_mean(str(conversion), owner))
        window = parse_duration(data.get("conversion_window", "7D"), key="conversion_window")
        gap = parse_duration(data.get("session_gap", "30min"), key="session_gap")
        roles = cls._parse_roles(data.get("roles"), owner)
        name = _require_str(data["name"], key="name") if "name" in data else source
        exposures = cls._parse_exposures(data.get("exposures"), owner)
        costs = cls._parse_touchpoint_mapping(data.get("costs"), owner, key="costs", parse=_cost)
        labels = cls._parse_touchpoint_mapping(data.get("labels"), owner, key="labels",
                                               parse=lambda v, key: _require_str(v, key=key, what="a label"))
        currency = _currency(data["currency"]) if data.get("currency") is not None else None
        return cls(name=name, moments=moments, funnel=tuple(funnel),
                   conversion=conversion, conversion_window=window, session_gap=gap,
                   role_map=roles, exposures=exposures, cost_map=costs, currency=currency,
                   label_map=labels)

    @staticmethod
    def _parse_exposures(raw, owner) -> tuple[str, ...]:
        if raw is None:
            return ()
        tps = _require_names(raw, key="exposures", what="a non-empty list of touchpoints")
        for i, tp in enumerate(tps):
            if tp not in owner:
                raise JourneyMapError(f"exposures[{i}]", f"{tp!r} is not a touchpoint of any moment"
                                      + did_you_mean(tp, owner))
        if len(set(tps)) != len(tps):
            raise JourneyMapError("exposures", "lists a touchpoint twice")
        return tuple(tps)

    @staticmethod
    def _parse_touchpoint_mapping(raw, owner, *, key: str, parse) -> tuple:
        """``key:`` as a mapping touchpoint -> value, each touchpoint in the map."""
        if raw is None:
            return ()
        if not isinstance(raw, dict) or not raw:
            raise JourneyMapError(key, f"must be a non-empty mapping touchpoint -> value; got {_show(raw)}")
        out = []
        for tp, value in raw.items():
            if not isinstance(tp, str) or tp not in owner:
                raise JourneyMapError(f"{key}.{tp}", f"{_show(tp)} is not a touchpoint of any moment"
                                      + did_you_mean(str(tp), owner))
            out.append((tp, parse(value, key=f"{key}.{tp}")))
        return tuple(out)

    @staticmethod
    def _parse_roles(raw, owner) -> tuple[tuple[str, tuple[str, ...]], ...]:
        if raw is None:
            return ()
        if not isinstance(raw, dict):
            raise JourneyMapError("roles", f"must be a mapping role -> touchpoints, roles: {ROLES}")
        out = []
        for role, tps in raw.items():
            if not isinstance(role, str) or role not in ROLES:
                raise JourneyMapError(f"roles.{role}", f"unknown role; roles: {ROLES}"
                                      + did_you_mean(str(role), ROLES))
            if isinstance(tps, str):
                tps = [tps]
            tps = _require_names(tps, key=f"roles.{role}", what="a touchpoint or a non-empty list of them")
            for tp in tps:
                if tp not in owner:
                    raise JourneyMapError(f"roles.{role}", f"{tp!r} is not a touchpoint of any "
                                          "moment" + did_you_mean(tp, owner))
            out.append((role, tuple(tps)))
        return tuple(out)

    @staticmethod
    def _parse_moments(raw) -> tuple[Moment, ...]:
        if not isinstance(raw, list) or not raw:
            raise JourneyMapError("moments", "must be a non-empty list of moments")
        out, seen = [], set()
        for i, m in enumerate(raw):
            key = f"moments[{i}]"
            if not isinstance(m, dict):
                raise JourneyMapError(key, "must be a mapping with id, label, phase, touchpoints")
            for k in m:
                if k not in _MOMENT_KEYS:
                    raise JourneyMapError(f"{key}.{k}", "unknown key" + did_you_mean(str(k), _MOMENT_KEYS))
            if "id" not in m:
                raise JourneyMapError(f"{key}.id", "is required (e.g. 'ZMOT')")
            mid = _require_str(m["id"], key=f"{key}.id", what="a moment id (e.g. 'ZMOT')")
            key = f"moments[{mid}]"
            if mid in seen:
                raise JourneyMapError(f"{key}.id", f"moment {mid!r} is defined twice")
            seen.add(mid)
            phase = m.get("phase")
            if not isinstance(phase, str) or phase not in PHASES:
                raise JourneyMapError(f"{key}.phase", f"{_show(phase)} is not one of {PHASES}")
            tps = _require_names(m.get("touchpoints"), key=f"{key}.touchpoints",
                                 what="a non-empty list of names")
            label = _require_str(m["label"], key=f"{key}.label", what="a label") if "label" in m else mid
            out.append(Moment(id=mid, label=label, phase=phase, touchpoints=tuple(tps)))
        return tuple(out)

    # ------------------------------------------------------------------ queries
    @property
    def touchpoints(self) -> tuple[str, ...]:
        """Every touchpoint in map order (moment by moment)."""
        return tuple(tp for m in self.moments for tp in m.touchpoints)

    @property
    def roles(self) -> dict[str, tuple[str, ...]]:
        """The ``roles:`` section: role -> touchpoints (empty when the map has none)."""
        return dict(self.role_map)

    @property
    def moment_ids(self) -> tuple[str, ...]:
        return tuple(m.id for m in self.moments)

    def moment(self, moment_id: str) -> Moment:
        for m in self.moments:
            if m.id == moment_id:
                return m
        raise KeyError(f"unknown moment {moment_id!r}" + did_you_mean(moment_id, self.moment_ids))

    def moment_of(self, touchpoint: str) -> str:
        """The id of the moment that holds ``touchpoint``; KeyError with a hint if none."""
        for m in self.moments:
            if touchpoint in m.touchpoints:
                return m.id
        raise KeyError(f"touchpoint {touchpoint!r} is not in the journey map"
                       + did_you_mean(touchpoint, self.touchpoints))

    def phase_of(self, touchpoint: str) -> str:
        """``before``, ``during`` or ``after`` for the moment holding ``touchpoint``."""
        return self.moment(self.moment_of(touchpoint)).phase

    def to_frame(self) -> pd.DataFrame:
        """One row per touchpoint: ``moment``, ``phase``, ``touchpoint``, ``order``, ``funnel_step``."""
        rows = []
        for m in self.moments:
            for tp in m.touchpoints:
                rows.append({"moment": m.id, "phase": m.phase, "touchpoint": tp,
                             "order": len(rows),
                             "funnel_step": self.funnel.index(tp) if tp in self.funnel else None})
        df = pd.DataFrame(rows)
        df["funnel_step"] = df["funnel_step"].astype("Int64")
        return df

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "moments": [{"id": m.id, "label": m.label, "phase": m.phase,
                         "touchpoints": list(m.touchpoints)} for m in self.moments],
            "funnel": list(self.funnel),
            "conversion": self.conversion,
            "conversion_window": _format_duration(self.conversion_window),
            "session_gap": _format_duration(self.session_gap),
            **({"roles": {r: list(tps) for r, tps in self.role_map}} if self.role_map else {}),
            **({"exposures": list(self.exposures)} if self.exposures else {}),
            **({"costs": dict(self.cost_map)} if self.cost_map else {}),
            **({"currency": self.currency} if self.currency else {}),
            **({"labels": dict(self.label_map)} if self.label_map else {}),
        }

    @property
    def costs(self) -> dict[str, float]:
        """Cost of serving one contact per touchpoint (``costs:``; empty when not given)."""
        return dict(self.cost_map)

    def label(self, touchpoint: str) -> str:
        """The business label of ``touchpoint`` (``labels:``), else its name."""
        return dict(self.label_map).get(touchpoint, touchpoint)

    def to_yaml(self, path=None) -> str:
        text = yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    def check(self, events) -> JourneyCheck:
        """Compare the touchpoints in ``events`` (Ibis table or DataFrame) with the map.

        Touchpoints the map does not know are reported with their event and customer
        counts and a few example customer ids; nothing is dropped.
        """
        counts = _touchpoint_counts(events)
        known_set = set(self.touchpoints)
        is_known = counts["touchpoint"].isin(known_set)
        known = counts[is_known].reset_index(drop=True)
        unknown = counts[~is_known].reset_index(drop=True)
        missing = tuple(tp for tp in self.touchpoints if tp not in set(counts["touchpoint"]))
        return JourneyCheck(known=known.drop(columns="examples"), unknown=unknown,
                            missing=missing)

    def __repr__(self) -> str:
        parts = ", ".join(f"{m.id}({m.phase}: {len(m.touchpoints)} touchpoints)"
                          for m in self.moments)
        return (f"JourneyMap({self.name!r}: {parts}; funnel {' > '.join(self.funnel)}; "
                f"conversion {self.conversion!r} within {_format_duration(self.conversion_window)}; "
                f"session gap {_format_duration(self.session_gap)})")


def _touchpoint_counts(events) -> pd.DataFrame:
    """touchpoint, n_events, n_customers, examples (up to 3 customer ids), by n_events desc."""
    if isinstance(events, pd.DataFrame):
        g = events.groupby("touchpoint", observed=True)
        counts = pd.DataFrame({"n_events": g.size(), "n_customers": g["customer_id"].nunique(),
                               "examples": g["customer_id"].agg(lambda s: list(pd.unique(s)[:3]))})
        counts = counts.reset_index()
    else:  # an Ibis table: aggregate in the engine
        t = events
        counts = (t.group_by("touchpoint")
                   .aggregate(n_events=t.count(), n_customers=t.customer_id.nunique(),
                              first=t.customer_id.min(), last=t.customer_id.max())
                   .execute())
        counts["examples"] = [sorted({a, b}) for a, b in zip(counts.pop("first"), counts.pop("last"))]
    counts["examples"] = counts["examples"].map(lambda xs: [str(x) for x in xs])
    counts = counts.astype({"n_events": "int64", "n_customers": "int64"})
    return counts.sort_values(["n_events", "touchpoint"], ascending=[False, True],
                              ignore_index=True)
