"""A synthetic, seeded Twitch world: channels, viewers, bots, games and how they change over time.

Shape (all drawn from one ``seed``):

- ``communities`` hidden communities; each has a main language and a handful of games. Channels
  and viewers belong to one community each.
- Channel sizes follow a Zipf law over a random ranking (about 6,000 viewers for the top
  channel, a handful above 1,000, most below 20), with log-normal noise.
- Each channel has an audience pool drawn mostly (``home_share``) from its community's viewers;
  who of the pool is in chat at a given moment comes from loyalty plus churn that changes every
  ``churn_s`` simulated seconds, so co-viewing reveals the communities.
- A handful of bots sit in very many channels (service bots that also chat, silent viewer bots);
  two of them are missing from the published bot list so heuristics have something to find.
- Streams start and end on per-channel schedules (sessions of 2-8 h, ``live_fraction`` of the
  time on average); viewer counts ramp up after a start, follow a daily wave and drift each minute.
- At the end of a session a channel may raid (`raids_between`): it sends its viewers to a live
  channel picked in proportion to audience, with channels of its own community weighted
  ``raid_home_weight`` times more, so most raids stay within the planted communities.
- At the end of every session, ``follow_share`` of the chatters of its last minute move on: each
  to a channel live in the next minute, picked as a raid's target is (by audience, its own
  community ``follow_home_weight`` times more), whose chat they sit in for ``stay_s``. Who
  went where is recorded by `audience_after_ends`: for each end, every chatter of the last
  minute and the live channels they are in in the next one, moved there or already there.

Times are simulated seconds since ``start`` (see `AcceleratedClock.elapsed`). Accounts share one
index space: channels ``[0, C)``, viewers ``[C, C + U)``, bots after them.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from twitchgraph.errors import BadValue
from twitchgraph.sim.catalog import GAMES, IGDB_GENRES, IGDB_THEMES, Game

__all__ = ["Population", "igdb_record", "make_population", "to_rfc3339", "uniform"]

# Bounds that keep a typo from allocating for ever: ~100,000 live channels is all of Twitch.
MAX_CHANNELS = 100_000
MAX_USERS = 10_000_000

logger = logging.getLogger(__name__)

_LANGS = ("en", "es", "de", "fr", "pt", "it", "ja", "ko", "ru", "pl")
_LANG_TAG = {
    "en": "English", "es": "Español", "de": "Deutsch", "fr": "Français", "pt": "Português",
    "it": "Italiano", "ja": "日本語", "ko": "한국어", "ru": "Русский", "pl": "Polski",
}
_EXTRA_TAGS = ("Chill", "Competitive", "Funny", "NoBackseating", "DropsEnabled", "Speedrun",
               "Cozy", "Interactive", "VTuber", "Educational")
_SYLLABLES = ("ka", "zu", "mi", "ro", "ta", "ne", "lo", "vi", "sa", "po", "da", "ri", "mo", "xe",
              "qu", "an", "el", "or", "ix", "yu", "be", "fa", "go", "hi", "ju", "ky", "le", "nu",
              "pe", "so", "tu", "va", "we", "zo", "ch", "sh", "th", "br", "dr", "gr", "st", "tr")
_WORDS = ("pixel", "shadow", "wolf", "frost", "ember", "ninja", "lucky", "tiny", "mega", "night",
          "storm", "cozy", "salty", "happy", "lazy", "crispy", "noodle", "panda", "raven", "fox",
          "gamer", "plays", "tv", "live", "bear", "cat", "duck", "king", "queen", "ghost")
_TITLES = ("{game} with chat!", "day {n} of {game}", "chill {game} stream", "{game} ranked grind",
           "first time playing {game}", "{game} !drops !discord", "late night {game}",
           "{game} until I win", "road to top 500 — {game}", "cozy vibes | {game}")
_PLATFORMS = (("twitter", "Twitter", "https://twitter.com/{login}"),
              ("instagram", "Instagram", "https://www.instagram.com/{login}"),
              ("youtube", "YouTube", "https://www.youtube.com/@{login}"),
              ("tiktok", "TikTok", "https://www.tiktok.com/@{login}"),
              ("discord", "Discord", "https://discord.gg/{code}"))
_SERVICE_BOTS = ("nightbot", "streamelements", "moobot", "fossabot")
_VIEWER_BOTS = ("commanderroot", "anotherttvviewer", "lurxx", "0ax2", "aliceydra", "drapsnatt")
_UNLISTED_BOTS = ("statswatcher_v2", "lurkradar")  # present but not in the published list

_MASK = np.uint64(0xFFFFFFFFFFFFFFFF)


def to_rfc3339(when: datetime) -> str:
    """Format like Helix: ``2026-11-25T17:20:50Z``."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _mix(x: np.ndarray) -> np.ndarray:
    # splitmix64 finaliser: a fast, well-spread hash so presence and noise are pure functions
    # of (seed, keys) and need no stored state.
    with np.errstate(over="ignore"):
        x = (x + np.uint64(0x9E3779B97F4A7C15)) & _MASK
        x = ((x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _MASK
        x = ((x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _MASK
        return x ^ (x >> np.uint64(31))


def uniform(seed: int, *keys: np.ndarray | int) -> np.ndarray:
    """Deterministic uniforms in [0, 1) from ``seed`` and integer keys (broadcast)."""
    h = _mix(np.asarray([seed], dtype=np.uint64))
    for key in keys:
        k = np.asarray(key).astype(np.int64).astype(np.uint64)
        h = _mix(h ^ k)
    return (h >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


@dataclass
class Population:
    """The simulated world. Build it with `make_population`; all methods are read-only."""

    seed: int
    start: datetime
    n_channels: int
    n_viewers: int
    communities: int
    community_language: list[str]
    community_games: list[list[int]]
    # accounts (channels, then viewers, then bots)
    acc_id: np.ndarray
    acc_login: list[str]
    acc_display: list[str]
    acc_created: np.ndarray  # epoch seconds
    acc_btype: list[str]
    acc_community: np.ndarray  # -1 for bots
    acc_talk: np.ndarray  # messages weight; 0 = lurker
    bot_logins: list[str]
    bot_published: list[str]
    bot_share: np.ndarray  # probability a bot sits in a given live channel
    bot_talks: np.ndarray  # bool, service bots post messages
    # channels
    ch_language: list[str]
    ch_base: np.ndarray
    ch_chat_ratio: np.ndarray
    ch_period: np.ndarray
    ch_duty: np.ndarray
    ch_phase: np.ndarray
    ch_daily_phase: np.ndarray
    ch_games: list[tuple[int, ...]]
    ch_mature: np.ndarray
    ch_tags: list[list[str]]
    ch_description: list[str]
    ch_socials: list[list[dict[str, str]]]
    # audience pools (CSR over channels)
    pool_ptr: np.ndarray
    pool_acc: np.ndarray
    pool_loyalty: np.ndarray
    churn_s: float = 900.0
    follow_share: float = 0.4
    follow_home_weight: float = 8.0
    stay_s: float = 1800.0
    game_ids: list[str] = field(default_factory=list)
    igdb_ids: list[int | None] = field(default_factory=list)
    steam_appids: list[int | None] = field(default_factory=list)
    _login_index: dict[str, int] = field(default_factory=dict, repr=False)
    _id_index: dict[str, int] = field(default_factory=dict, repr=False)
    _cache: dict[tuple[int, int], np.ndarray] = field(default_factory=dict, repr=False)
    _cache_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _moves: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = field(
        default_factory=dict, repr=False)
    _arrivals: dict[int, dict[int, np.ndarray]] = field(default_factory=dict, repr=False)

    # ----- lookups -------------------------------------------------------------------------
    @property
    def n_accounts(self) -> int:
        return len(self.acc_login)

    @property
    def channel_logins(self) -> list[str]:
        return self.acc_login[: self.n_channels]

    def index_of_login(self, login: str) -> int | None:
        """Account index for a login (case-insensitive), or None."""
        return self._login_index.get(login.lower())

    def index_of_id(self, user_id: str) -> int | None:
        return self._id_index.get(str(user_id))

    # ----- schedule and viewers ------------------------------------------------------------
    def session(self, ch: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(live mask, session index, session start in sim seconds) for channels at time t."""
        period = self.ch_period[ch]
        pos = t + self.ch_phase[ch]
        idx = np.floor(pos / period)
        into = pos - idx * period
        live = into < self.ch_duty[ch] * period
        return live, idx.astype(np.int64), t - into

    def live_channels(self, t: float) -> np.ndarray:
        """Indices of the channels live at sim time ``t``."""
        ch = np.arange(self.n_channels)
        live, _, _ = self.session(ch, t)
        return ch[live]

    def viewer_counts(self, ch: np.ndarray, t: float) -> np.ndarray:
        """Viewer counts of channels at sim time t (0 where offline)."""
        ch = np.asarray(ch, dtype=np.int64)
        live, _, started = self.session(ch, t)
        age = t - started
        ramp = np.clip(0.35 + 0.65 * age / 1800.0, 0.35, 1.0)
        daily = 1.0 + 0.2 * np.sin(2 * np.pi * t / 86400.0 + self.ch_daily_phase[ch])
        noise = 1.0 + 0.2 * (uniform(self.seed, 11, ch, int(t // 60)) - 0.5)
        v = np.floor(self.ch_base[ch] * ramp * daily * noise).astype(np.int64)
        return np.where(live, v, 0)

    def session_games(self, ch: np.ndarray, sessions: np.ndarray) -> list[int]:
        """Catalogue index of the game each (channel, session) is played."""
        u = uniform(self.seed, 12, ch, sessions)
        out = []
        for c, x in zip(ch.tolist(), u.tolist(), strict=True):
            games = self.ch_games[c]
            # The first game is the channel's main one; others come up now and then.
            out.append(games[0] if x < 0.6 or len(games) == 1
                       else games[1 + int(x * 97) % (len(games) - 1)])
        return out

    def streams(self, ch: np.ndarray, t: float,
                viewers: np.ndarray | None = None) -> list[dict | None]:
        """Helix stream objects of channels at sim time t (None where offline), in one pass."""
        ch = np.asarray(ch, dtype=np.int64)
        live, idx, started = self.session(ch, t)
        if viewers is None:
            viewers = self.viewer_counts(ch, t)
        games = self.session_games(ch, idx)
        key = (np.uint64(self.seed) * np.uint64(1_000_003) + ch.astype(np.uint64)
               * np.uint64(7919) + idx.astype(np.uint64))
        sids = (_mix(key) % np.uint64(9_000_000_000)).astype(np.int64) + 40_000_000_000
        n_title = (uniform(self.seed, 13, ch, idx) * len(_TITLES)).astype(np.int64)
        out: list[dict | None] = []
        for i, c in enumerate(ch.tolist()):
            if not live[i]:
                out.append(None)
                continue
            game = GAMES[games[i]]
            login = self.acc_login[c]
            out.append({
                "id": str(sids[i]),
                "user_id": str(self.acc_id[c]),
                "user_login": login,
                "user_name": self.acc_display[c],
                "game_id": self.game_ids[games[i]],
                "game_name": game.name,
                "type": "live",
                "title": _TITLES[n_title[i]].format(game=game.name, n=int(idx[i]) % 400 + 1),
                "viewer_count": int(viewers[i]),
                "started_at": to_rfc3339(self.start + timedelta(seconds=float(started[i]))),
                "language": self.ch_language[c],
                "thumbnail_url": "https://static-cdn.jtvnw.net/previews-ttv/live_user_"
                f"{login}-{{width}}x{{height}}.jpg",
                "tag_ids": [],
                "tags": list(self.ch_tags[c]),
                "is_mature": bool(self.ch_mature[c]),
            })
        return out

    def raids_between(self, t0: float, t1: float, *, share: float = 0.6,
                      home_weight: float = 8.0) -> list[tuple[float, int, int, int]]:
        """Raids at the session ends in ``(t0, t1]``: (time, raider, raided, viewers), in time
        order.

        A channel raids at a session end with probability `share`; the raided channel is live
        then, picked with weight viewers x (`home_weight` when in the raider's community, else
        1); the raid brings the raider's viewer count just before the end. A pure function of
        the seed: the same interval gives the same raids.
        """
        out: list[tuple[float, int, int, int]] = []
        for t, c, k in self.ends_between(t0, t1):
            if uniform(self.seed, 40, c, k)[0] >= share:
                continue
            viewers = int(self.viewer_counts(np.asarray([c]), t - 1.0)[0])
            live = self.live_channels(t)
            live = live[live != c]
            if viewers <= 0 or len(live) == 0:
                continue
            weight = self.viewer_counts(live, t).astype(np.float64) * np.where(
                self.acc_community[live] == self.acc_community[c], home_weight, 1.0)
            if weight.sum() <= 0:
                continue
            pick = uniform(self.seed, 41, c, k)[0] * weight.sum()
            target = int(live[min(len(live) - 1, int(np.searchsorted(np.cumsum(weight),
                                                                     pick, side="right")))])
            out.append((t, int(c), target, viewers))
        return sorted(out)

    def ends_between(self, t0: float, t1: float) -> list[tuple[float, int, int]]:
        """Session ends in ``(t0, t1]``: (time, channel, session index), in time order."""
        if t1 <= t0:
            return []
        ch = np.arange(self.n_channels)
        period, duty, phase = self.ch_period, self.ch_duty, self.ch_phase
        live_len = duty * period
        # Session k ends at k * period - phase + live_len.
        k_lo = np.floor((t0 + phase - live_len) / period).astype(np.int64) + 1
        k_hi = np.floor((t1 + phase - live_len) / period).astype(np.int64)
        out = [
            (float(k * period[c] - phase[c] + live_len[c]), int(c), int(k))
            for c in ch[(k_hi >= k_lo) & (duty < 1.0)].tolist()
            for k in range(int(k_lo[c]), int(k_hi[c]) + 1)
        ]
        return sorted(out)

    def end_moves(self, c: int, k: int, t: float) -> tuple[np.ndarray, np.ndarray]:
        """(viewers, destinations): whom the simulator sends on when session k of channel c
        ends at time t, and where. Movers are drawn among the chatters of the session's last
        minute (its own audience, not those sent to it); each goes to a channel live in the
        next minute, picked by audience with its community `follow_home_weight` times more."""
        with self._cache_lock:
            hit = self._moves.get((c, k))
        if hit is not None:
            return hit
        last, after = _minutes_around(t)
        viewers = self._audience(c, last * 60.0)
        movers = viewers[uniform(self.seed, 50, c, k, viewers) < self.follow_share]
        live = self.live_channels(after * 60.0)
        live = live[live != c]
        weight = self.viewer_counts(live, after * 60.0).astype(np.float64) * np.where(
            self.acc_community[live] == self.acc_community[c], self.follow_home_weight, 1.0)
        if len(movers) == 0 or weight.sum() <= 0:
            out = (np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64))
        else:
            pick = uniform(self.seed, 51, c, k, movers) * weight.sum()
            at = np.searchsorted(np.cumsum(weight), pick, side="right").clip(0, len(live) - 1)
            out = (movers.astype(np.int64), live[at].astype(np.int64))
        with self._cache_lock:
            if len(self._moves) > 20_000:
                self._moves.clear()
            self._moves[(c, k)] = out
        return out

    def _arrived(self, minute: int) -> dict[int, np.ndarray]:
        """Viewers sent to each channel by stream ends, present in minute `minute` (those
        sent at an end in ``(60 minute - stay_s, 60 minute]``)."""
        with self._cache_lock:
            hit = self._arrivals.get(minute)
        if hit is not None:
            return hit
        tm = minute * 60.0
        parts: dict[int, list[np.ndarray]] = {}
        for t, c, k in self.ends_between(tm - self.stay_s, tm):
            viewers, dest = self.end_moves(c, k, t)
            for b in np.unique(dest).tolist():
                parts.setdefault(b, []).append(viewers[dest == b])
        out = {b: np.unique(np.concatenate(v)) for b, v in parts.items()}
        with self._cache_lock:
            if len(self._arrivals) > 20_000:
                self._arrivals.clear()
            self._arrivals[minute] = out
        return out

    def audience_after_ends(self, t0: float, t1: float) -> list[tuple[float, str, str, str, bool]]:
        """Who went where at the stream ends in ``(t0, t1]``: (end time, channel that ended,
        live channel, viewer, moved by the simulator), one row per viewer (not bots) in the
        chat of the ended channel's last minute and each live channel whose chat they are in
        in the next minute, in time order. Minute-by-minute snapshots see exactly these."""
        out = []
        bot0 = self.n_channels + self.n_viewers
        for t, c, k in self.ends_between(t0, t1):
            last, after = _minutes_around(t)
            if self.session(np.asarray([c]), after * 60.0)[0][0]:
                continue  # back within the minute: no snapshot can see this end
            before = self.chatters(c, last * 60.0)
            before = before[before < bot0]
            movers, dest = self.end_moves(c, k, t)
            sent = set(zip(movers.tolist(), dest.tolist(), strict=True))
            for b in self.live_channels(after * 60.0).tolist():
                if b == c:
                    continue
                for v in np.intersect1d(before, self.chatters(b, after * 60.0)).tolist():
                    out.append((t, self.acc_login[c], self.acc_login[b], self.acc_login[v],
                                (v, b) in sent))
        return out

    def stream(self, c: int, t: float, viewers: int | None = None) -> dict | None:
        """The Helix stream object of channel ``c`` at sim time t, or None when offline."""
        v = None if viewers is None else np.asarray([viewers])
        return self.streams(np.asarray([c]), t, v)[0]

    def ranked_live(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """(channel indices, viewer counts) of live channels, most viewers first."""
        ch = self.live_channels(t)
        v = self.viewer_counts(ch, t)
        order = np.lexsort((ch, -v))
        return ch[order], v[order]

    # ----- chat ----------------------------------------------------------------------------
    def chatters(self, c: int, t: float) -> np.ndarray:
        """Account indices in channel c's chat at sim time t (viewers and bots; sorted).

        Presence changes at most once a simulated minute, so results are cached per minute.
        """
        key = (c, int(t // 60))
        with self._cache_lock:
            hit = self._cache.get(key)
        if hit is not None:
            return hit
        tm = key[1] * 60.0
        live, _, _ = self.session(np.asarray([c]), tm)
        if not live[0]:
            out = np.empty(0, dtype=np.int64)
        else:
            present = self._audience(c, tm)
            arrived = self._arrived(key[1]).get(c)
            if arrived is not None:
                present = np.union1d(present, arrived)
            bots = np.arange(len(self.bot_logins))
            in_room = uniform(self.seed, 23, bots, c) < self.bot_share
            bot_acc = self.n_channels + self.n_viewers + bots[in_room]
            out = np.sort(np.concatenate([present.astype(np.int64), bot_acc]))
        with self._cache_lock:
            if len(self._cache) > 20_000:  # bounded memory when time runs fast
                self._cache.clear()
            self._cache[key] = out
        return out

    def _audience(self, c: int, tm: float) -> np.ndarray:
        """Viewers of c's own audience pool in chat at minute start tm (no bots, none sent
        by other channels' ends); c is taken to be live."""
        lo, hi = self.pool_ptr[c], self.pool_ptr[c + 1]
        members = self.pool_acc[lo:hi]
        v = int(self.viewer_counts(np.asarray([c]), tm)[0])
        k = min(len(members), int(round(v * self.ch_chat_ratio[c])))
        if k <= 0:
            return np.empty(0, dtype=np.int64)
        offset = uniform(self.seed, 21, members) * self.churn_s
        epoch = np.floor((tm + offset) / self.churn_s).astype(np.int64)
        score = self.pool_loyalty[lo:hi] + 0.6 * uniform(self.seed, 22, c, members, epoch)
        top = np.argpartition(-score, k - 1)[:k] if k < len(members) else slice(None)
        return np.sort(members[top].astype(np.int64))

    def room_size(self, c: int, t: float) -> int:
        """Users in the room as Twitch counts them for the membership cap: the viewer count."""
        return int(self.viewer_counts(np.asarray([c]), t)[0])

    def message_senders(self, c: int, t: float, n: int, salt: int) -> list[int]:
        """Pick ``n`` message senders among the chatters, weighted by talkativeness."""
        present = self.chatters(c, t)
        if n <= 0 or len(present) == 0:
            return []
        w = self.acc_talk[present]
        total = float(w.sum())
        if total <= 0:
            return []
        r = uniform(self.seed, 31, c, salt, np.arange(n)) * total
        return [int(a) for a in present[np.searchsorted(np.cumsum(w), r, side="right")
                                        .clip(0, len(present) - 1)]]

    # ----- profiles ------------------------------------------------------------------------
    def user(self, acc: int) -> dict:
        """The Helix user object of an account."""
        login = self.acc_login[acc]
        is_channel = acc < self.n_channels
        pic = f"{int(_mix(np.asarray([acc + 1], dtype=np.uint64))[0]):016x}"
        return {
            "id": str(self.acc_id[acc]),
            "login": login,
            "display_name": self.acc_display[acc],
            "type": "",
            "broadcaster_type": self.acc_btype[acc],
            "description": self.ch_description[acc] if is_channel else "",
            "profile_image_url": f"https://static-cdn.jtvnw.net/jtv_user_pictures/{pic}"
            "-profile_image-300x300.png",
            "offline_image_url": "",
            "view_count": 0,
            "created_at": to_rfc3339(datetime.fromtimestamp(int(self.acc_created[acc]), UTC)),
        }

    def game(self, g: int) -> dict:
        """The Helix game object of catalogue entry g."""
        igdb = self.igdb_ids[g]
        return {
            "id": self.game_ids[g],
            "name": GAMES[g].name,
            "box_art_url": "https://static-cdn.jtvnw.net/ttv-boxart/"
            f"{self.game_ids[g]}-{{width}}x{{height}}.jpg",
            "igdb_id": "" if igdb is None else str(igdb),
        }

    # ----- ground truth --------------------------------------------------------------------
    def ground_truth(self) -> dict:
        """The hidden truth: communities of channels and viewers, bots, channels, games."""
        c = self.n_channels
        viewers = range(c, c + self.n_viewers)
        return {
            "seed": self.seed,
            "start": to_rfc3339(self.start),
            "communities": {self.acc_login[i]: int(self.acc_community[i]) for i in range(c)},
            "user_communities": {self.acc_login[i]: int(self.acc_community[i]) for i in viewers},
            "community_languages": list(self.community_language),
            "bots": list(self.bot_logins),
            "published_bots": list(self.bot_published),
            "channels": {
                self.acc_login[i]: {
                    "id": str(self.acc_id[i]),
                    "display_name": self.acc_display[i],
                    "community": int(self.acc_community[i]),
                    "language": self.ch_language[i],
                    "base_viewers": float(self.ch_base[i]),
                    "games": [GAMES[g].name for g in self.ch_games[i]],
                    "broadcaster_type": self.acc_btype[i],
                    "social_links": [s["url"] for s in self.ch_socials[i]],
                }
                for i in range(c)
            },
            "games": {
                g.name: {
                    "twitch_id": self.game_ids[i],
                    "igdb_id": self.igdb_ids[i],
                    "steam_appid": self.steam_appids[i],
                    "steam_name": g.steam_name,
                    "match": g.match,
                }
                for i, g in enumerate(GAMES)
            },
        }


def _minutes_around(t: float) -> tuple[int, int]:
    """The last minute a stream ending at t is live in, and the first minute after it (chat
    presence changes once a minute, at minute starts)."""
    after = math.ceil(t / 60.0)
    return after - 1, after


def _make_logins(rng: np.random.Generator, n: int) -> list[str]:
    syl = np.asarray(_SYLLABLES)
    words = np.asarray(_WORDS)
    kind = rng.random(n)
    n_syl = rng.integers(2, 5, size=n)
    parts = syl[rng.integers(0, len(syl), size=(n, 4))]
    w = words[rng.integers(0, len(words), size=(n, 2))]
    digits = rng.integers(0, 10_000, size=n)
    out: list[str] = []
    seen: set[str] = set()
    for i in range(n):
        stem = "".join(parts[i, : n_syl[i]])
        if kind[i] < 0.35:
            name = f"{stem}{digits[i] % 100}"
        elif kind[i] < 0.6:
            name = f"{w[i, 0]}{stem}"
        elif kind[i] < 0.75:
            name = f"{stem}_{w[i, 1]}"
        elif kind[i] < 0.9:
            name = f"{w[i, 0]}_{w[i, 1]}{digits[i]}"
        else:
            name = stem
        name = name[:25]
        while name in seen or len(name) < 4:
            name = f"{name}{digits[i] % 10}"[:25] if len(name) < 24 else f"{stem[:18]}{len(seen)}"
            digits[i] = digits[i] // 10 + 7
        seen.add(name)
        out.append(name)
    return out


def _display(rng: np.random.Generator, logins: list[str], langs: list[str]) -> list[str]:
    style = rng.random(len(logins))
    out = []
    for login, s, lang in zip(logins, style, langs, strict=True):
        if lang in ("ja", "ko") and s < 0.15:
            # Localised display names exist on Twitch; the login stays ASCII.
            out.append(("ゆき" if lang == "ja" else "하늘") + login[:3])
        elif s < 0.45:
            out.append(login)
        elif s < 0.8:
            out.append(login[:1].upper() + login[1:])
        else:
            out.append("".join(ch.upper() if i % 3 == 0 else ch for i, ch in enumerate(login)))
    return out


def make_population(
    *,
    channels: int = 200,
    users: int = 5000,
    seed: int = 0,
    communities: int | None = None,
    live_fraction: float = 0.85,
    home_share: float = 0.85,
    top_viewers: float = 6000.0,
    start: datetime | None = None,
) -> Population:
    """Generate a seeded world.

    Parameters
    ----------
    channels, users:
        Channels (broadcasters) and viewer accounts; bots come on top.
    seed:
        Everything random derives from it; the same arguments give the same world.
    communities:
        Hidden communities; default ``clip(channels // 40, 4, 8)``.
    live_fraction:
        Mean share of time a channel is live (1.0 = every channel always live).
    home_share:
        Share of a channel's audience drawn from its own community.
    top_viewers:
        Scale of the Zipf law of channel sizes (the top channel's typical viewers).
    start:
        Simulated time 0 (UTC); defaults to the real time.

    Examples
    --------
    >>> pop = make_population(channels=50, users=500, seed=1)
    >>> len(pop.channel_logins), pop.communities
    (50, 4)
    """
    if channels < 1 or users < 1:
        raise BadValue(f"channels and users must be >= 1, got {channels} and {users}")
    if channels > MAX_CHANNELS or users > MAX_USERS:
        raise BadValue(f"at most {MAX_CHANNELS:,} channels and {MAX_USERS:,} users (all of "
                       f"Twitch's live channels at peak), got {channels} and {users}")
    if not 0 < live_fraction <= 1:
        raise BadValue(f"live_fraction must be in (0, 1], got {live_fraction}")
    if not 0 <= home_share <= 1:
        raise BadValue(f"home_share must be in [0, 1], got {home_share}")
    rng = np.random.default_rng(seed)
    k_comm = communities if communities is not None else int(np.clip(channels // 40, 4, 8))
    if k_comm < 1:
        raise BadValue(f"communities must be >= 1, got {k_comm}")
    start = (start or datetime.now(UTC).replace(microsecond=0)).astimezone(UTC)

    # The helpers draw from `rng` in this order; changing the order changes every world.
    comm_lang, comm_games, comm_weight = _communities(rng, k_comm)
    accounts = _accounts(rng, channels, users, comm_lang, comm_weight)
    chans = _channels(rng, channels, users, accounts, comm_lang, comm_games,
                      live_fraction=live_fraction, top_viewers=top_viewers)  # fmt: skip
    pools = _audience_pools(rng, channels, users, k_comm, accounts["acc_community"],
                            chans["ch_base"], chans["ch_chat_ratio"], home_share)  # fmt: skip
    bots = _bots(rng, accounts["acc_login"][channels + users:])

    pop = Population(
        seed=seed,
        start=start,
        n_channels=channels,
        n_viewers=users,
        communities=k_comm,
        community_language=comm_lang,
        community_games=[[int(g) for g in gs] for gs in comm_games],
        **accounts,
        **chans,
        **pools,
        **bots,
    )
    pop.game_ids = [g.twitch_id or str(10_000 + i * 48_611) for i, g in enumerate(GAMES)]
    pop.igdb_ids = [1_000 + i * 37 if g.is_game else None for i, g in enumerate(GAMES)]
    pop.steam_appids = [200_000 + i * 10_470 if g.steam_name else None
                        for i, g in enumerate(GAMES)]
    pop._login_index = {login.lower(): i for i, login in enumerate(pop.acc_login)}
    pop._id_index = {str(x): i for i, x in enumerate(pop.acc_id)}
    logger.debug("population: %d channels, %d viewers, %d pool entries", channels, users,
                 len(pop.pool_acc))
    return pop


def _communities(
    rng: np.random.Generator, k_comm: int
) -> tuple[list[str], list[list[int]], np.ndarray]:
    """Each community's main language (English twice as likely), its few games, its weight."""
    lang_pool = ["en", "en", *_LANGS[1:]]
    comm_lang = [lang_pool[i] for i in rng.permutation(len(lang_pool))[:k_comm]]
    game_idx = [i for i, g in enumerate(GAMES) if g.is_game]
    comm_games = [list(rng.choice(game_idx, size=5, replace=False)) for _ in range(k_comm)]
    comm_weight = rng.dirichlet(np.full(k_comm, 4.0))
    return comm_lang, comm_games, comm_weight


def _accounts(
    rng: np.random.Generator,
    channels: int,
    users: int,
    comm_lang: list[str],
    comm_weight: np.ndarray,
) -> dict[str, Any]:
    """The `acc_*`, `bot_logins` and `bot_talks` fields: channels, then viewers, then bots."""
    bot_names = list(_SERVICE_BOTS + _VIEWER_BOTS + _UNLISTED_BOTS)
    n_bots = len(bot_names)
    n_acc = channels + users + n_bots
    k_comm = len(comm_lang)
    logins = _make_logins(rng, channels + users)
    taken = set(logins)
    logins += [b if b not in taken else f"{b}_x" for b in bot_names]
    comm = np.concatenate([
        rng.choice(k_comm, size=channels, p=comm_weight),
        rng.choice(k_comm, size=users, p=comm_weight),
        np.full(n_bots, -1),
    ]).astype(np.int64)
    langs = [comm_lang[k] if k >= 0 else "en" for k in comm]
    display = _display(rng, logins, langs)
    ids = 20_000_000 + np.cumsum(rng.integers(1, 40_000, size=n_acc))
    ids = ids[rng.permutation(n_acc)]
    created = rng.integers(1_300_000_000, 1_730_000_000, size=n_acc)
    talk = rng.lognormal(0.0, 1.0, size=n_acc) * (rng.random(n_acc) > 0.3)
    talk[: channels] = 0.0  # broadcasters are not modelled as viewers elsewhere
    bot_talks = np.array([b in _SERVICE_BOTS for b in bot_names])
    talk[channels + users:] = np.where(bot_talks, 0.5, 0.0)
    return {
        "acc_id": ids,
        "acc_login": logins,
        "acc_display": display,
        "acc_created": created,
        "acc_community": comm,
        "acc_talk": talk,
        "bot_logins": logins[channels + users:],
        "bot_talks": bot_talks,
    }


def _channels(
    rng: np.random.Generator,
    channels: int,
    users: int,
    accounts: dict[str, Any],
    comm_lang: list[str],
    comm_games: list[list[int]],
    *,
    live_fraction: float,
    top_viewers: float,
) -> dict[str, Any]:
    """The `ch_*` fields and `acc_btype`: language (mostly the community's), Zipf sizes,
    schedule, games, tags, profile description and social links.

    Per-channel draws are made as whole arrays: a Python loop of small rng calls would cost
    seconds at 10,000 channels.
    """
    comm, logins, ids = accounts["acc_community"], accounts["acc_login"], accounts["acc_id"]
    own_lang = rng.random(channels) < 0.9
    any_lang = rng.integers(0, len(_LANGS), size=channels)
    ch_lang = [comm_lang[comm[c]] if own_lang[c] else _LANGS[any_lang[c]]
               for c in range(channels)]
    ranks = rng.permutation(channels) + 1
    base = top_viewers * ranks ** -1.1 * rng.lognormal(0.0, 0.25, size=channels) + rng.random(
        channels) * 2
    chat_ratio = rng.uniform(0.45, 0.9, size=channels)
    session_len = rng.uniform(2 * 3600, 8 * 3600, size=channels)
    duty = np.clip(live_fraction + rng.normal(0, 0.08, size=channels), 0.05, 1.0)
    if live_fraction >= 1.0:
        duty[:] = 1.0
    period = session_len / duty
    # Start most channels mid-session so the world is busy at time 0.
    phase = rng.uniform(0.0, 1.0, size=channels) * period
    daily_phase = rng.uniform(0, 2 * np.pi, size=channels)
    just_chatting = 0
    plays_chatting = rng.random(channels) < 0.25
    n_games = rng.integers(1, 4, size=channels)
    game_pick = np.argsort(rng.random((channels, 5)), axis=1)
    comm_games_arr = np.asarray(comm_games)
    chat_games = [
        tuple(([just_chatting] if plays_chatting[c] else [])
              + comm_games_arr[comm[c], game_pick[c, : n_games[c]]].tolist())
        for c in range(channels)
    ]
    btype = ["partner" if r < 50 else "affiliate" if r < channels * 0.6 else "" for r in ranks]
    btype += ["affiliate" if r < 0.05 else "" for r in rng.random(users)]
    btype += [""] * len(accounts["bot_logins"])
    mature = rng.random(channels) < 0.2
    n_tags = rng.integers(0, 3, size=channels)
    tag_pick = np.argsort(rng.random((channels, len(_EXTRA_TAGS))), axis=1)
    n_links = np.where(rng.random(channels) < 0.12, 0, rng.integers(1, 5, size=channels))
    link_pick = np.argsort(rng.random((channels, len(_PLATFORMS))), axis=1)
    alphabet = np.asarray(list("abcdefghjkmnpqrstuvwxyz23456789"))
    codes = ["".join(row) for row in alphabet[rng.integers(0, len(alphabet), (channels, 7))]]
    mention = rng.random(channels) < 0.35
    tags = []
    descriptions = []
    socials: list[list[dict[str, str]]] = []
    for c in range(channels):
        tags.append([_LANG_TAG[ch_lang[c]], *(_EXTRA_TAGS[i] for i in tag_pick[c, : n_tags[c]])])
        links = []
        for p in sorted(link_pick[c, : n_links[c]].tolist()):
            name, title, url = _PLATFORMS[p]
            links.append({"id": f"{ids[c]:x}-{name}", "name": name, "title": title,
                          "url": url.format(login=logins[c], code=codes[c])})
        socials.append(links)
        text = f" Follow me: {links[0]['url']}" if links and mention[c] else ""
        descriptions.append(f"{GAMES[chat_games[c][0]].name} streams, good vibes.{text}")
    return {
        "acc_btype": btype,
        "ch_language": ch_lang,
        "ch_base": base,
        "ch_chat_ratio": chat_ratio,
        "ch_period": period,
        "ch_duty": duty,
        "ch_phase": phase,
        "ch_daily_phase": daily_phase,
        "ch_games": chat_games,
        "ch_mature": mature,
        "ch_tags": tags,
        "ch_description": descriptions + [""] * (len(logins) - channels),
        "ch_socials": socials,
    }


def _audience_pools(
    rng: np.random.Generator,
    channels: int,
    users: int,
    k_comm: int,
    comm: np.ndarray,
    base: np.ndarray,
    chat_ratio: np.ndarray,
    home_share: float,
) -> dict[str, np.ndarray]:
    """The `pool_*` fields: each channel's audience pool, as CSR over channels.

    Drawn in one vectorised pass: each sample is home or roaming, then a viewer picked by
    activity weight within the community (or the whole site).
    """
    n_acc = len(comm)
    viewer_comm = comm[channels: channels + users]
    order = np.argsort(viewer_comm, kind="stable")
    weight = rng.lognormal(0.0, 0.8, size=users)[order]
    cum = np.cumsum(weight)
    bounds = np.searchsorted(viewer_comm[order], np.arange(k_comm + 1))
    lo_w = np.concatenate([[0.0], cum])[bounds[:-1]]
    hi_w = np.concatenate([[0.0], cum])[bounds[1:]]
    peak_chat = base * 1.25 * chat_ratio
    comm_size = np.bincount(viewer_comm, minlength=k_comm)
    cap = np.maximum(1, (0.6 * comm_size[comm[:channels]]).astype(np.int64))
    pool_n = np.minimum(np.ceil(peak_chat * 1.5).astype(np.int64) + 2, cap)
    n_draw = np.ceil(pool_n * 1.3).astype(np.int64) + 1
    owner = np.repeat(np.arange(channels), n_draw)
    home = rng.random(len(owner)) < home_share
    k_of = comm[owner]
    r = rng.random(len(owner))
    target = np.where(home, lo_w[k_of] + r * (hi_w[k_of] - lo_w[k_of]), r * cum[-1])
    picked = order[np.searchsorted(cum, target, side="right").clip(0, users - 1)] + channels
    key = np.unique(owner.astype(np.int64) * n_acc + picked)
    p_owner, p_acc = key // n_acc, key % n_acc
    # Trim each pool to its size, keeping a random subset.
    rank_in = np.empty(len(key), dtype=np.int64)
    starts = np.searchsorted(p_owner, np.arange(channels))
    shuffle = rng.random(len(key))
    o2 = np.lexsort((shuffle, p_owner))
    rank_in[o2] = np.arange(len(key)) - starts[p_owner[o2]]
    keep = rank_in < pool_n[p_owner]
    p_owner, p_acc = p_owner[keep], p_acc[keep]
    pool_ptr = np.concatenate([[0], np.cumsum(np.bincount(p_owner, minlength=channels))])
    loyalty = rng.random(len(p_acc)).astype(np.float64)
    return {"pool_ptr": pool_ptr, "pool_acc": p_acc, "pool_loyalty": loyalty}


def _bots(rng: np.random.Generator, bot_logins: list[str]) -> dict[str, Any]:
    """`bot_share` (service bots in a fair share of channels, viewer bots in most) and the
    published bot list (the listed bots' logins and 150 more that never show up)."""
    bot_share = np.array([
        rng.uniform(0.2, 0.45) if b in _SERVICE_BOTS else rng.uniform(0.55, 0.95)
        for b in _SERVICE_BOTS + _VIEWER_BOTS + _UNLISTED_BOTS
    ])
    extra_published = [f"{w}{s}bot{i}" for i, (w, s) in enumerate(zip(
        rng.choice(_WORDS, size=150), rng.choice(_SYLLABLES, size=150), strict=True))]
    published = bot_logins[: len(_SERVICE_BOTS) + len(_VIEWER_BOTS)]
    return {"bot_share": bot_share, "bot_published": published + extra_published}


def igdb_record(pop: Population, g: int) -> dict:
    """The IGDB game of catalogue entry g with every reference expanded."""
    game: Game = GAMES[g]
    igdb = pop.igdb_ids[g]
    assert igdb is not None
    release = (int(datetime.fromisoformat(game.release).replace(tzinfo=UTC).timestamp())
               if game.release else None)
    companies = []
    names = list(dict.fromkeys(game.developers + game.publishers))
    for j, name in enumerate(names):
        cid = 500 + sum(map(ord, name)) % 9000
        companies.append({
            "id": igdb * 10 + j,
            "company": {"id": cid, "name": name},
            "developer": name in game.developers,
            "publisher": name in game.publishers,
        })
    rec: dict = {
        "id": igdb,
        "name": game.name,
        "slug": game.name.lower().replace(" ", "-").replace(":", "").replace("'", ""),
        "genres": [{"id": IGDB_GENRES[x], "name": x} for x in game.genres],
        "themes": [{"id": IGDB_THEMES[x], "name": x} for x in game.themes],
        "involved_companies": companies,
    }
    if release is not None:
        rec["first_release_date"] = release
    appid = pop.steam_appids[g]
    if appid is not None:
        # IGDB links stores through external_games; category 1 is Steam.
        rec["external_games"] = [{"id": igdb * 10 + 7, "category": 1, "uid": str(appid),
                                  "name": game.steam_name}]
    return rec
