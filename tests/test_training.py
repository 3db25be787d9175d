"""cxlab.training: the self-check of every exercise (right, wrong with its known mistakes, not
answered, unknown id), the glossary, and the six training notebooks executed with papermill, with
and without the answer key."""
from __future__ import annotations

import math
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
from conftest import SHARED_DATA

import cxlab
from cxlab import training
from cxlab.training import check, solution

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks" / "training").glob("0*.ipynb"))
IDS = list(training.exercises()["id"])
LINE = re.compile(r"^([✓✗…]) \[([0-9a-z-]+)\] (.*)$")


# --------------------------------------------------------------------------- check()
def test_every_notebook_has_two_to_four_exercises():
    counts = training.exercises().groupby("notebook").size()
    assert list(counts.index) == [1, 2, 3, 4, 5, 6]
    assert counts.between(2, 4).all()
    assert len(NOTEBOOKS) == 6


@pytest.mark.parametrize("eid", IDS)
def test_answer_key_passes_and_none_is_not_answered(eid):
    assert check(eid, solution(eid, quiet=True), quiet=True).status == "correct"
    for blank in (None, ...):
        r = check(eid, blank, quiet=True)
        assert (r.status, r.message) == ("not answered", "not answered yet: replace ... with your answer")


def test_unknown_exercise_lists_the_known_ones():
    with pytest.raises(KeyError, match=r"unknown exercise '03-npss'.*did you mean '03-nps'.*01-moment"):
        check("03-npss", 1)


def test_check_prints_one_line(capsys):
    r = check("05-normalised-score", 80)
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("✗ [05-normalised-score] ")
    assert r.exercise == "05-normalised-score" and r.status == "wrong" and not r.passed


def _wrong(eid, answer, *fragments):
    r = check(eid, answer, quiet=True)
    assert r.status == "wrong", (eid, answer, r.message)
    for f in fragments:
        assert f in r.message, (eid, answer, r.message)
    return r


def _sim():
    return training.simulation()


def test_01_mistakes():
    ev, _, _ = _sim()
    jm = training._jm()
    _wrong("01-moment", "UMOT", "one customer's UMOT is another's ZMOT")
    _wrong("01-moment", "fmot", "first contact with the offer")
    _wrong("01-moment", "the first one", "answer one of")
    assert check("01-moment", " zmot ", quiet=True).passed
    umot = list(jm.moment("UMOT").touchpoints)
    sharers = ev.loc[ev.touchpoint.isin(umot), "customer_id"].nunique()
    buyers = ev.loc[ev.touchpoint == "purchase", "customer_id"].nunique()
    everyone = ev.customer_id.nunique()
    _wrong("01-umot-share", sharers / buyers, "divided by the buyers")
    _wrong("01-umot-share", ev.touchpoint.isin(umot).sum() / everyone, "counted UMOT events, not customers")
    _wrong("01-umot-share", 100 * sharers / everyone, "percentage")
    assert check("01-umot-share", f"{100 * sharers / everyone:.1f}%", quiet=True).passed
    right = solution("01-circle-return", quiet=True)
    _wrong("01-circle-return", right * sharers / everyone, "divided by all customers")
    _wrong("01-circle-return", right + 0.2, "not quite")
    d = jm.to_dict()
    for m in d["moments"]:
        if m["id"] == "UMOT":
            m["touchpoints"] = [*m["touchpoints"], "chatbot"]
    _wrong("01-journey-map", cxlab.JourneyMap.from_dict(d), "sharing the experience", "SMOT")
    _wrong("01-journey-map", jm, "chatbot is not in any moment")
    assert check("01-journey-map", solution("01-journey-map", quiet=True).to_yaml(), quiet=True).passed


def test_02_mistakes():
    from cxlab.funnel import funnel

    f = funnel(_sim().events, window="7D").set_index("touchpoint")
    step = f.loc["checkout", "step_rate"]
    _wrong("02-step-conversion", f.loc["checkout", "n"] / f.loc["home_page", "n"],
           "you divided by all visitors, not by those who reached the step")
    _wrong("02-step-conversion", 1 - step, "dropped off")
    _wrong("02-step-conversion", round(100 * step, 1), "percentage")
    orr = solution("02-popup-odds-ratio", quiet=True)
    _wrong("02-popup-odds-ratio", math.log(orr), "log-odds scale")
    _wrong("02-popup-odds-ratio", 1 / orr, "inverted")
    _wrong("02-popup-odds-ratio", round(100 * (orr - 1)), "% increase")
    assert check("02-popup-odds-ratio", round(orr, 2), quiet=True).passed
    # the answer key recovers the planted truth: the OR's interval covers x2
    assert _sim().truth.dropoff_effects.set_index("term").loc["popup_shown", "odds_ratio"] == 2.0
    _wrong("02-escape-route", "checkout", "funnel step itself")
    _wrong("02-escape-route", "popup_shown", "pop-up")
    _wrong("02-escape-route", "sales_call", "lift", "smallest q-value")
    assert solution("02-escape-route", quiet=True) == _sim().truth.pain_points.touchpoint.iloc[0]


def test_03_mistakes():
    s = _sim().feedback.query("scale == 'nps'").score.to_numpy()
    nps = 100 * (np.mean(s >= 9) - np.mean(s <= 6))
    _wrong("03-nps", 100 * (np.mean(s >= 7) - np.mean(s <= 6)), "you counted the passives (7-8) as promoters")
    _wrong("03-nps", nps / 100, "NPS is promoters% minus detractors%, on a -100..100 scale: you gave a fraction")
    _wrong("03-nps", s.mean(), "mean score")
    assert check("03-nps", round(nps, 1), quiet=True).passed
    margin = solution("03-nps-margin", quiet=True)
    _wrong("03-nps-margin", 2 * margin, "full width")
    _wrong("03-nps-margin", margin / 1.959964, "one standard error")
    _wrong("03-nps-margin", margin / 100, "you gave a fraction")
    sig = solution("03-nps-change", quiet=True)
    assert isinstance(sig, bool)
    _wrong("03-nps-change", not sig, "includes 0" if not sig else "excludes 0")
    assert check("03-nps-change", "yes" if sig else "no", quiet=True).passed
    stars = _sim().feedback.query("scale == 'stars'").score.to_numpy()
    _wrong("03-csat", stars.mean(), "mean star rating")
    _wrong("03-csat", np.mean(stars == 5), "only the 5s")
    _wrong("03-csat", np.mean(stars >= 3), "3 stars as satisfied")


def test_04_mistakes():
    from sklearn.metrics import accuracy_score, f1_score

    from cxlab.sentiment import LexiconSentiment, labels_from_scores

    fb = _sim().feedback
    f = fb[fb.score.notna()]
    nps = (f.scale == "nps").to_numpy()
    s = f.score.to_numpy()
    _wrong("04-negative-share", np.where(nps, s <= 6, s <= 3).mean(), "3 stars as negative")
    _wrong("04-negative-share", np.where(nps, s <= 8, s <= 2).mean(), "passives (7-8) as negative")
    en = fb[(fb.language == "en") & fb.score.notna()]
    y = labels_from_scores(en.score, en.scale)
    p = LexiconSentiment().predict(en.text)["label"]
    _wrong("04-macro-f1", accuracy_score(y, p), "that is the accuracy")
    _wrong("04-macro-f1", f1_score(y, p, average="weighted"), "weighted by class size")
    assert check("04-macro-f1", f1_score(y, p, average="macro"), quiet=True).passed
    _wrong("04-distinctive-term", "recommend", "common in complaints about")
    _wrong("04-distinctive-term", "cart", "distinctive of the complaints about add_to_cart")
    _wrong("04-distinctive-term", 3, "give a name as text")
    assert check("04-distinctive-term", "Registration", quiet=True).passed


def test_05_mistakes():
    _wrong("05-normalised-score", 80, "stars start at 1")
    _wrong("05-normalised-score", 0.75, "you gave a fraction")
    _wrong("05-top-pain-point", "popup_shown", "customers do not rate it")
    _wrong("05-top-pain-point", "delivery", "delivery is not a pain point")
    _wrong("05-top-pain-point", "the form", "not a touchpoint of the journey map")
    table = training._pain_table().set_index("touchpoint")
    first = table.loc[table.pain_point, "rank"].min()
    others = table[table.pain_point & (table["rank"] > first)].index
    if len(others):
        _wrong("05-top-pain-point", others[0], "is a pain point, but it ranks")
    assert solution("05-top-pain-point", quiet=True) == _sim().truth.pain_points.touchpoint.iloc[0]
    r = table.loc["registration_form"]
    v = training._pain_table().attrs["value_per_customer"]
    _wrong("05-value-at-risk", r["left"] * v, "attributable fraction (OR − 1) / OR")
    _wrong("05-value-at-risk", r["left"] * (r["dropoff_or"] - 1) * v, "not OR − 1")
    _wrong("05-value-at-risk", r["customers_lost"], "number of customers lost")
    assert check("05-value-at-risk", round(r["value_at_risk"]), quiet=True).passed


def test_06_mistakes():
    from cxlab import kpis

    ev = _sim().events
    rep = kpis.repurchase_rate(ev).iloc[0]
    _wrong("06-repurchase", rep["successes"] / ev.customer_id.nunique(), "divided by all customers")
    _wrong("06-repurchase", 1 - rep["rate"], "did *not* buy again")
    care = kpis.care_responsiveness(ev).set_index("metric").loc["first_response"]
    hours = care["p50"] / pd.Timedelta("1h")
    _wrong("06-first-response", care["mean"] / pd.Timedelta("1h"), "that is the mean")
    _wrong("06-first-response", hours * 60, "minutes")
    _wrong("06-first-response", hours / 24, "days")
    _wrong("06-first-response", care["p50"], "not a Timedelta")
    cost = kpis.cost_to_serve(ev, costs=training.COSTS).iloc[0]
    _wrong("06-cost-to-serve", cost["total_cost"], "total cost")
    per = ev.touchpoint.map(training.COSTS).fillna(0).groupby(ev.customer_id).sum()
    _wrong("06-cost-to-serve", per[per > 0].mean(), "who cost something")
    sw = kpis.channel_switching(ev, window="7D").iloc[0]
    c = training._contacts_next()
    _wrong("06-channel-switching", sw["successes"] / c.customer_id.nunique(), "divided by customers")
    _wrong("06-channel-switching", 100 * sw["rate"], "percentage")


def test_glossary_is_italian_and_written_out():
    g = training.glossary()
    assert list(g.columns) == ["termine", "definizione", "english"] and len(g) >= 40
    english = " ".join(g.english).lower()
    for term in ("nps", "csat", "ces", "customer journey", "touchpoint", "zmot", "fmot", "smot", "umot", "funnel",
                 "conversion", "drop-off", "escape route", "odds ratio", "confidence interval", "retention",
                 "repurchase", "cost to serve", "upsell", "channel switching", "pain point", "value at risk",
                 "sentiment", "macro-f1", "distinctive terms"):
        assert term in english, term
    assert g.definizione.str.len().gt(20).all() and g.termine.is_unique
    path = NOTEBOOKS[0].parent / "GLOSSARIO.md"
    assert path.read_text(encoding="utf-8") == training.glossary_markdown(), \
        "GLOSSARIO.md is stale: run cxlab.training.write_glossary()"


def test_dataset_path(tmp_path, capsys):
    assert training.dataset_path("helpdesk_tickets", str(tmp_path)) is None
    assert "is not in" in capsys.readouterr().out
    bundled = training.dataset_path("online_shoppers", quiet=True)
    assert bundled is not None and bundled.exists()
    with pytest.raises(ValueError, match="did you mean 'online_shoppers'"):
        training.dataset_path("online_shopper")


# --------------------------------------------------------------------------- the notebooks
def test_notebooks_are_stripped_and_parametrised():
    import papermill

    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(c.outputs == [] and c.execution_count is None for c in code), path.name
        assert sum("parameters" in c.metadata.get("tags", []) for c in code) == 1
        declared = papermill.inspect_notebook(str(path))
        assert declared["solutions"]["default"] == "False" and "data_dir" in declared
        assert "def " not in "\n".join(c.source for c in code)
        assert "GLOSSARIO.md" in nb.cells[-1].source
        if path.name[:2] in ("02", "05"):
            assert any(c.cell_type == "markdown" and "Explore it yourself" in c.source for c in nb.cells)


def _run_all(tmp: Path, parameters: dict, parallel: int = 3) -> dict[str, Path]:
    """Execute every training notebook with papermill, ``parallel`` kernels at a time (one
    process each: papermill changes the working directory, which threads would share)."""
    pending, running, done, failed = list(NOTEBOOKS), [], {}, {}
    while pending or running:
        while pending and len(running) < parallel:
            nb = pending.pop(0)
            out = tmp / nb.name
            args = [sys.executable, "-m", "papermill", str(nb), str(out), "--cwd", str(nb.parent), "-k", "python3",
                    "--no-progress-bar"]
            for k, v in parameters.items():
                args += ["-p", k, str(v)]
            running.append((nb, out, subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                                      text=True)))
        for item in list(running):
            nb, out, proc = item
            if proc.poll() is not None:
                log = proc.stdout.read()
                (done if proc.returncode == 0 else failed)[nb.name] = out if proc.returncode == 0 else log[-3000:]
                running.remove(item)
        time.sleep(0.1)
    assert not failed, failed
    return done


def _checks(executed: Path) -> list[tuple[str, str, str]]:
    nb = nbformat.read(executed, as_version=4)
    found = []
    for c in nb.cells:
        for o in c.get("outputs", []):
            if o.get("output_type") == "stream" and o.get("name") == "stdout":
                found += [m.groups() for m in map(LINE.match, o["text"].splitlines()) if m]
    return found


def _notebook_exercises(path: Path) -> list[str]:
    return list(training.exercises(int(path.name[:2]))["id"])


@pytest.mark.notebooks
@pytest.mark.slow
def test_notebooks_with_solutions_pass_every_check(tmp_path):
    done = _run_all(tmp_path, {"solutions": True})
    for path in NOTEBOOKS:
        checks = _checks(done[path.name])
        assert sorted(eid for _, eid, _ in checks) == sorted(_notebook_exercises(path)), path.name
        assert all(mark == "✓" for mark, _, _ in checks), checks
        if path.name[:2] in ("02", "05"):        # the explorer is there to click
            outputs = [o for c in nbformat.read(done[path.name], 4).cells for o in c.get("outputs", [])]
            assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs), path.name


@pytest.mark.notebooks
@pytest.mark.slow
def test_notebooks_without_answers_or_data_run_and_say_not_answered(tmp_path):
    empty = tmp_path / "no-data"
    empty.mkdir()
    done = _run_all(tmp_path, {"solutions": False, "data_dir": str(empty)})
    for path in NOTEBOOKS:
        checks = _checks(done[path.name])
        assert sorted(eid for _, eid, _ in checks) == sorted(_notebook_exercises(path)), path.name
        assert all(m == "…" and msg.startswith("not answered yet") for m, _, msg in checks), checks
        text = "".join(o.get("text", "") for c in nbformat.read(done[path.name], 4).cells for o in c.get("outputs", []))
        assert "this section is skipped" in text, path.name


@pytest.mark.notebooks
@pytest.mark.slow
@pytest.mark.realdata
def test_real_data_sections_run_on_the_shared_data(tmp_path):
    if not (SHARED_DATA / "bpic2012_loans").exists():
        pytest.skip(f"real datasets in {SHARED_DATA} are absent: ../shared/data comes with the cxlab "
                    "development checkout, not with a user's clone")
    done = _run_all(tmp_path, {"solutions": False, "data_dir": str(SHARED_DATA)})
    for path in NOTEBOOKS:
        nb = nbformat.read(done[path.name], 4)
        text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
        assert "this section is skipped" not in text, path.name
        last = [c for c in nb.cells if c.cell_type == "code"][-1]       # the real-data section
        assert any(o.get("output_type") == "display_data" for o in last.outputs), path.name
