import pandas as pd
import pytest

from cxlab import JourneyMap
from cxlab.exceptions import JourneyMapError


def test_default_map_has_four_moments_in_order():
    jm = JourneyMap.default()
    assert jm.moment_ids == ("ZMOT", "FMOT", "SMOT", "UMOT")
    assert [m.phase for m in jm.moments] == ["before", "during", "after", "after"]
    assert jm.funnel == ("home_page", "product_page", "add_to_cart", "checkout", "purchase")
    assert jm.conversion == "purchase"
    assert jm.conversion_window == pd.Timedelta("7D")
    assert jm.session_gap == pd.Timedelta("30min")
    assert jm.moment_of("review_written") == "UMOT" and jm.phase_of("review_written") == "after"
    assert jm.moment_of("search") == "ZMOT" and jm.phase_of("search") == "before"
    assert jm.moment_of("checkout") == "FMOT" and jm.phase_of("checkout") == "during"


def test_moment_of_unknown_touchpoint_suggests():
    with pytest.raises(KeyError, match="did you mean 'checkout'"):
        JourneyMap.default().moment_of("chekout")


def test_yaml_round_trip(tmp_path):
    jm = JourneyMap.default()
    path = tmp_path / "journey.yml"
    jm.to_yaml(path)
    again = JourneyMap.from_yaml(path)
    assert again == jm
    frame = again.to_frame()
    assert list(frame["touchpoint"]) == list(jm.touchpoints)
    assert frame.loc[frame.touchpoint == "purchase", "funnel_step"].item() == 4


def _map(**changes):
    d = JourneyMap.default().to_dict()
    d.update(changes)
    return d


@pytest.mark.parametrize("changes, key, text", [
    (dict(funnel=["home_page", "prodct_page"]), "funnel[1]", "did you mean 'product_page'"),
    (dict(conversion="purchased"), "conversion", "did you mean 'purchase'"),
    (dict(conversion_window="7"), "conversion_window", "with a unit"),
    (dict(conversion_window="seven days"), "conversion_window", "with a unit"),
    (dict(session_gap="-5min"), "session_gap", "positive"),
    (dict(session_gap="30 parsecs"), "session_gap", "not a duration"),
    (dict(funnel=["home_page"]), "funnel", "at least two"),
    (dict(funnels=["a"]), "funnels", "did you mean 'funnel'"),
])
def test_invalid_maps_name_the_key(changes, key, text):
    with pytest.raises(JourneyMapError) as err:
        JourneyMap.from_dict(_map(**changes))
    assert err.value.key == key
    assert text in str(err.value)


def test_touchpoint_in_two_moments_is_refused():
    d = JourneyMap.default().to_dict()
    d["moments"][3]["touchpoints"].append("checkout")
    with pytest.raises(JourneyMapError) as err:
        JourneyMap.from_dict(d)
    assert err.value.key == "moments[UMOT].touchpoints"
    assert "'checkout'" in str(err.value) and "FMOT" in str(err.value)


def test_bad_phase_and_duplicate_moment():
    d = JourneyMap.default().to_dict()
    d["moments"][0]["phase"] = "pre"
    with pytest.raises(JourneyMapError, match=r"moments\[ZMOT\]\.phase"):
        JourneyMap.from_dict(d)
    d = JourneyMap.default().to_dict()
    d["moments"][1]["id"] = "ZMOT"
    with pytest.raises(JourneyMapError, match="defined twice"):
        JourneyMap.from_dict(d)


def test_invalid_yaml_file(tmp_path):
    p = tmp_path / "j.yml"
    p.write_text("moments: [unclosed", encoding="utf-8")
    with pytest.raises(JourneyMapError, match="not valid YAML"):
        JourneyMap.from_yaml(p)


def test_check_reports_unknown_touchpoints_on_frame_and_table(ws, events_csv):
    events = pd.DataFrame({
        "customer_id": ["a", "a", "b", "c", "c"],
        "touchpoint": ["home_page", "chatbot", "chatbot", "purchase", "qr_scan"],
    })
    check = JourneyMap.default().check(events)
    assert not check.ok
    unknown = check.unknown.set_index("touchpoint")
    assert unknown.loc["chatbot", "n_events"] == 2 and unknown.loc["chatbot", "n_customers"] == 2
    assert unknown.loc["qr_scan", "examples"] == ["c"]
    assert check.unknown_events == 3
    assert "chatbot" in str(check)
    # the same on an Ibis table in the workspace (aggregated in the engine)
    ws.pull(events_csv)
    table_check = JourneyMap.default().check(ws.events())
    assert table_check.ok and set(table_check.known["touchpoint"]) == {
        "home_page", "product_page", "checkout", "purchase", "search"}
    assert table_check.known["n_events"].sum() == 7


def test_coerce_accepts_none_a_map_or_a_path(tmp_path):
    jm = JourneyMap.default()
    assert JourneyMap.coerce(None) == jm and JourneyMap.coerce(jm) is jm
    path = tmp_path / "j.yml"
    jm.to_yaml(path)
    assert JourneyMap.coerce(path) == jm and JourneyMap.coerce(str(path)) == jm
