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


def test_report_keys_exposures_costs_currency_labels():
    jm = JourneyMap.from_dict(_map(exposures=["registration_form"], costs={"sales_call": 4.5},
                                   currency="CHF", labels={"checkout": "Cassa"}))
    assert jm.exposures == ("registration_form",)
    assert jm.costs == {"sales_call": 4.5}
    assert jm.currency == "CHF"
    assert jm.label("checkout") == "Cassa" and jm.label("purchase") == "purchase"
    bare = {k: v for k, v in _map().items() if k not in ("exposures", "costs", "currency", "labels")}
    plain = JourneyMap.from_dict(bare)
    assert plain.exposures == () and plain.costs == {} and plain.currency is None
    assert plain.label("checkout") == "checkout"


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
    (dict(exposures=["popup_shwn"]), "exposures[0]", "did you mean 'popup_shown'"),
    (dict(exposures="popup_shown"), "exposures", "list"),
    (dict(exposures=["popup_shown", "popup_shown"]), "exposures", "twice"),
    (dict(costs={"support_contact": -1}), "costs.support_contact", "number >= 0"),
    (dict(costs={"support_contact": "6 EUR"}), "costs.support_contact", "number >= 0"),
    (dict(costs={"support_contact": True}), "costs.support_contact", "number >= 0"),
    (dict(costs={"suport_contact": 6}), "costs.suport_contact", "did you mean 'support_contact'"),
    (dict(costs=[6]), "costs", "mapping"),
    (dict(currency="euro"), "currency", "ISO 4217"),
    (dict(currency=["EUR"]), "currency", "a string"),
    (dict(labels={"checkout": ["Cassa"]}), "labels.checkout", "a label"),
    (dict(labels={"chekout": "Cassa"}), "labels.chekout", "did you mean 'checkout'"),
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


def _bomb(levels=9, key="name"):
    """A "billion laughs" map: 9 levels of 9 aliases expand to 9**9 (387 million) strings."""
    lines = ['a0: &a0 "lol"']
    lines += [f"a{i}: &a{i} [{', '.join(['*a%d' % (i - 1)] * 9)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + f"\n{key}: *a{levels}\n"


@pytest.mark.parametrize("key", ["name", "funnel", "conversion_window"])
def test_yaml_alias_bomb_is_refused_before_it_expands(tmp_path, key):
    # the old loader built it (cheaply: the lists are shared) and then str()/repr() of the
    # 387-million-item value ran for minutes in gigabytes; the alias is now refused on sight
    p = tmp_path / "bomb.yml"
    p.write_text(_bomb(key=key), encoding="utf-8")
    with pytest.raises(JourneyMapError) as err:
        JourneyMap.from_yaml(p)
    assert err.value.key == str(p)
    assert "alias *a0" in str(err.value) and "line 2" in str(err.value)


def test_anchor_without_alias_and_yaml_text_answers_still_load(tmp_path):
    text = JourneyMap.default().to_yaml().replace("name: ", "name: &n ", 1)
    p = tmp_path / "j.yml"
    p.write_text(text, encoding="utf-8")
    assert JourneyMap.from_yaml(p).moment_ids == JourneyMap.default().moment_ids


def _moment(i, **changes):
    d = JourneyMap.default().to_dict()
    d["moments"][i].update(changes)
    return d


@pytest.mark.parametrize("data, key, text", [
    (_map(name=["a", "b"]), "name", "got list ['a', 'b']"),
    (_map(name={"x": 1}), "name", "got dict"),
    (_map(conversion=["purchase"]), "conversion", "got list"),
    (_map(conversion={"purchase": 1}), "conversion", "got dict"),
    (_map(funnel=["home_page", ["product_page"]]), "funnel[1]", "got list"),
    (_map(funnel=[{"home_page": 1}, "purchase"]), "funnel[0]", "got dict"),
    (_map(funnel=["home_page", 7]), "funnel[1]", "got int 7"),
    (_map(conversion_window=["7D"]), "conversion_window", "['7D'] is not a duration"),
    (_map(roles={"upgrade": [["purchase"]]}), "roles.upgrade[0]", "got list"),
    (_moment(2, label=["Second", "moment"]), "moments[SMOT].label", "got list"),
    (_moment(2, label=3), "moments[SMOT].label", "got int 3"),
    (_moment(1, phase=["during"]), "moments[FMOT].phase", "['during'] is not one of"),
    (_moment(0, id=["ZMOT"]), "moments[0].id", "got list"),
    (_moment(0, touchpoints=["search", ["ad_click"]]), "moments[ZMOT].touchpoints[1]", "got list"),
])
def test_a_list_or_mapping_where_a_string_belongs_names_the_key(data, key, text):
    with pytest.raises(JourneyMapError) as err:
        JourneyMap.from_dict(data)
    assert err.value.key == key
    assert text in str(err.value)


def test_a_huge_value_in_an_error_message_is_shown_truncated():
    nested = ["x"] * 10
    for _ in range(8):                 # 10**9 leaves, shared: repr() would never finish
        nested = [nested] * 10
    with pytest.raises(JourneyMapError) as err:
        JourneyMap.from_dict(_map(session_gap=nested))
    assert err.value.key == "session_gap" and len(str(err.value)) < 300


@pytest.mark.parametrize("text, message", [
    ("name: " + "[" * 5000 + "]" * 5000 + "\n", "nest deeper than 16 levels"),   # old: RecursionError
    ("name: " + "{a: " * 5000 + "1" + "}" * 5000 + "\n", "nest deeper than 16 levels"),
])
def test_deeply_nested_yaml_is_refused_with_the_file(tmp_path, text, message):
    p = tmp_path / "deep.yml"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(JourneyMapError) as err:
        JourneyMap.from_yaml(p)
    assert err.value.key == str(p) and message in str(err.value)


def test_a_map_that_is_not_utf8_text_names_the_file(tmp_path):
    p = tmp_path / "journey.yml"
    p.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(JourneyMapError) as err:
        JourneyMap.from_yaml(p)
    assert err.value.key == str(p) and "not UTF-8 text (byte 9" in str(err.value)
