"""The simulated world: seeded, heavy-tailed, planted communities, bots, change over time."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime

import numpy as np
import pytest

from twitchgraph.sim.clock import AcceleratedClock
from twitchgraph.sim.population import make_population

START = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def pop():
    return make_population(channels=160, users=4000, seed=3, start=START)


def test_same_seed_same_world_other_seed_other_world():
    a = make_population(channels=60, users=800, seed=11, start=START)
    b = make_population(channels=60, users=800, seed=11, start=START)
    c = make_population(channels=60, users=800, seed=12, start=START)
    assert a.acc_login == b.acc_login
    assert np.array_equal(a.pool_acc, b.pool_acc)
    assert a.ground_truth() == b.ground_truth()
    assert [a.stream(int(x), 900.0) for x in a.live_channels(900.0)] == [
        b.stream(int(x), 900.0) for x in b.live_channels(900.0)]
    assert a.acc_login != c.acc_login


def test_channel_sizes_are_heavy_tailed(pop):
    _, viewers = pop.ranked_live(0.0)
    assert viewers[0] >= 1000
    assert 2 <= int((viewers >= 1000).sum()) <= 12  # a few big rooms, membership withheld there
    assert np.median(viewers) < 60
    assert viewers[0] > 20 * np.median(viewers)
    assert viewers[: len(viewers) // 10].sum() > 0.5 * viewers.sum()  # top 10% hold most
    assert list(viewers) == sorted(viewers, reverse=True)


def test_planted_communities_show_in_co_viewing(pop):
    truth = pop.ground_truth()["communities"]
    bots = set(range(pop.n_channels + pop.n_viewers, pop.n_accounts))
    audience: dict[int, set[int]] = {}
    for t in (0.0, 3600.0, 7200.0, 10800.0):
        for c in pop.live_channels(t):
            audience.setdefault(int(c), set()).update(
                int(a) for a in pop.chatters(int(c), t) if int(a) not in bots)
    big = [c for c, s in audience.items() if len(s) >= 15]
    intra, inter = [], []
    for a, b in itertools.combinations(big, 2):
        overlap = len(audience[a] & audience[b]) / min(len(audience[a]), len(audience[b]))
        same = truth[pop.acc_login[a]] == truth[pop.acc_login[b]]
        (intra if same else inter).append(overlap)
    assert len(intra) > 20 and len(inter) > 20
    assert np.mean(intra) > 4 * np.mean(inter)


def test_viewers_mostly_watch_their_home_community(pop):
    home = pop.acc_community
    owners = np.repeat(np.arange(pop.n_channels), np.diff(pop.pool_ptr))
    same = home[pop.pool_acc] == home[owners]
    assert 0.75 < same.mean() < 0.97


def test_bots_sit_in_very_many_live_channels(pop):
    truth = pop.ground_truth()
    live = pop.live_channels(0.0)
    share = {}
    for bot in truth["bots"]:
        acc = pop.index_of_login(bot)
        share[bot] = np.mean([acc in set(pop.chatters(int(c), 0.0).tolist()) for c in live])
    assert len(share) >= 8
    assert sum(s > 0.5 for s in share.values()) >= 5
    assert all(s > 0.1 for s in share.values())
    # the published list misses a couple of them, so a heuristic has something to find
    assert set(truth["bots"]) - set(truth["published_bots"])
    assert len(truth["published_bots"]) > 100


def test_streams_start_end_and_viewers_drift(pop):
    at0 = set(pop.live_channels(0.0).tolist())
    later = set(pop.live_channels(6 * 3600.0).tolist())
    assert at0 != later and len(at0 ^ later) >= 10
    assert 0.6 < len(at0) / pop.n_channels < 0.98
    both = np.array(sorted(at0 & set(pop.live_channels(600.0).tolist())))
    v0, v1 = pop.viewer_counts(both, 0.0), pop.viewer_counts(both, 600.0)
    assert (v0 != v1).mean() > 0.5
    c = int(both[0])
    s0, s1 = pop.stream(c, 0.0), pop.stream(c, 600.0)
    assert s0["id"] == s1["id"] and s0["started_at"] == s1["started_at"]  # same session


def test_stream_and_user_objects_have_helix_fields(pop):
    c = int(pop.live_channels(0.0)[0])
    stream = pop.stream(c, 0.0)
    assert set(stream) == {"id", "user_id", "user_login", "user_name", "game_id", "game_name",
                           "type", "title", "viewer_count", "started_at", "language",
                           "thumbnail_url", "tag_ids", "tags", "is_mature"}
    assert stream["started_at"].endswith("Z") and stream["type"] == "live"
    user = pop.user(c)
    assert user["id"] == stream["user_id"] and user["login"] == stream["user_login"]
    assert user["broadcaster_type"] in ("partner", "affiliate", "")


def test_games_cover_every_steam_match_tier(pop):
    games = pop.ground_truth()["games"]
    tiers = {g["match"] for g in games.values()}
    assert tiers == {"exact", "normalised", "fuzzy", "absent"}
    assert any("™" in (g["steam_name"] or "") or "®" in (g["steam_name"] or "")
               for g in games.values())
    assert games["Just Chatting"]["igdb_id"] is None


def test_scales_to_ten_thousand_channels():
    big = make_population(channels=10_000, users=2000, seed=0, live_fraction=1.0, start=START)
    ch, viewers = big.ranked_live(0.0)
    assert len(ch) == 10_000
    assert len({big.acc_login[int(c)] for c in ch}) == 10_000


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="live_fraction"):
        make_population(channels=10, users=10, live_fraction=0)
    with pytest.raises(ValueError, match="channels"):
        make_population(channels=0, users=10)


def test_accelerated_clock_runs_fast_and_advances():
    clock = AcceleratedClock(time_scale=600.0, start=START)
    clock.sleep(60.0)  # one simulated minute = 0.1 s
    assert 55 <= clock.elapsed() < 120
    clock.advance(3600)
    assert clock.now() >= START.replace(hour=13)
    assert clock.now().tzinfo is not None


def test_manual_clock_sleeps_in_virtual_time():
    clock = AcceleratedClock(time_scale=0, start=START)
    clock.sleep(300)
    asyncio.run(clock.asleep(300))
    assert clock.elapsed() == 600
    assert clock.now() == START.replace(minute=10)
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_raids_come_at_session_ends_mostly_within_communities_and_toward_big_audiences(pop):
    week = 2 * 86400.0
    raids = pop.raids_between(0.0, week)
    # pure: the same interval, split or not, gives the same raids
    assert pop.raids_between(0.0, week / 2) + pop.raids_between(week / 2, week) == raids
    assert len(raids) > 200
    for t, raider, target, viewers in raids[:50]:
        live_before = pop.live_channels(t - 1.0)
        assert raider in live_before and raider not in pop.live_channels(t + 1.0)
        assert target in pop.live_channels(t) and target != raider
        assert viewers == pop.viewer_counts(np.asarray([raider]), t - 1.0)[0] > 0
    comm = pop.acc_community
    home = np.mean([comm[r] == comm[g] for _, r, g, _ in raids])
    assert home > 0.6  # well above what the communities' sizes alone would give
    # raided channels are the big ones: their typical audience beats the average channel's
    raided = np.asarray([g for _, _, g, _ in raids])
    assert np.median(pop.ch_base[raided]) > 3 * np.median(pop.ch_base)


@pytest.mark.slow
def test_stream_ends_send_some_chatters_on_and_the_record_says_where(pop):
    hours = 4 * 3600.0
    ends = [(t, c, k) for t, c, k in pop.ends_between(0.0, hours)
            if len(pop.end_moves(c, k, t)[0])]
    assert len(ends) >= 10
    bot0 = pop.n_channels + pop.n_viewers
    record = pop.audience_after_ends(0.0, hours)
    # pure: the same interval, split or not, gives the same record
    assert record == pop.audience_after_ends(0.0, hours / 2) + pop.audience_after_ends(
        hours / 2, hours)
    moved = {(t, a, b, v) for t, a, b, v, m in record if m}
    for t, c, k in ends[:10]:
        movers, dest = pop.end_moves(c, k, t)
        last = 60.0 * (np.ceil(t / 60.0) - 1)
        # movers come from the last minute's own audience; each sits in its destination's
        # chat from the next minute on, and the record says so
        assert set(movers.tolist()) <= set(pop.chatters(c, last).tolist())
        assert (movers < bot0).all() and c not in dest
        for v, b in zip(movers.tolist(), dest.tolist(), strict=True):
            assert v in pop.chatters(b, last + 60.0)
            assert (t, pop.acc_login[c], pop.acc_login[b], pop.acc_login[v]) in moved
