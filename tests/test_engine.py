"""cxlab._engine: epoch microseconds in the engine, against pandas' own count."""
import ibis
import pandas as pd

from cxlab._engine import epoch_ms, epoch_us, micros_between


def test_epoch_microseconds_and_milliseconds_equal_pandas():
    ts = pd.to_datetime(["2024-01-01 00:00:00.123456", "2026-11-23 23:59:59.999999",
                         "1969-12-31 23:59:59.999500", "1970-01-01 00:00:00.000000"],
                        format="%Y-%m-%d %H:%M:%S.%f").tz_localize("UTC")
    df = pd.DataFrame({"ts": ts, "later": ts + pd.Timedelta("36h 7us")})
    t = ibis.memtable(df)
    got = t.select(us=epoch_us(t.ts), ms=epoch_ms(t.ts), gap=micros_between(t.later, t.ts)).execute()
    us = (df.ts - pd.Timestamp("1970-01-01", tz="UTC")) // pd.Timedelta("1us")
    assert got.us.tolist() == us.tolist() == [1704067200123456, 1795478399999999, -500, 0]
    assert got.ms.tolist() == (us // 1000).tolist() == [1704067200123, 1795478399999, -1, 0]   # floored
    assert got.gap.tolist() == [36 * 3600 * 10**6 + 7] * 4
