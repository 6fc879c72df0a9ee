"""Every Redis key and Lua script of the service, in one place (the store modules use them).

Keys of one policy share the hash tag ``{policy-id}``, so they sit in one slot of a Redis Cluster and every
multi-key script or transaction below touches one slot:

| key | type | what |
|---|---|---|
| ``br:policies`` | set | ids of all policies |
| ``br:{pid}:meta`` | hash | kind, registry name, dim, created_at, featurizer sha, budget pacing, ``gen`` (generation) |
| ``br:{pid}:gen`` | string | generation counter: bumped by every create/replace, kept on delete (never reused) |
| ``br:{pid}:state`` | hash | the snapshot: ``meta`` (JSON), ``arr:NAME`` (npy, sufficient statistics only),
  ``pos`` (last log entry it covers), ``version``, ``applied``/``skipped``/``dead`` counts, ``pacer_lam``,
  ``gen``, ``at``, ``trimmed`` (log entries below it are gone) |
| ``br:{pid}:featurizer`` | hash | ``spec`` and ``arr:NAME`` of the fitted featurizer |
| ``br:{pid}:dec:{did}`` | hash | one decision (features, candidates, pmf, choice, propensity, gen, time, scores, cost,
  latency), with a TTL |
| ``br:{pid}:fb:{did}:{source}`` | string | "this (decision, source) was accepted": the idempotency mark |
| ``br:{pid}:feedback`` | stream | the log: accepted feedback (decision id, model, score, cost, weight) and admin ops
  (add/remove a model), applied in order by the learner and by every worker |
| ``br:{pid}:progress`` | hash | the learner's position in the log and its absolute counts (``pos``, ``applied``,
  ``skipped``, ``dead``, ``version``, ``at``) |
| ``br:{pid}:dead`` | stream | dead letters: events whose update raised, with the error (capped) |
| ``br:{pid}:decisions`` | stream | ids of logged decisions, for off-policy evaluation (trimmed by age) |
| ``br:{pid}:counters`` | hash | accepted feedback count |
| ``br:{pid}:expstats`` | hash | per experiment arm: decisions, feedback count, score and cost sums |
| ``br:{pid}:learner`` | string | learner lease: the one process that snapshots this policy |
| ``br:experiments`` | set | ids of all experiments |
| ``br:exp:{eid}`` | hash | experiment definition (JSON) and status |

The protocol (the recovery argument is in docs/design-notes.md): ``FEEDBACK_SCRIPT`` checks the decision exists
and belongs to the policy's current generation, sets the (decision, source) mark with NX and appends the event
to the log, atomically: accepted means "in the log". The policy's state is a function of the log: the snapshot
at ``pos`` plus the entries after ``pos`` applied in order. The lease holder keeps that state in memory, publishes
its progress (``PROGRESS_SCRIPT``) and writes a snapshot with its position (``SNAPSHOT_SCRIPT``, one atomic
step, only forward, only under its lease and generation), trimming the log only below the previous snapshot.
"""

from __future__ import annotations

POLICIES = "br:policies"
EXPERIMENTS = "br:experiments"


def k_meta(pid: str) -> str:
    return f"br:{{{pid}}}:meta"


def k_state(pid: str) -> str:
    return f"br:{{{pid}}}:state"


def k_gen(pid: str) -> str:
    return f"br:{{{pid}}}:gen"


def k_progress(pid: str) -> str:
    return f"br:{{{pid}}}:progress"


def k_dead(pid: str) -> str:
    return f"br:{{{pid}}}:dead"


def k_featurizer(pid: str) -> str:
    return f"br:{{{pid}}}:featurizer"


def k_decision(pid: str, did: str) -> str:
    return f"br:{{{pid}}}:dec:{did}"


def k_mark(pid: str, did: str, source: str) -> str:
    return f"br:{{{pid}}}:fb:{did}:{source}"


def k_feedback(pid: str) -> str:
    return f"br:{{{pid}}}:feedback"


def k_decision_log(pid: str) -> str:
    return f"br:{{{pid}}}:decisions"


def k_counters(pid: str) -> str:
    return f"br:{{{pid}}}:counters"


def k_expstats(pid: str) -> str:
    return f"br:{{{pid}}}:expstats"


def k_lock(pid: str) -> str:
    return f"br:{{{pid}}}:learner"


def k_experiment(eid: str) -> str:
    return f"br:exp:{{{eid}}}"


# KEYS[1] decision, KEYS[2] mark, KEYS[3] log, KEYS[4] counters, KEYS[5] expstats, KEYS[6] meta
# ARGV[1] source, ARGV[2] score, ARGV[3] cost ('' = the cost the gateway measured for the decision, else its
# cost estimate), ARGV[4] weight,
# ARGV[5] mark ttl (s), ARGV[6] latency ms ('' = none)
# Returns {-1} unknown/expired decision, {-4} policy deleted, {-3, decision gen, current gen} a decision of a
# replaced generation, {-5, state} a cascade that has not returned its answer, {-2} duplicate (decision, source),
# {1, stream id, model} accepted. The event names the decision instead of copying its features: the learner and
# the workers read them from the decision hash. A cascade's record (steps, answers, costs) is copied into the
# event, so the learner applies exactly what the request saw (service.cascade_record).
FEEDBACK_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end
local d = redis.call('HMGET', KEYS[1], 'model', 'cost_estimate', 'experiment', 'arm', 'did', 'gen', 'gw_cost_usd',
                     'cascade_state', 'cascade')
local g = redis.call('HGET', KEYS[6], 'gen')
if not g then return {-4} end
if d[6] ~= g then return {-3, d[6] or '', g} end
if d[8] and d[8] ~= 'done' then return {-5, d[8]} end
if not redis.call('SET', KEYS[2], '1', 'NX', 'EX', tonumber(ARGV[5])) then return {-2} end
local cost = ARGV[3]
if cost == '' then cost = d[7] or d[2] end
local id
if d[9] then
  id = redis.call('XADD', KEYS[3], '*', 'did', d[5], 'model', d[1], 'score', ARGV[2], 'cost', cost,
                  'weight', ARGV[4], 'source', ARGV[1], 'cascade', d[9])
else
  id = redis.call('XADD', KEYS[3], '*', 'did', d[5], 'model', d[1], 'score', ARGV[2], 'cost', cost,
                  'weight', ARGV[4], 'source', ARGV[1])
end
redis.call('HINCRBY', KEYS[4], 'accepted', 1)
redis.call('HSET', KEYS[1], 'score:' .. ARGV[1], ARGV[2], 'cost_observed', cost)
if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'latency_ms', ARGV[6]) end
if d[3] and d[3] ~= '' then
  local p = d[3] .. '|' .. d[4] .. '|'
  local s = tonumber(ARGV[2])
  local c = tonumber(cost)
  redis.call('HINCRBY', KEYS[5], p .. 'fb_n', 1)
  redis.call('HINCRBYFLOAT', KEYS[5], p .. 'fb_sum', s)
  redis.call('HINCRBYFLOAT', KEYS[5], p .. 'fb_sumsq', s * s)
  redis.call('HINCRBYFLOAT', KEYS[5], p .. 'cost_sum', c)
  redis.call('HINCRBYFLOAT', KEYS[5], p .. 'cost_sumsq', c * c)
end
return {1, id, d[1]}
"""

# KEYS[1] meta, KEYS[2] log; ARGV[1] generation, ARGV[2] op (add_model | remove_model), ARGV[3] model.
# Returns the entry id, or 0 when the policy is gone or was replaced. Admin changes are log entries, so every
# reader applies them at the same place among the feedback events.
APPEND_OP_SCRIPT = """
if redis.call('HGET', KEYS[1], 'gen') ~= ARGV[1] then return 0 end
return redis.call('XADD', KEYS[2], '*', 'op', ARGV[2], 'model', ARGV[3])
"""

_LUA_BEFORE = """
local function before(a, b)
  local am, as = string.match(a, '(%d+)-(%d+)')
  local bm, bs = string.match(b, '(%d+)-(%d+)')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am < bm or (am == bm and as < bs)
end
"""

# KEYS[1] lease, KEYS[2] progress, KEYS[3] dead letters, KEYS[4] meta
# ARGV[1] lease token, ARGV[2] generation, ARGV[3] pos, ARGV[4] version, ARGV[5] applied, ARGV[6] skipped,
# ARGV[7] dead, ARGV[8] now (ms), ARGV[9] dead-letter cap, ARGV[10..] dead letters as (id, did, model, source,
# score, cost, error) groups. Absolute values, written only forward: a learner replaying after a restart
# rewrites what its predecessor wrote and never moves the progress back; a dead letter keeps its event's id, so
# a replay cannot add it twice. Returns 1 written, 2 already there (a replay), 0 lease lost or policy replaced.
PROGRESS_SCRIPT = (
    _LUA_BEFORE
    + """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if redis.call('HGET', KEYS[4], 'gen') ~= ARGV[2] then return 0 end
local cur = redis.call('HGET', KEYS[2], 'pos')
if cur and not before(cur, ARGV[3]) then return 2 end
redis.call('HSET', KEYS[2], 'pos', ARGV[3], 'version', ARGV[4], 'applied', ARGV[5], 'skipped', ARGV[6],
           'dead', ARGV[7], 'at', ARGV[8])
local last = redis.call('XREVRANGE', KEYS[3], '+', '-', 'COUNT', 1)
local top = '0-0'
if last[1] then top = last[1][1] end
for i = 10, #ARGV, 7 do
  if before(top, ARGV[i]) then
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', tonumber(ARGV[9]), ARGV[i], 'did', ARGV[i + 1],
               'model', ARGV[i + 2], 'source', ARGV[i + 3], 'score', ARGV[i + 4], 'cost', ARGV[i + 5],
               'error', ARGV[i + 6])
    top = ARGV[i]
  end
end
return 1
"""
)

# KEYS[1] lease, KEYS[2] state (snapshot), KEYS[3] meta, KEYS[4] log
# ARGV[1] lease token, ARGV[2] generation, ARGV[3] pos, ARGV[4] trim below ('' = no trim), ARGV[5..] the
# snapshot's field/value pairs. The snapshot and the position it covers are one write; it only moves forward,
# only under the lease and the current generation; the log loses only entries older than the previous snapshot.
SNAPSHOT_SCRIPT = (
    _LUA_BEFORE
    + """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if redis.call('HGET', KEYS[3], 'gen') ~= ARGV[2] then return 0 end
local cur = redis.call('HGET', KEYS[2], 'pos')
if cur and not before(cur, ARGV[3]) then return 0 end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], unpack(ARGV, 5))
if ARGV[4] ~= '' then
  redis.call('XTRIM', KEYS[4], 'MINID', ARGV[4])
  redis.call('HSET', KEYS[2], 'trimmed', ARGV[4])
end
return 1
"""
)

# KEYS[1..n] decisions. Their features (``x``), nil for a decision that is gone: one round trip for a whole batch.
FEATURES_SCRIPT = """
local out = {}
for i, k in ipairs(KEYS) do out[i] = redis.call('HGET', k, 'x') end
return out
"""

# KEYS[1] lease; ARGV[1] token, ARGV[2] lease ms. Take the lease if free, renew it if ours: 1 held, 0 not.
LEASE_SCRIPT = """
local cur = redis.call('GET', KEYS[1])
if not cur then redis.call('SET', KEYS[1], ARGV[1], 'PX', tonumber(ARGV[2])) return 1 end
if cur == ARGV[1] then redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2])) return 1 end
return 0
"""

# KEYS[1] decision, KEYS[2] decision log stream, KEYS[3] expstats
# ARGV[1] ttl (s), ARGV[2] decision id, ARGV[3] oldest stream id to keep, ARGV[4] expstats field ('' = none),
# ARGV[5] the decision's text field/value pairs as one JSON array of strings (one argument to pack instead of two
# per field: the packing was ~7% of a route's CPU), ARGV[6..] its binary field/value pairs (the context). The log
# holds ids only: the decision hash has the rest.
LOG_DECISION_SCRIPT = """
local text = cjson.decode(ARGV[5])
if #text > 0 then redis.call('HSET', KEYS[1], unpack(text)) end
if #ARGV > 5 then redis.call('HSET', KEYS[1], unpack(ARGV, 6)) end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[1]))
redis.call('XADD', KEYS[2], 'MINID', '~', ARGV[3], '*', 'did', ARGV[2])
if ARGV[4] ~= '' then redis.call('HINCRBY', KEYS[3], ARGV[4], 1) end
return 1
"""

# KEYS[1] lock; ARGV[1] token. Deletes the lock only if we still hold it.
RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
