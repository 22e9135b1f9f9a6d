"""HelixClient against an in-memory Twitch: paging quirks, rate limits, retries, bad replies."""

from __future__ import annotations

import logging

import httpx
import pytest

from twitchgraph.twitch.errors import ServerError, TwitchAPIError

from ._collect_fixtures import FakeClock, FakeTwitch, is_streams, make_stream


def _streams(n: int, top: int = 100_000) -> list[dict]:
    # Strictly decreasing viewer counts so the expected order is unambiguous.
    return [make_stream(i, top - 7 * i) for i in range(n)]


def _ids(streams: list[dict]) -> list[str]:
    return [s["id"] for s in streams]


def _afters(fake: FakeTwitch) -> list[str | None]:
    return [r.url.params.get("after") for r in fake.requests if r.url.path.endswith("/streams")]


def test_pages_with_first_100_and_after_cursor() -> None:
    fake = FakeTwitch(_streams(250))
    got = fake.helix().streams()
    assert _ids(got) == _ids(fake.streams)
    assert _afters(fake) == [None, "c100", "c200"]
    assert all(r.url.params["first"] == "100" for r in fake.requests)
    assert got[0]["user_login"] == "chan00000" and got[0]["tags"] == ["English"]


def test_duplicates_while_paging_are_dropped() -> None:
    fake = FakeTwitch(_streams(250))
    newcomers = [make_stream(1000 + i, 200_000 + i) for i in range(5)]

    def churn(request: httpx.Request) -> None:
        # Five new big streams go live after page 1: everything shifts down by five, so
        # page 2 starts with the last five streams of page 1.
        if request.url.params.get("after") == "c100" and newcomers[0] not in fake.streams:
            fake.streams = sorted(fake.streams + newcomers, key=lambda s: -s["viewer_count"])

    fake.hook = churn
    client = fake.helix()
    got = client.streams()
    ids = _ids(got)
    assert len(ids) == len(set(ids))
    # Every stream that was live from the start is still found exactly once.
    assert set(_ids(_streams(250))) <= set(ids)
    assert client.stats.duplicates == 5


def test_looping_last_cursor_stops_without_repeats() -> None:
    fake = FakeTwitch(_streams(250))
    fake.loop_cursor_after = 200  # the last page's cursor points back to page 1
    client = fake.helix()
    got = client.streams()
    assert _ids(got) == _ids(fake.streams)
    # page 1, 2, 3, then the looped page 1 (all repeats): stopped there, no fifth request
    assert _afters(fake) == [None, "c100", "c200", "c0"]


def test_repeated_cursor_stops() -> None:
    fake = FakeTwitch(_streams(300))
    # page 2 hands out the cursor page 1 gave: a request would fetch page 2 again.
    fake.script.append((is_streams("c100"), httpx.Response(
        200, json={"data": fake.streams[100:200], "pagination": {"cursor": "c100"}})))
    got = fake.helix().streams()
    assert _ids(got) == _ids(fake.streams[:200])
    assert _afters(fake) == [None, "c100"]


def test_viewer_count_jumping_back_up_stops() -> None:
    fake = FakeTwitch([make_stream(i, 1_000_000 // (i + 1)) for i in range(400)])
    # Page 3 comes back as a fresh copy of page 1 under new stream ids (a restart of the list):
    # not repeats by id, but viewer counts jump back to the top.
    restarted = [dict(s, id="r" + s["id"]) for s in fake.streams[:100]]
    fake.script.append((is_streams("c200"), httpx.Response(
        200, json={"data": restarted, "pagination": {"cursor": "c300"}})))
    got = fake.helix().streams()
    assert _ids(got) == _ids(fake.streams[:200])
    assert _afters(fake) == [None, "c100", "c200"]


def test_min_viewers_stops_paging_and_filters() -> None:
    fake = FakeTwitch([make_stream(i, 1000 - i) for i in range(1000)])
    got = fake.helix().streams(min_viewers=850)
    assert [s["viewer_count"] for s in got] == list(range(1000, 849, -1))
    assert len(fake.requests) == 2  # page 2 ends below 850: no page 3


def test_limit_language_and_game_filters() -> None:
    streams = [make_stream(i, 5000 - i, language="it" if i % 2 else "en",
                           game="g2" if i % 3 else "g1") for i in range(600)]
    fake = FakeTwitch(streams)
    got = fake.helix().streams(language="it", game_ids=["g2"], limit=150)
    assert len(got) == 150
    assert all(s["language"] == "it" and s["game_id"] == "g2" for s in got)
    assert [s["viewer_count"] for s in got] == sorted((s["viewer_count"] for s in got),
                                                      reverse=True)
    first = fake.requests[0].url.params
    assert first["language"] == "it" and first.get_list("game_id") == ["g2"]
    assert len(fake.requests) == 2


def test_429_waits_for_reset_and_loses_no_page() -> None:
    clock = FakeClock()
    fake = FakeTwitch(_streams(300), clock)
    reset = clock.now().timestamp() + 42
    fake.script.append((is_streams("c100"), httpx.Response(
        429, headers={"Ratelimit-Limit": "800", "Ratelimit-Remaining": "0",
                      "Ratelimit-Reset": str(int(reset))})))
    client = fake.helix()
    got = client.streams()
    assert _ids(got) == _ids(fake.streams)
    assert _afters(fake) == [None, "c100", "c100", "c200"]  # the same page asked again
    assert client.stats.rate_limited == 1
    assert clock.sleeps and 42 <= clock.sleeps[0] <= 43  # waited until the reset, once
    assert clock.now().timestamp() >= reset


def test_pacing_keeps_429s_away_under_a_token_bucket() -> None:
    clock = FakeClock()
    fake = FakeTwitch(_streams(4000), clock)
    fake.start_bucket(capacity=10, per_minute=60)  # 1 point per second, 10 in the bucket
    client = fake.helix()
    got = client.streams()
    assert len(got) == 4000
    assert client.stats.rate_limited == 0
    # 40 requests, 10 free from the bucket, 30 at one per second: about 30 s of waiting.
    elapsed = clock.sleeps and sum(clock.sleeps)
    assert 28 <= elapsed <= 40


def test_5xx_and_timeouts_back_off_and_retry_the_same_page() -> None:
    clock = FakeClock()
    fake = FakeTwitch(_streams(300), clock)
    fake.script += [
        (is_streams("c100"), httpx.Response(503, text="upstream down")),
        (is_streams("c100"), httpx.ReadTimeout("slow")),
        (is_streams("c200"), httpx.Response(500, json={"message": "oops"})),
    ]
    client = fake.helix(backoff_s=1.0)
    got = client.streams()
    assert _ids(got) == _ids(fake.streams)
    assert client.stats.server_errors == 2 and client.stats.timeouts == 1
    assert clock.sleeps == [1.0, 2.0, 1.0]  # exponential per request, reset for the next


def test_server_errors_are_bounded() -> None:
    clock = FakeClock()
    fake = FakeTwitch(_streams(50), clock)
    fake.script += [(is_streams(), httpx.Response(502)) for _ in range(10)]
    client = fake.helix(max_retries=3, backoff_s=1.0, max_backoff_s=3.0)
    with pytest.raises(ServerError) as info:
        client.streams()
    assert "HTTP 502" in str(info.value) and "api.test/helix/streams" in str(info.value)
    assert clock.sleeps == [1.0, 2.0, 3.0]
    assert len(fake.requests) == 4


def test_malformed_json_page_is_reported_and_skipped(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeTwitch(_streams(300))
    bad = httpx.Response(200, content=b'{"data": [{"id": "s1", ')
    fake.script += [(is_streams("c200"), bad), (is_streams("c200"), bad)]
    client = fake.helix()
    with caplog.at_level(logging.WARNING, logger="twitchgraph"):
        got = client.streams()
    assert _ids(got) == _ids(fake.streams[:200])  # finished pages kept
    assert client.stats.malformed == 2
    assert "malformed" in caplog.text and "/streams" in caplog.text


def test_malformed_json_once_is_retried() -> None:
    fake = FakeTwitch(_streams(300))
    fake.script.append((is_streams("c100"), httpx.Response(200, content=b"<html>oops")))
    client = fake.helix()
    assert _ids(client.streams()) == _ids(fake.streams)
    assert client.stats.malformed == 1


def test_missing_fields_drop_only_the_bad_items(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeTwitch(_streams(5))
    page = [dict(s) for s in fake.streams]
    del page[1]["user_login"]
    page[3]["viewer_count"] = "many"
    fake.script.append((is_streams(None), httpx.Response(200, json={"data": page})))
    client = fake.helix()
    with caplog.at_level(logging.WARNING, logger="twitchgraph"):
        got = client.streams()
    assert _ids(got) == ["s0", "s2", "s4"]
    assert client.stats.malformed == 2
    assert "user_login" in caplog.text


def test_reply_without_data_list_is_skipped() -> None:
    fake = FakeTwitch(_streams(10))
    fake.script.append((is_streams(None), httpx.Response(200, json={"error": "nope"})))
    client = fake.helix()
    assert client.streams() == []
    assert client.stats.malformed == 1


def test_users_in_batches_of_100_and_bad_batch_skipped() -> None:
    fake = FakeTwitch([])
    for i in range(250):
        fake.users[f"u{i}"] = {"id": f"u{i}", "login": f"user{i}", "display_name": f"User{i}",
                               "broadcaster_type": "affiliate" if i % 2 else "",
                               "description": "hi", "created_at": "2020-01-01T00:00:00Z",
                               "profile_image_url": "", "type": "", "view_count": 0}
    client = fake.helix()
    got = client.users(logins=[f"USER{i}" for i in range(250)] + ["nobody"])
    assert sorted(u["id"] for u in got) == sorted(fake.users)
    batches = [r.url.params.get_list("login") for r in fake.requests]
    assert [len(b) for b in batches] == [100, 100, 51]
    assert batches[0][0] == "user0"  # sent lower case

    fake.requests.clear()
    fake.script.append((lambda r: r.url.path.endswith("/users"),
                        httpx.Response(200, json={"data": "not a list"})))
    got = client.users(ids=[f"u{i}" for i in range(150)])
    assert sorted(u["id"] for u in got) == sorted(f"u{i}" for i in range(100, 150))
    assert client.stats.malformed == 1


def test_games_by_ids_and_names() -> None:
    fake = FakeTwitch([])
    fake.games = {"1": {"id": "1", "name": "Chess", "box_art_url": "x", "igdb_id": "7"},
                  "2": {"id": "2", "name": "Just Chatting", "box_art_url": "y", "igdb_id": ""}}
    got = fake.helix().games(ids=["1"], names=["Just Chatting", "Chess"])
    assert [g["name"] for g in got] == ["Chess", "Just Chatting"]
    assert got[0]["igdb_id"] == "7"


def test_client_error_carries_status_and_url() -> None:
    fake = FakeTwitch([])
    fake.script.append((is_streams(), httpx.Response(400, json={"message": "bad language"})))
    with pytest.raises(TwitchAPIError) as info:
        fake.helix().streams(language="zz")
    text = str(info.value)
    assert "HTTP 400" in text and "https://api.test/helix/streams" in text
    assert "bad language" in text


def test_a_viewer_count_the_store_cannot_hold_is_a_malformed_item() -> None:
    streams = [make_stream(i, 100 - i) for i in range(4)]
    streams[1]["viewer_count"] = 10**30  # over the store's INTEGER
    streams[2]["viewer_count"] = 1e300  # JSON's largest numbers come back as floats
    streams[3]["viewer_count"] = -5
    client = FakeTwitch(streams).helix()
    got = client.streams()
    assert [s["user_login"] for s in got] == [streams[0]["user_login"]]
    assert client.stats.malformed == 3
