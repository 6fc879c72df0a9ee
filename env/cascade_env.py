"""One query per episode: call models one stage at a time, read their answers, stop with one of them."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from banditroute.env.answers import normalise_choice
from banditroute.env.routing_env import validated_tables

#: cascade features after the query's own: per model called, agrees-with-plurality, missing, log length (4k);
#: pairwise agreement (k(k-1)/2); top-1 and top-2 vote shares, distinct answers, calls so far, cost so far (5)
_TAIL = 5
#: the most candidate models one env calls (its per-called-set tables grow as 2^k)
MAX_CANDIDATES = 6
#: the stop actions: return any called model's answer (``each``), or only the dearest called model's
#: (``compact``); both also have "return the plurality"
RETURNS = ("each", "compact")


def choice_agreement(answers: Any) -> np.ndarray:
    """``(n, k, k)`` bool from ``answers: (n, k)``: equal after :func:`normalise_choice`; a missing answer agrees
    with nothing (its diagonal entry is False)."""
    norm = np.vectorize(normalise_choice, otypes=[object])(np.asarray(answers, dtype=object))
    if norm.ndim != 2:
        raise ValueError(f"answers must be (n, k), got shape {norm.shape}")
    present = norm != ""
    return np.asarray((norm[:, :, None] == norm[:, None, :]) & present[:, :, None] & present[:, None, :])


class CascadeRoutingEnv(gym.Env[np.ndarray, np.int64]):
    """
    ## Description
    A cascade over real performance records that carry each model's answer. An episode is one query drawn
    (with replacement, by the env's seeded generator) from the given split. Each step either calls a stage
    (one candidate model, or a group of them in parallel) and shows what came back, or stops and returns one
    of the answers seen. Cheap models first, escalate when their answers disagree: the agent learns when.

    ## Action Space
    ``Discrete(G + k + 1)`` for ``G`` call groups and ``k`` candidate models (``returns="each"``, default):

    - ``0 .. G-1``: call group ``g`` (its members not called yet); valid while one of them is uncalled;
    - ``G + j``: stop and return model ``j``'s answer; valid once ``j`` was called;
    - ``G + k`` (the last): stop and return the plurality answer of the called models (ties: the dearest model
      among them, by mean cost); valid once anything was called.

    ``returns="compact"``: ``Discrete(G + 2)``, the one stop action ``G`` returns the dearest called model's
    answer (the last stage's, in a cheapest-first cascade), then the plurality.

    ``action_masks()`` gives the valid actions (the sb3-contrib convention, for ``MaskablePPO``). An invalid
    action is not an error and not penalised: it is replaced by the **default**, "return the plurality" once
    something was called, else "call the first group"; ``info["invalid_action"]`` says so and
    ``info["action_taken"]`` is what ran.

    ## Observation Space
    ``Box(-1, 1, (d + 4k + k(k-1)/2 + 5,), float32)``: the query's ``d`` features, then per candidate
    ``called``, ``agrees with the plurality``, ``answer missing`` (called and gave none) and
    ``log1p(answer length) / 8`` (0 if not called), then for every pair ``a < b`` whether both were called
    and agree, then the top-1 and top-2 vote shares among the called models, the number of distinct answers
    / k, calls so far / k and ``1 - exp(-cost so far / cost_scale)``.

    ## Rewards
    A call pays ``-lam * cost / cost_scale`` for the models it calls (dense); the stop step pays the score of
    the returned answer: the recorded score of the model whose answer is returned (for the plurality, the
    dearest called model that gave it; records may key gold answers per model, e.g. a corrected key). An
    episode's return is ``score - lam * total cost / cost_scale``.

    ## Episode End
    Terminated when an answer is returned (at most ``G + 1`` steps). ``info`` on every step: ``query_index``,
    ``action_taken``, ``invalid_action``, ``cost`` (USD paid so far), ``stages`` (call steps so far); on the stop
    step also ``quality`` (the score), ``returned_model`` and ``calls``. (``env.called`` is the called set.)

    ## Arguments
    - ``quality``, ``cost``: ``(n, k)`` scores and USD of the candidates (cheapest first is the convention);
      ``features``: ``(n, d)`` in [-1, 1].
    - ``answers``: ``(n, k)`` short answers (choice letters, numbers; ``""``/None = no answer), compared after
      normalising; or ``agreement``: ``(n, k, k)`` bool, for free-text answers compared another way.
    - ``lengths``: ``(n, k)`` answer lengths in characters (e.g. ``output_chars``); default the answers'.
    - ``lam``: price of ``cost_scale`` USD in quality units (default 0.04); ``cost_scale``: USD, default the
      dearest candidate's mean cost.
    - ``models``: the candidates' names (at most :data:`MAX_CANDIDATES`); ``groups``: the call stages, lists
      of candidate indices or names (default: each candidate alone); ``returns``: ``"each"`` or ``"compact"``.
    - ``query_index`` in ``reset(options=...)`` chooses the episode's query (evaluation).

    ## Version History
    - v0: initial version.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(
        self,
        quality: np.ndarray,
        cost: np.ndarray,
        features: np.ndarray,
        answers: Any = None,
        lengths: Any = None,
        lam: float = 0.04,
        cost_scale: float | None = None,
        models: Sequence[str] | None = None,
        groups: Sequence[Sequence[int | str]] | None = None,
        agreement: Any = None,
        returns: str = "each",
        render_mode: str | None = None,
    ) -> None:
        t = validated_tables(quality, cost, features, lam, cost_scale, models, render_mode)
        self.quality, self.cost, self.features = t.quality, t.cost, t.features
        self.lam, self.cost_scale, self.models = t.lam, t.cost_scale, t.models
        n, k = self.quality.shape
        if k > MAX_CANDIDATES:
            raise ValueError(f"a cascade env takes at most {MAX_CANDIDATES} candidate models, got {k}; choose fewer")
        if returns not in RETURNS:
            raise ValueError(f"returns must be one of {RETURNS}, got {returns!r}")
        self.returns = returns
        self.agreement = self._agreement(answers, agreement, n, k)
        if lengths is None:
            if answers is None:
                raise ValueError("lengths are needed when only agreement is given (answers carry their own)")
            lengths = np.vectorize(lambda a: len(normalise_choice(a)), otypes=[float])(
                np.asarray(answers, dtype=object)
            )
        lengths = np.asarray(lengths, dtype=np.float64)
        if lengths.shape != (n, k) or not np.isfinite(lengths).all() or (lengths < 0).any():
            raise ValueError(f"lengths must be (n, k) = {(n, k)} finite and >= 0, got shape {lengths.shape}")
        self.length_feature = np.clip(np.log1p(lengths) / 8.0, 0.0, 1.0).astype(np.float32)
        self.groups = self._groups(groups, k)
        self.dearness = np.argsort(np.argsort(self.cost.mean(axis=0), kind="stable"), kind="stable")  # rank
        self.pairs = np.array([(a, b) for a in range(k) for b in range(a + 1, k)], dtype=np.int64).reshape(-1, 2)
        self._group_sets = [int(sum(1 << int(j) for j in g)) for g in self.groups]
        self._members = [np.flatnonzero([(b >> j) & 1 for j in range(k)]) for b in range(1 << k)]  # bitmask -> idx
        n_stops = k if returns == "each" else 1
        self.n_actions = len(self.groups) + n_stops + 1
        self.action_space = spaces.Discrete(self.n_actions)
        tail = 4 * k + len(self.pairs) + _TAIL
        self.observation_space = spaces.Box(-1.0, 1.0, shape=(self.features.shape[1] + tail,), dtype=np.float32)
        self._empty_tail = np.zeros(tail, dtype=np.float32)
        self._tables: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._masks: dict[int, np.ndarray] = {}
        self._i = 0
        self._set = 0  # the called models, a bitmask
        self._spent = 0.0
        self._stages = 0

    def spawn(self) -> CascadeRoutingEnv:
        """A new env on the same (read-only) tables, with its own episode state and generator: for vectorised
        training without copying the records."""
        twin = copy.copy(self)
        twin._set, twin._spent, twin._stages, twin._i = 0, 0.0, 0, 0
        twin._np_random = None
        return twin

    @staticmethod
    def _agreement(answers: Any, agreement: Any, n: int, k: int) -> np.ndarray:
        if (answers is None) == (agreement is None):
            raise ValueError("give exactly one of answers (n, k) or agreement (n, k, k)")
        if agreement is None:
            if np.shape(answers) != (n, k):
                raise ValueError(f"answers must be (n, k) = {(n, k)}, got shape {np.shape(answers)}")
            return choice_agreement(answers)
        a = np.asarray(agreement, dtype=bool)
        if a.shape != (n, k, k):
            raise ValueError(f"agreement must be (n, k, k) = {(n, k, k)}, got shape {a.shape}")
        return a

    def _groups(self, groups: Sequence[Sequence[int | str]] | None, k: int) -> tuple[np.ndarray, ...]:
        if groups is None:
            return tuple(np.array([j]) for j in range(k))
        out = []
        for g in groups:
            idx = []
            for m in g:
                if isinstance(m, str):
                    if m not in self.models:
                        raise ValueError(f"groups: unknown model {m!r}; the candidates are {list(self.models)}")
                    idx.append(self.models.index(m))
                elif isinstance(m, int | np.integer) and 0 <= int(m) < k:
                    idx.append(int(m))
                else:
                    raise ValueError(f"groups: {m!r} is neither a candidate name nor an index in [0, {k})")
            if not idx:
                raise ValueError("groups: every group needs at least one model")
            out.append(np.array(sorted(set(idx)), dtype=np.int64))
        if len(out) == 0 or set(np.concatenate(out).tolist()) != set(range(k)):
            raise ValueError(f"groups must cover every one of the {k} candidates, got {groups}")
        return tuple(out)

    # -- the state's derived quantities: one table per called set, for all queries at once ----------------------

    def _table(self, called_set: int) -> tuple[np.ndarray, np.ndarray]:
        """``(tail: (n, T) float32, plurality: (n,) int64)`` of the called set ``called_set`` (a bitmask),
        computed for every query on first use: a step is then two lookups, not dozens of small array ops."""
        cached = self._tables.get(called_set)
        if cached is not None:
            return cached
        A, (n, k) = self.agreement, self.quality.shape
        c = np.array([(called_set >> j) & 1 for j in range(k)], dtype=bool)
        rows = np.arange(n)
        present = np.diagonal(A, axis1=1, axis2=2) & c  # (n, k)
        votes = np.where(c, (A & c).sum(axis=2), 0)  # (n, k): called models agreeing with each answer
        n_called = max(int(c.sum()), 1)
        if c.any():  # most votes, then the dearest; a model not called never wins
            plurality = np.argmax(np.where(c, votes * (k + 1) + self.dearness, -1), axis=1)
        else:
            plurality = np.full(n, -1, dtype=np.int64)
        agree_p = A[rows, :, np.maximum(plurality, 0)] & c
        top1 = votes[rows, np.maximum(plurality, 0)] / n_called * c.any()
        top2 = np.where(present & ~agree_p, votes, 0).max(axis=1) / n_called
        earlier = np.zeros((n, k), dtype=bool)  # an answer that an earlier called answer agrees with is not new
        for j in range(1, k):
            earlier[:, j] = (A[:, j, :j] & present[:, :j]).any(axis=1)
        distinct = (present & ~earlier).sum(axis=1)
        pa, pb = self.pairs[:, 0], self.pairs[:, 1]
        spent = (self.cost * c).sum(axis=1)
        parts = [
            np.broadcast_to(c, (n, k)),
            agree_p,
            c & ~np.diagonal(A, axis1=1, axis2=2),
            self.length_feature * c,
            A[:, pa, pb] & c[pa] & c[pb],
            np.stack([top1, top2, distinct / k, np.full(n, c.sum() / k), 1.0 - np.exp(-spent / self.cost_scale)], 1),
        ]
        tail = np.concatenate([np.asarray(p, dtype=np.float32) for p in parts], axis=1)
        self._tables[called_set] = (tail, plurality.astype(np.int64))
        return self._tables[called_set]

    @property
    def called(self) -> np.ndarray:
        """``(k,)`` bool: the models called so far in this episode."""
        return np.array([(self._set >> j) & 1 for j in range(len(self.models))], dtype=bool)

    def plurality(self) -> int:
        """The called model whose answer has the most votes among the called (ties, or no answer at all: the
        dearest of them)."""
        if self._set == 0:
            raise ValueError("no model was called: there is no plurality yet")
        return int(self._table(self._set)[1][self._i])

    def action_masks(self) -> np.ndarray:
        """``(A,)`` bool: the valid actions now (the sb3-contrib ``MaskablePPO`` convention)."""
        return self._mask().copy()

    def _mask(self) -> np.ndarray:
        mask = self._masks.get(self._set)
        if mask is None:
            c = self.called
            calls = [bool((g & ~self._set) != 0) for g in self._group_sets]
            stops = list(c) if self.returns == "each" else [bool(c.any())]
            mask = self._masks[self._set] = np.array([*calls, *stops, bool(c.any())], dtype=bool)
        return mask

    def default_action(self) -> int:
        """What an invalid action is replaced by: return the plurality once something was called, else call
        the first group that can still be called."""
        if self._set:
            return self.n_actions - 1
        return int(np.flatnonzero(self.action_masks()[: len(self.groups)])[0])

    def _obs(self) -> np.ndarray:
        if self._set == 0:
            return np.concatenate([self.features[self._i], self._empty_tail])
        return np.concatenate([self.features[self._i], self._table(self._set)[0][self._i]])

    # -- the Gymnasium API --------------------------------------------------------------------------------------------

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        n = self.quality.shape[0]
        if options is not None and options.get("query_index") is not None:
            i = int(options["query_index"])
            if not 0 <= i < n:
                raise ValueError(f"options['query_index'] must be in [0, {n}), got {i}")
            self._i = i
        else:
            self._i = int(self.np_random.integers(n))
        self._set, self._spent, self._stages = 0, 0.0, 0
        return self._obs(), {"query_index": self._i}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        a = int(action)
        if not 0 <= a < self.n_actions or a != action:
            raise ValueError(f"action {action!r} is not in {self.action_space}")
        invalid = not self._mask()[a]
        if invalid:
            a = self.default_action()
        i, n_groups = self._i, len(self.groups)
        info: dict[str, Any] = {"query_index": i, "action_taken": a, "invalid_action": invalid}
        if a < n_groups:
            new = self._group_sets[a] & ~self._set
            paid = float(self.cost[i, self._members[new]].sum())
            self._set |= self._group_sets[a]
            self._spent += paid
            self._stages += 1
            reward, terminated = -self.lam * paid / self.cost_scale, False
        else:
            if a == self.n_actions - 1:
                j = self.plurality()
            elif self.returns == "each":
                j = a - n_groups
            else:  # compact: the dearest model called
                j = int(self._members[self._set][np.argmax(self.dearness[self._members[self._set]])])
            reward, terminated = float(self.quality[i, j]), True
            info.update(quality=reward, returned_model=j, calls=int(self._set.bit_count()))
        info.update(cost=self._spent, stages=self._stages)
        return self._obs(), reward, terminated, False, info
