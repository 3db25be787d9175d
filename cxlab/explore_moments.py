"""What happens at the research and sharing moments: research paths and the circle.

Two questions the pain-point table cannot answer, both read from the journey map's own
structure (no touchpoint is named here):

- **research paths** (:func:`research_moments`: the map's ``before`` moments that do not hold
  the conversion touchpoint, e.g. a ZMOT): the order in which a customer first used the
  moment's touchpoints (ties in map order), before their first conversion (converters) or at all (customers who
  never converted, who left), e.g. ``search -> review read``. Per path: customers,
  conversion rate, and the rate of every other researching customer, with the pooled
  two-proportion z-test (:func:`cxlab.stats.two_proportion_test`) and Benjamini-Hochberg
  q-values over the paths listed; a path "precedes conversion" or "precedes leaving" only
  when its q-value is below ``alpha``.
- **the circle** (:func:`sharing_moments`: the map's last moment when its phase is ``after``
  and it holds neither the conversion nor a funnel step, e.g. a UMOT): of the converted
  customers, those with a contact at the moment after their first conversion (*sharers*)
  against converted customers without one: whether they come back (a contact at a
  touchpoint of a ``before`` or ``during`` moment, a new journey, later than one session
  gap after the first share, resp. the first conversion) and whether they buy again (a
  conversion as late), within a horizon of 90 days or the map's conversion window if
  longer. Only customers whose horizon ends before the data does are counted (the others
  could still come back). What sharers say: their feedback from the session of their first
  share on (scores, verbatims masked by :func:`cxlab.privacy.mask_pii`).

:class:`MomentIndex` computes the per-customer facts once (the engine and the explorer's
reach index) and keeps compact arrays (``moments.npz`` in the explorer cache); a selection
is then a few bincounts over ~10^5 customers.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .journey import JourneyMap
from .stats import bh_qvalues, two_proportion_test, wilson_ci

__all__ = ["research_moments", "sharing_moments", "circle_horizon", "MomentIndex", "moment_view", "NEVER"]

#: "never": a time after every time (int64 nanoseconds)
NEVER = np.iinfo(np.int64).max
#: the shortest horizon the circle looks for a return over
MIN_HORIZON = pd.Timedelta(days=90)
#: paths used by fewer customers are pooled into "other paths"
MIN_CUSTOMERS = 20


def research_moments(journey: JourneyMap) -> tuple[str, ...]:
    """The map's research moments: phase ``before`` and not holding the conversion."""
    return tuple(m.id for m in journey.moments if m.phase == "before" and journey.conversion not in m.touchpoints)


def sharing_moments(journey: JourneyMap) -> tuple[str, ...]:
    """The map's sharing (advocacy) moment: its last moment, when that moment's phase is
    ``after`` and it holds neither the conversion nor a funnel step (empty otherwise)."""
    last = journey.moments[-1]
    if last.phase != "after" or journey.conversion in last.touchpoints or set(last.touchpoints) & set(journey.funnel):
        return ()
    return (last.id,)


def circle_horizon(journey: JourneyMap) -> pd.Timedelta:
    """How long after sharing a return counts: 90 days, or the conversion window if longer."""
    return max(MIN_HORIZON, pd.Timedelta(journey.conversion_window))


def _ns(series) -> np.ndarray:
    return pd.to_datetime(series, utc=True).dt.as_unit("ns").astype("int64").to_numpy()


class MomentIndex:
    """Per customer (the explorer's integer codes): the first conversion, and per research
    moment the research path and the day of its first contact, per sharing moment the first
    share after converting, the first return and the first repeat conversion after it (or after
    the first conversion for converters who did not share). Paths are kept once, as tuples of
    touchpoint names (``paths[moment]``)."""

    def __init__(self, arrays: dict, *, research: dict, sharing: list, last_ts: int, gap: int, horizon: int):
        self.a = arrays
        self.paths = {m: [tuple(p) for p in ps] for m, ps in research.items()}
        self.sharing = list(sharing)
        self.last_ts, self.gap, self.horizon = int(last_ts), int(gap), int(horizon)
        self.n = len(arrays["conv"])

    # ------------------------------------------------------------------ building
    @classmethod
    def build(cls, t, reach, ids: pd.Index, journey: JourneyMap) -> MomentIndex:
        """From the events ``t`` (Ibis), the explorer's reach index and customer ids."""
        n = len(ids)
        tps = list(reach.touchpoints)
        conv = np.full(n, NEVER, dtype=np.int64)
        is_conv = reach.tp == reach.conv
        np.minimum.at(conv, reach.cid[is_conv], reach.first[is_conv])
        arrays = {"conv": conv}
        research = {}
        for i, mid in enumerate(research_moments(journey)):
            codes = [tps.index(x) for x in journey.moment(mid).touchpoints if x in tps]
            path, day, labels = cls._paths(reach, conv, codes, n)
            arrays[f"r{i}_path"], arrays[f"r{i}_day"] = path, day
            research[mid] = [[tps[c] for c in p] for p in labels]
        sharing = list(sharing_moments(journey))
        gap = pd.Timedelta(journey.session_gap).value
        last_ts = int(t.aggregate(m=t.ts.max()).to_pandas()["m"].pipe(_ns)[0]) if n else 0
        for i, mid in enumerate(sharing):
            share, back, again = cls._circle(t, ids, conv, journey, mid, gap)
            arrays[f"s{i}_share"], arrays[f"s{i}_back"], arrays[f"s{i}_again"] = share, back, again
        return cls(arrays, research=research, sharing=sharing, last_ts=last_ts, gap=gap,
                   horizon=circle_horizon(journey).value)

    @staticmethod
    def _paths(reach, conv, codes, n):
        """Each customer's research path: the moment's touchpoints in the order of their first
        use before the first conversion (-1: no such contact), its first day, the paths."""
        m = np.isin(reach.tp, codes)
        tp, cid, first, day = reach.tp[m], reach.cid[m], reach.first[m], reach.day[m]
        keep = first < conv[cid]
        tp, cid, first, day = tp[keep], cid[keep], first[keep], day[keep]
        # the reach rows are sorted by (touchpoint, customer, time): the first of each pair is its first use
        start = np.ones(len(tp), dtype=bool)
        start[1:] = (tp[1:] != tp[:-1]) | (cid[1:] != cid[:-1])
        tp, cid, first, day = tp[start], cid[start], first[start], day[start]
        order = np.lexsort((tp, first, cid))
        tp, cid, first, day = tp[order], cid[order], first[order], day[order]
        path = np.full(n, -1, dtype=np.int32)
        fday = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
        if not len(tp):
            return path, fday, []
        new = np.ones(len(cid), dtype=bool)
        new[1:] = cid[1:] != cid[:-1]
        heads = np.flatnonzero(new)
        pos = np.arange(len(cid)) - np.repeat(heads, np.diff(np.append(heads, len(cid))))
        width = int(pos.max()) + 1
        grid = np.full((len(heads), width), -1, dtype=np.int32)
        grid[np.repeat(np.arange(len(heads)), np.diff(np.append(heads, len(cid)))), pos] = tp
        uniq, inv = np.unique(grid, axis=0, return_inverse=True)
        path[cid[heads]] = inv.reshape(-1).astype(np.int32)
        fday[cid[heads]] = day[heads]
        labels = [[int(c) for c in row if c >= 0] for row in uniq]
        return path, fday, labels

    @staticmethod
    def _circle(t, ids, conv, journey, mid, gap):
        """First share after the first conversion; first new-journey contact and first repeat
        conversion later than a session gap after the anchor (the share, else the conversion)."""
        import ibis

        n = len(ids)
        share = np.full(n, NEVER, dtype=np.int64)
        back = share.copy()
        again = share.copy()
        is_conv = conv < NEVER
        if not is_conv.any():
            return share, back, again
        c = ibis.memtable(pd.DataFrame({"_c": np.flatnonzero(is_conv).astype(np.int64),
                                        "customer_id": ids[is_conv].astype(str),
                                        "_conv": pd.to_datetime(conv[is_conv], utc=True)}))
        ev = t.select("customer_id", "ts", "touchpoint", _cid=t.customer_id.cast("string"))
        j = ev.join(c, ev._cid == c.customer_id)
        sh = (j.filter(j.touchpoint.isin(list(journey.moment(mid).touchpoints)) & (j.ts >= j._conv))
               .group_by("_c").aggregate(s=j.ts.min()).to_pandas())
        share[sh["_c"].to_numpy()] = _ns(sh["s"])
        anchor = np.where(share < NEVER, share, conv)[is_conv]
        a = ibis.memtable(pd.DataFrame({"_c": np.flatnonzero(is_conv).astype(np.int64),
                                        "customer_id": ids[is_conv].astype(str),
                                        "_after": pd.to_datetime(anchor + gap, utc=True)}))
        j = ev.join(a, ev._cid == a.customer_id)
        j = j.filter(j.ts > j._after)
        new_journey = [x for m in journey.moments if m.phase in ("before", "during") for x in m.touchpoints]
        b = j.filter(j.touchpoint.isin(new_journey)).group_by("_c").aggregate(s=j.ts.min()).to_pandas()
        back[b["_c"].to_numpy()] = _ns(b["s"])
        g = j.filter(j.touchpoint == journey.conversion).group_by("_c").aggregate(s=j.ts.min()).to_pandas()
        again[g["_c"].to_numpy()] = _ns(g["s"])
        return share, back, again

    # ------------------------------------------------------------------ keeping
    def arrays(self) -> dict:
        return dict(self.a)

    def meta(self) -> dict:
        return {"research": {m: [list(p) for p in ps] for m, ps in self.paths.items()}, "sharing": self.sharing,
                "last_ts": self.last_ts, "gap": self.gap, "horizon": self.horizon}

    @classmethod
    def from_saved(cls, arrays: dict, meta: dict) -> MomentIndex:
        n = {len(v) for v in arrays.values()}
        if len(n) != 1:
            raise ValueError(f"moment arrays of different lengths: {sorted(n)}")
        out = cls(arrays, research=meta["research"], sharing=meta["sharing"], last_ts=meta["last_ts"],
                  gap=meta["gap"], horizon=meta["horizon"])
        for i, m in enumerate(out.paths):
            if f"r{i}_path" not in arrays or int(arrays[f"r{i}_path"].max(initial=-1)) >= len(out.paths[m]):
                raise ValueError("moment arrays and their paths disagree")
        return out

    # ------------------------------------------------------------------ answering
    @staticmethod
    def _in_days(days: np.ndarray, sel) -> np.ndarray:
        m = np.ones(len(days), dtype=bool)
        if sel is not None and sel.start is not None:
            m &= days >= sel.start.value
        if sel is not None and sel.end is not None:
            m &= days <= sel.end.value
        return m

    def research(self, moment: str, sel=None, picked=None, *, alpha: float = 0.05,
                 min_customers: int = MIN_CUSTOMERS) -> pd.DataFrame:
        """The research paths of ``moment`` among the picked customers whose first research
        contact falls within the selection's days: ``path`` (tuple of touchpoints),
        ``customers``, ``converted``, ``left``, ``rate`` (with Wilson ``ci_low``/``ci_high``),
        ``rate_others`` (every other researching customer), ``diff``, ``z``, ``p_value``,
        ``q_value`` (BH over the rows), ``verdict`` ("conversion", "leaving" or "").
        Paths of fewer than ``min_customers`` customers are pooled in a last row with path
        ``()``. ``attrs``: ``researched``, ``converted``, ``no_research`` and
        ``no_research_converted`` (picked customers without a research contact)."""
        i = list(self.paths).index(moment)
        path, day = self.a[f"r{i}_path"], self.a[f"r{i}_day"]
        who = np.ones(self.n, dtype=bool) if picked is None else picked.copy()
        conv = self.a["conv"] < NEVER
        res = who & (path >= 0) & self._in_days(day, sel)
        k = len(self.paths[moment])
        n_path = np.bincount(path[res], minlength=k)[:k]
        c_path = np.bincount(path[res & conv], minlength=k)[:k]
        big = n_path >= max(int(min_customers), 1)
        ids = np.flatnonzero(big)
        n = list(n_path[ids]) + ([int(n_path[~big].sum())] if (~big & (n_path > 0)).any() else [])
        c = list(c_path[ids]) + ([int(c_path[~big].sum())] if (~big & (n_path > 0)).any() else [])
        paths = [self.paths[moment][j] for j in ids] + ([()] if len(n) > len(ids) else [])
        n, c = np.asarray(n, dtype=np.int64), np.asarray(c, dtype=np.int64)
        N, C = int(n_path.sum()), int(c_path.sum())
        out = pd.DataFrame({"path": paths, "customers": n, "converted": c, "left": n - c})
        with np.errstate(invalid="ignore", divide="ignore"):
            out["rate"] = np.where(n > 0, c / np.maximum(n, 1), np.nan)
            out["rate_others"] = np.where(N - n > 0, (C - c) / np.maximum(N - n, 1), np.nan)
        out["ci_low"], out["ci_high"] = wilson_ci(c, n, alpha=alpha)
        out["diff"] = out["rate"] - out["rate_others"]
        out["z"], out["p_value"] = two_proportion_test(c, n, C - c, N - n)
        out["q_value"] = bh_qvalues(out["p_value"])
        sig = out["q_value"].lt(alpha).to_numpy()
        out["verdict"] = np.where(sig & (out["diff"] > 0).to_numpy(), "conversion",
                                  np.where(sig & (out["diff"] < 0).to_numpy(), "leaving", ""))
        pooled = out["path"].map(len).eq(0).to_numpy()      # "other paths" last
        out = pd.concat([out[~pooled].sort_values("customers", ascending=False, kind="stable"), out[pooled]],
                        ignore_index=True)
        nores = who & (path < 0)
        if sel is not None and (sel.start is not None or sel.end is not None):
            nores &= np.zeros(self.n, dtype=bool)   # no research contact: no day to filter on
        out.attrs.update(moment=moment, researched=N, converted=C, alpha=alpha,
                         no_research=int(nores.sum()), no_research_converted=int((nores & conv).sum()),
                         min_customers=int(min_customers))
        return out

    def circle(self, moment: str, sel=None, picked=None, *, alpha: float = 0.05) -> dict:
        """Whether the picked converters who shared at ``moment`` come back and buy again within
        the horizon, against converters who did not share (their anchor, the first share resp.
        conversion, within the selection's days and the horizon observed before the data ends):
        ``{"horizon", "sharers", "others", "back": {...}, "again": {...}, "censored"}``, each of
        ``back``/``again`` with ``sharers``/``others`` counts, ``rate_sharers``/``rate_others``,
        ``z`` and ``p_value``. ``share_ts`` (per customer) is for the feedback of sharers."""
        i = self.sharing.index(moment)
        conv = self.a["conv"]
        share, back, again = self.a[f"s{i}_share"], self.a[f"s{i}_back"], self.a[f"s{i}_again"]
        who = (conv < NEVER) if picked is None else (picked & (conv < NEVER))
        anchor = np.where(share < NEVER, share, conv)
        day = np.where(anchor < NEVER, (anchor // 86_400_000_000_000) * 86_400_000_000_000, anchor)
        who &= self._in_days(day, sel)
        observed = anchor.astype(np.float64) + self.horizon <= self.last_ts
        is_sharer = share < NEVER
        s_m, o_m = who & observed & is_sharer, who & observed & ~is_sharer
        out = {"moment": moment, "horizon": pd.Timedelta(self.horizon), "sharers": int(s_m.sum()),
               "others": int(o_m.sum()), "censored": int((who & ~observed).sum()),
               "sharers_all": int((who & is_sharer).sum())}
        for name, ts in (("back", back), ("again", again)):
            hit = (ts < NEVER) & (ts.astype(np.float64) - anchor <= self.horizon)
            ks, ko = int((s_m & hit).sum()), int((o_m & hit).sum())
            z, p = two_proportion_test(ks, out["sharers"], ko, out["others"])
            out[name] = {"sharers": ks, "others": ko,
                         "rate_sharers": ks / out["sharers"] if out["sharers"] else np.nan,
                         "rate_others": ko / out["others"] if out["others"] else np.nan,
                         "z": float(z), "p_value": float(p)}
        out["significant"] = bool(np.isfinite(out["back"]["p_value"]) and out["back"]["p_value"] < alpha)
        out["alpha"] = alpha
        return out

    def share_times(self, moment: str) -> np.ndarray:
        """Each customer's first share after converting at ``moment`` (NEVER: none)."""
        return self.a[f"s{self.sharing.index(moment)}_share"]


def moment_view(data, sel) -> dict | None:
    """What the moment panel shows for a selection of an :class:`~cxlab.explore.ExplorerData`:
    ``{"kind": "research", "paths": DataFrame}``, ``{"kind": "sharing", "circle": dict,
    "voice": dict}``, or ``{"kind": None}`` for another moment (None: no moment picked)."""
    if sel.moment is None:
        return None
    idx = data._moments
    if idx is not None and sel.moment in idx.paths:
        return {"kind": "research", "paths": idx.research(sel.moment, sel, data._picked(sel), alpha=data.alpha)}
    if idx is not None and sel.moment in idx.sharing:
        circle = idx.circle(sel.moment, sel, data._picked(sel), alpha=data.alpha)
        return {"kind": "sharing", "circle": circle, "voice": sharer_voice(data, sel, idx.share_times(sel.moment),
                                                                          idx.gap)}
    return {"kind": None}


def sharer_voice(data, sel, share_ts: np.ndarray, gap: int, *, k: int = 6) -> dict:
    """The feedback sharers gave from the session of their first share on, under the
    selection's filters: ``n``, ``customers``, ``score`` (mean 0-100), ``negative`` (share),
    and the newest ``k`` verbatims (masked), as a DataFrame ``verbatims``."""
    f = data.feedback[data._feedback_mask(sel)]
    cust = f["_cust"].to_numpy()
    ok = cust >= 0
    s = np.full(len(f), NEVER, dtype=np.int64)
    s[ok] = share_ts[cust[ok]]
    ts = _ns(f["ts"])
    m = (s < NEVER) & (ts >= s - gap)
    g = f[m]
    text = g["_masked"]
    has = text.notna().to_numpy() & (text.astype("str").str.strip() != "").to_numpy()
    v = g[has].sort_values("ts", ascending=False, kind="stable").head(k)
    norm = g["_norm"].to_numpy("float64")
    neg = g["_neg"].to_numpy("float64")
    return {"n": int(len(g)), "customers": int(len(np.unique(cust[m]))),
            "score": float(np.nanmean(norm)) if np.isfinite(norm).any() else np.nan,
            "negative": float(neg[np.isfinite(norm)].mean()) if np.isfinite(norm).any() else np.nan,
            "verbatims": pd.DataFrame({"ts": v["ts"], "touchpoint": v["touchpoint"], "score": v["score"],
                                       "scale": v["scale"], "text": v["_masked"], "sentiment": v["_sent"]}
                                      ).reset_index(drop=True)}
