"""Every Redis key and Lua script of the service, in one place (the store modules use them).

Keys of one policy share the hash tag ``{policy-id}``, so they sit in one slot of a Redis Cluster and every
multi-key script or transaction below touches one slot:

| key | type | what |
|---|---|---|
| ``br:policies`` | set | ids of all policies |
| ``br:{pid}:meta`` | hash | kind, registry name, dim, created_at, featurizer sha, budget pacing settings |
| ``br:{pid}:state`` | hash | ``meta`` (JSON state), ``arr:NAME`` (npy), ``last_id``, ``pacer_lam`` |
| ``br:{pid}:version`` | string | bumped by every state write: workers compare it to their cached copy |
| ``br:{pid}:featurizer`` | hash | ``spec`` and ``arr:NAME`` of the fitted featurizer |
| ``br:{pid}:dec:{did}`` | hash | one decision (features, candidates, pmf, choice, propensity, time), with a TTL |
| ``br:{pid}:fb:{did}:{source}`` | string | "this (decision, source) was accepted": the idempotency mark |
| ``br:{pid}:feedback`` | stream | accepted feedback, applied in order by the learner |
| ``br:{pid}:decisions`` | stream | ids of logged decisions, for off-policy evaluation (trimmed by age) |
| ``br:{pid}:counters`` | hash | accepted / applied / skipped feedback counts |
| ``br:{pid}:expstats`` | hash | per experiment arm: decisions, feedback count, score and cost sums |
| ``br:{pid}:learner`` | string | learner lease (efficiency only; correctness comes from WATCH) |
| ``br:experiments`` | set | ids of all experiments |
| ``br:exp:{eid}`` | hash | experiment definition (JSON) and status |

Exactly-once feedback: ``FEEDBACK_SCRIPT`` checks the decision exists, sets the (decision, source) mark with NX
and appends the event to the policy's feedback stream, atomically. The learner (``drain``) reads the state and
the stream entries after ``last_id`` under WATCH of the state, applies them in order, and writes the new state
with the new ``last_id`` in one MULTI/EXEC: a crash before EXEC applies nothing, after it applies all, and two
learners cannot both commit the same entries.
"""

from __future__ import annotations

POLICIES = "br:policies"
EXPERIMENTS = "br:experiments"


def k_meta(pid: str) -> str:
    return f"br:{{{pid}}}:meta"


def k_state(pid: str) -> str:
    return f"br:{{{pid}}}:state"


def k_version(pid: str) -> str:
    return f"br:{{{pid}}}:version"


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


# KEYS[1] decision, KEYS[2] mark, KEYS[3] feedback stream, KEYS[4] counters, KEYS[5] expstats
# ARGV[1] source, ARGV[2] score, ARGV[3] cost ('' = the decision's cost estimate), ARGV[4] weight,
# ARGV[5] mark ttl (s), ARGV[6] latency ms ('' = none)
# Returns {-1} unknown/expired decision, {-2} duplicate (decision, source), {1, stream id} accepted.
FEEDBACK_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end
if not redis.call('SET', KEYS[2], '1', 'NX', 'EX', tonumber(ARGV[5])) then return {-2} end
local d = redis.call('HMGET', KEYS[1], 'x', 'model', 'cost_estimate', 'experiment', 'arm', 'did')
local cost = ARGV[3]
if cost == '' then cost = d[3] end
local id = redis.call('XADD', KEYS[3], '*', 'did', d[6], 'model', d[2], 'x', d[1], 'score', ARGV[2],
                      'cost', cost, 'weight', ARGV[4], 'source', ARGV[1])
redis.call('HINCRBY', KEYS[4], 'accepted', 1)
redis.call('HSET', KEYS[1], 'score:' .. ARGV[1], ARGV[2], 'cost_observed', cost)
if d[4] and d[4] ~= '' then
  local p = d[4] .. '|' .. d[5] .. '|'
  local s = tonumber(ARGV[2])
  local c = tonumber(cost)
  redis.call('HINCRBY', KEYS[5], p .. 'fb_n', 1)
  redis.call('HINCRBYFLOAT', KEYS[5], p .. 'fb_sum', s)
  redis.call('HINCRBYFLOAT', KEYS[5], p .. 'fb_sumsq', s * s)
  redis.call('HINCRBYFLOAT', KEYS[5], p .. 'cost_sum', c)
  redis.call('HINCRBYFLOAT', KEYS[5], p .. 'cost_sumsq', c * c)
end
return {1, id}
"""

# KEYS[1] decision, KEYS[2] decision log stream, KEYS[3] expstats
# ARGV[1] ttl (s), ARGV[2] decision id, ARGV[3] oldest stream id to keep, ARGV[4] expstats field ('' = none),
# ARGV[5..] the decision's field/value pairs. The log holds ids only: the decision hash has the rest.
LOG_DECISION_SCRIPT = """
redis.call('HSET', KEYS[1], unpack(ARGV, 5))
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
