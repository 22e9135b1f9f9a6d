"""Bot lists: built-in names, CSV import (header forms, malformed lines), heuristic."""

from __future__ import annotations

import pytest

from twitchgraph.build.bots import (
    BUILTIN_BOTS,
    BotListError,
    import_bot_csv,
    known_bots,
    suspected_bots,
)

from ._build_fixtures import add_live, add_snapshots, new_store


def test_builtin_list_has_the_service_bots():
    assert {"nightbot", "streamelements", "moobot", "fossabot", "streamlabs"} <= BUILTIN_BOTS
    assert all(name == name.lower() for name in BUILTIN_BOTS)


@pytest.mark.parametrize("header", ["login", "Name", "USERNAME", "id,Login,seen"])
def test_import_any_login_column_case_insensitive(tmp_path, header):
    columns = header.split(",")
    at = [c.lower() for c in columns].index(next(c.lower() for c in columns if c.lower() in
                                                 ("login", "name", "username")))  # fmt: skip
    rows = []
    for login in ("BotOne", "bot_two", "botone"):
        cells = ["x"] * len(columns)
        cells[at] = login
        rows.append(",".join(cells))
    path = tmp_path / "bots.csv"
    path.write_text(header + "\n" + "\n".join(rows) + "\n\n")
    con = new_store()
    assert import_bot_csv(con, path) == 2  # BotOne and botone are one login
    assert import_bot_csv(con, path) == 0  # idempotent
    names = known_bots(con)
    listed = set(names.loc[names.rule == "list", "login"])
    assert listed == {"botone", "bot_two"}
    assert set(names.loc[names.rule == "builtin", "login"]) == set(BUILTIN_BOTS)


def test_malformed_csv_names_the_line_and_writes_nothing(tmp_path):
    path = tmp_path / "bots.csv"
    path.write_text("name,count\ngoodbot,3\nnot a login!,4\n")
    con = new_store()
    with pytest.raises(BotListError, match=r"bots.csv: line 3: 'not a login!'"):
        import_bot_csv(con, path)
    assert set(known_bots(con).rule) == {"builtin"}

    path.write_text("name,count\ngoodbot,3\nother,4,5\n")
    with pytest.raises(BotListError, match=r"line 3: 3 fields, header has 2"):
        import_bot_csv(con, path)

    path.write_text('name,count\n"unclosed,3\n')
    with pytest.raises(BotListError, match=r"line \d+"):
        import_bot_csv(con, path)

    path.write_text("channel,count\nx,1\n")
    with pytest.raises(BotListError, match=r"line 1: no login column"):
        import_bot_csv(con, path)

    with pytest.raises(BotListError, match=r"no such file"):
        import_bot_csv(con, tmp_path / "missing.csv")
    with pytest.raises(BotListError, match=r": cannot read it \(Is a directory\)"):
        import_bot_csv(con, tmp_path)


def test_suspected_bots_share_threshold():
    con = new_store()
    sids = add_snapshots(con, 1)
    # 20 live channels: "wide" is in 3 (15 % > 10 %), "two" in 2 (10 %, not more than 10 %).
    for i in range(20):
        chat = [f"fan{i}"] + (["wide"] if i < 3 else []) + (["two"] if i < 2 else [])
        add_live(con, sids, f"ch{i}", chatters=chat)
    flagged = suspected_bots(con, share=0.10, min_channels=2)
    assert list(flagged.login) == ["wide"]
    assert flagged.max_share.iloc[0] == pytest.approx(0.15)
    assert suspected_bots(con, share=0.2, min_channels=2).empty
    # chatters of a channel not live in that snapshot do not count
    con.execute("INSERT INTO chatters VALUES (1, 'offline', 'two', 'names')")
    assert list(suspected_bots(con, share=0.10, min_channels=2).login) == ["wide"]
