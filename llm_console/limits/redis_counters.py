"""The Redis backend: the same checks as `MemoryCounters`, judged and applied by one Lua script, so every
replica sees one set of counters and no two requests can both take the last unit (no read-then-write).

Every key carries the hash tag `{prefix}` so a script's keys share one Redis Cluster slot. Expiry is set
relative to the caller's clock (an hour past the period's end), never as an absolute Redis time.
"""

from __future__ import annotations

from redis.asyncio import Redis

from llm_console.limits.counters import WINDOW_SLOTS, Check, Outcome, Settlement
from llm_console.limits.counters import amount_text as _num

# Layouts. A window (RPM, TPM) is a hash: one field per one-second slot, "t" the running total of the
# slots in it, "o" the oldest slot that may still hold something (0: empty), so judging it costs O(1)
# plus one HDEL per second that left it. A day counter (RPD, TPD) is a string. A budget is a hash, "s"
# spent and "r" reserved by requests in flight, beside a sorted set of those reservations ("id|amount",
# scored by their deadline) from which a crashed request's reservation expires.
#
# ADMIT: KEYS are each check's key, followed by its reservations key for a budget. ARGV: now, the
# reservation's id, its deadline, the window's slot count, then every check as one string
# "kind,limit,amount,expires_at,seed;..." (one argument instead of five per check: redis-py encodes each
# argument in Python, which costs more than the script itself).
PRELUDE = """
local function prune(key, now_s, slots_n, write)
  local o = tonumber(redis.call('HGET', key, 'o') or '0')
  if o == 0 then return 0, 0 end
  local cutoff = now_s - slots_n + 1
  if cutoff - o >= slots_n then
    if write then redis.call('DEL', key) end
    return 0, 0
  end
  local t = tonumber(redis.call('HGET', key, 't') or '0')
  if o >= cutoff then return t, o end
  while o < cutoff do
    local v = redis.call('HGET', key, o)
    if v then
      t = t - tonumber(v)
      if write then redis.call('HDEL', key, o) end
    end
    o = o + 1
  end
  if write then redis.call('HSET', key, 't', t, 'o', o) end
  return t, o
end
local function expire_reservations(key, res, now, write)
  local r = tonumber(redis.call('HGET', key, 'r') or '0')
  local gone = redis.call('ZRANGEBYSCORE', res, '-inf', now)
  for _, m in ipairs(gone) do r = r - tonumber(string.match(m, '|(.*)$')) end
  if write and #gone > 0 then
    redis.call('ZREMRANGEBYSCORE', res, '-inf', now)
    redis.call('HSET', key, 'r', r)
  end
  return math.max(r, 0)
end
"""

ADMIT = (
    PRELUDE
    + """
local now = tonumber(ARGV[1])
local now_s = math.floor(now)
local member, deadline, slots_n = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local checks, k = {}, 1
for item in string.gmatch(ARGV[5], '[^;]+') do
  local kind, limit, amount, exp, seed = string.match(item, '^(%a),([^,]*),([^,]*),([^,]*),(.*)$')
  local c = {kind = kind, limit = tonumber(limit), amount = amount, exp = tonumber(exp), seed = seed, key = KEYS[k]}
  if kind == 'b' then c.res = KEYS[k + 1]; k = k + 2 else k = k + 1 end
  checks[#checks + 1] = c
end
local missing = {}
for i, c in ipairs(checks) do
  if c.kind ~= 'w' and redis.call('EXISTS', c.key) == 0 then
    if c.seed ~= '' then
      if c.kind == 'b' then redis.call('HSET', c.key, 's', c.seed, 'r', 0) else redis.call('SET', c.key, c.seed) end
      redis.call('EXPIRE', c.key, math.ceil(c.exp - now) + 3600)
    else
      missing[#missing + 1] = i - 1
    end
  end
end
if #missing > 0 then return {'seed', missing} end
local used, oldest = {}, {}
for i, c in ipairs(checks) do
  local amount, u, old = tonumber(c.amount), 0, 0
  if c.kind == 'w' then
    u, old = prune(c.key, now_s, slots_n, true)
    if u + amount > c.limit then
      local need, freed, retry = u + amount - c.limit, 0, slots_n
      for s = (old > 0 and old or now_s + 1), now_s do  -- empty window: nothing to wait for but the whole
        freed = freed + tonumber(redis.call('HGET', c.key, s) or '0')
        if freed >= need then retry = s + slots_n - now break end
      end
      return {'deny', i - 1, tostring(u), tostring(math.max(retry, 0.001))}
    end
  elseif c.kind == 'f' then
    u = tonumber(redis.call('GET', c.key) or '0')
    if u + amount > c.limit then
      return {'deny', i - 1, tostring(u), tostring(math.max(c.exp - now, 0.001))}
    end
  else
    local spent = tonumber(redis.call('HGET', c.key, 's') or '0')
    u = spent + expire_reservations(c.key, c.res, now, true)
    if math.floor(u * 1e9 + 0.5) / 1e9 >= c.limit then
      local retry = 1
      if spent >= c.limit then retry = math.max(c.exp - now, 0.001) end
      return {'deny', i - 1, tostring(u), tostring(retry)}
    end
  end
  used[i] = tostring(u)
  oldest[i] = tostring(old)
end
for _, c in ipairs(checks) do
  if c.kind == 'w' then
    redis.call('HINCRBYFLOAT', c.key, now_s, c.amount)
    redis.call('HINCRBYFLOAT', c.key, 't', c.amount)
    if redis.call('HSETNX', c.key, 'o', now_s) == 0 and tonumber(redis.call('HGET', c.key, 'o')) == 0 then
      redis.call('HSET', c.key, 'o', now_s)
    end
    redis.call('EXPIRE', c.key, slots_n + 1)
  elseif c.kind == 'f' then
    redis.call('INCRBYFLOAT', c.key, c.amount)
  else
    redis.call('ZADD', c.res, deadline, member .. '|' .. c.amount)
    redis.call('HINCRBYFLOAT', c.key, 'r', c.amount)
    redis.call('EXPIRE', c.res, math.ceil(c.exp - now) + 3600)
  end
end
return {'ok', used, oldest}
"""
)

# KEYS as for ADMIT (a budget settlement names its reservations key too); ARGV[1]: "kind,slot,delta,member;...".
SETTLE = """
local k, n = 1, 0
for item in string.gmatch(ARGV[1], '[^;]+') do
  local kind, slot, delta, member = string.match(item, '^(%a),([^,]*),([^,]*),(.*)$')
  local key = KEYS[k]
  if kind == 'w' then
    if redis.call('HEXISTS', key, slot) == 1 then
      redis.call('HINCRBYFLOAT', key, slot, delta)
      redis.call('HINCRBYFLOAT', key, 't', delta)
    end
    k = k + 1
  elseif kind == 'b' then
    if redis.call('EXISTS', key) == 1 then
      if redis.call('ZREM', KEYS[k + 1], member) == 1 then
        redis.call('HINCRBYFLOAT', key, 'r', -tonumber(string.match(member, '|(.*)$')))
      end
      if tonumber(delta) ~= 0 then redis.call('HINCRBYFLOAT', key, 's', delta) end
    end
    k = k + 2
  else
    if tonumber(delta) ~= 0 and redis.call('EXISTS', key) == 1 then redis.call('INCRBYFLOAT', key, delta) end
    k = k + 1
  end
  n = n + 1
end
return n
"""

# Read-only: KEYS as for ADMIT; ARGV: now, the slot count, then each check's kind as one string "w;f;b".
PEEK = (
    PRELUDE
    + """
local now = tonumber(ARGV[1])
local slots_n = tonumber(ARGV[2])
local out, k = {}, 1
for kind in string.gmatch(ARGV[3], '[^;]+') do
  local key = KEYS[k]
  if kind == 'w' then
    local t = prune(key, math.floor(now), slots_n, false)
    out[#out + 1] = tostring(t)
    k = k + 1
  elseif kind == 'f' then
    out[#out + 1] = redis.call('GET', key) or ''
    k = k + 1
  else
    if redis.call('EXISTS', key) == 1 then
      local spent = tonumber(redis.call('HGET', key, 's') or '0')
      out[#out + 1] = tostring(spent + expire_reservations(key, KEYS[k + 1], now, false))
    else
      out[#out + 1] = ''
    end
    k = k + 2
  end
end
return out
"""
)


class RedisCounters:
    """Counters shared by every replica through one Redis server (or cluster slot)."""

    def __init__(self, url: str, prefix: str = "llmc", *, timeout_s: float = 0.5) -> None:
        self.client: Redis = Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, retry_on_timeout=False
        )
        self.tag = "{" + prefix + "}:"
        self._admit = self.client.register_script(ADMIT)
        self._settle = self.client.register_script(SETTLE)
        self._peek = self.client.register_script(PEEK)

    async def admit(
        self,
        checks: list[Check],
        amounts: list[float],
        now: float,
        member: str,
        deadline: float,
        seeds: dict[int, float],
    ) -> Outcome:
        keys: list[str] = []
        specs: list[str] = []
        for i, c in enumerate(checks):
            keys.append(self.tag + c.key)
            if c.kind == "b":
                keys.append(self.tag + c.res_key)
            seed = _num(seeds[i]) if i in seeds else ""
            specs.append(f"{c.kind},{_num(c.limit)},{_num(amounts[i])},{c.expire_at!r},{seed}")
        reply = await self._admit(keys=keys, args=[repr(now), member, repr(deadline), WINDOW_SLOTS, ";".join(specs)])
        tag = reply[0].decode() if isinstance(reply[0], bytes) else reply[0]
        if tag == "seed":
            return Outcome(False, missing=[int(i) for i in reply[1]])
        if tag == "deny":
            return Outcome(False, denied=int(reply[1]), retry_after_s=float(reply[3]), used=[float(reply[2])])
        return Outcome(True, used=[float(u) for u in reply[1]], oldest=[float(o) for o in reply[2]])

    def _settle_args(self, items: list[Settlement]) -> tuple[list[str], list[str]]:
        keys: list[str] = []
        specs: list[str] = []
        for item in items:
            keys.append(self.tag + item.key)
            if item.kind == "b":
                keys.append(self.tag + item.res_key)
            specs.append(f"{item.kind},{item.slot},{_num(item.delta)},{item.member}")
        return keys, [";".join(specs)]

    async def settle_many(self, batches: list[list[Settlement]]) -> None:
        """Several requests' settlements in one round trip (a pipeline of script calls)."""
        pipe = self.client.pipeline(transaction=False)
        for items in batches:
            keys, args = self._settle_args(items)
            await self._settle(keys=keys, args=args, client=pipe)
        await pipe.execute()

    async def current(self, checks: list[Check], now: float) -> list[float | None]:
        keys: list[str] = []
        for c in checks:
            keys.append(self.tag + c.key)
            if c.kind == "b":
                keys.append(self.tag + c.res_key)
        reply = await self._peek(keys=keys, args=[repr(now), WINDOW_SLOTS, ";".join(c.kind for c in checks)])
        return [float(v) if v not in (b"", "") else None for v in reply]

    async def aclose(self) -> None:
        await self.client.aclose()
