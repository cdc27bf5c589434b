"""The Redis backend: the same checks as `MemoryCounters`, judged and applied by one Lua script, so every
replica sees one set of counters and no two requests can both take the last unit (no read-then-write).

Every key carries the hash tag `{prefix}` so a script's keys share one Redis Cluster slot. Expiry is set
relative to the caller's clock (an hour past the period's end), never as an absolute Redis time.
"""

from __future__ import annotations

from redis.asyncio import Redis

from llm_console.limits.counters import WINDOW_SLOTS, Check, Outcome, Settlement
from llm_console.limits.counters import amount_text as _num

# KEYS: each check's counter key, followed by its reservations key for a budget check. ARGV: now, the
# reservation's member name, its deadline, the window's slot count, then every check as one string
# "kind,limit,amount,expires_at,seed;..." (one argument instead of five per check: redis-py encodes each
# argument in Python, which cost more than the script itself).
ADMIT = """
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
      redis.call('SET', c.key, c.seed)
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
    local flat = redis.call('HGETALL', c.key)
    local cutoff = now_s - slots_n + 1
    local slots = {}
    for j = 1, #flat, 2 do
      local s, n = tonumber(flat[j]), tonumber(flat[j + 1])
      if s < cutoff then
        redis.call('HDEL', c.key, flat[j])
      else
        u = u + n
        if n > 0 then
          slots[#slots + 1] = {s, n}
          if old == 0 or s < old then old = s end
        end
      end
    end
    if u + amount > c.limit then
      table.sort(slots, function(a, b) return a[1] < b[1] end)
      local need, freed, retry = u + amount - c.limit, 0, slots_n
      for _, sn in ipairs(slots) do
        freed = freed + sn[2]
        if freed >= need then retry = sn[1] + slots_n - now break end
      end
      return {'deny', i - 1, tostring(u), tostring(math.max(retry, 0.001))}
    end
  elseif c.kind == 'f' then
    u = tonumber(redis.call('GET', c.key) or '0')
    if u + amount > c.limit then
      return {'deny', i - 1, tostring(u), tostring(math.max(c.exp - now, 0.001))}
    end
  else
    local spent = tonumber(redis.call('GET', c.key) or '0')
    redis.call('ZREMRANGEBYSCORE', c.res, '-inf', now)
    local reserved = 0
    for _, m in ipairs(redis.call('ZRANGE', c.res, 0, -1)) do
      reserved = reserved + tonumber(string.match(m, '|(.*)$'))
    end
    u = spent + reserved
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
    redis.call('EXPIRE', c.key, slots_n + 1)
  elseif c.kind == 'f' then
    redis.call('INCRBYFLOAT', c.key, c.amount)
  else
    redis.call('ZADD', c.res, deadline, member .. '|' .. c.amount)
    redis.call('EXPIRE', c.res, math.ceil(c.exp - now) + 3600)
  end
end
return {'ok', used, oldest}
"""

# KEYS as for ADMIT (a budget settlement names its reservations key too); ARGV[1]: "kind,slot,delta,member;...".
SETTLE = """
local k, n = 1, 0
for item in string.gmatch(ARGV[1], '[^;]+') do
  local kind, slot, delta, member = string.match(item, '^(%a),([^,]*),([^,]*),(.*)$')
  local key = KEYS[k]
  if kind == 'w' then
    if redis.call('HEXISTS', key, slot) == 1 then redis.call('HINCRBYFLOAT', key, slot, delta) end
    k = k + 1
  else
    if kind == 'b' then
      redis.call('ZREM', KEYS[k + 1], member)
      k = k + 2
    else
      k = k + 1
    end
    if tonumber(delta) ~= 0 and redis.call('EXISTS', key) == 1 then redis.call('INCRBYFLOAT', key, delta) end
  end
  n = n + 1
end
return n
"""

PEEK = """
local out = {}
for i = 1, #KEYS / 2 do
  local kind, now = ARGV[2 * i - 1], tonumber(ARGV[2 * i])
  local key, res = KEYS[2 * i - 1], KEYS[2 * i]
  if kind == 'w' then
    local flat, u = redis.call('HGETALL', key), 0
    for j = 1, #flat, 2 do
      if tonumber(flat[j]) > math.floor(now) - 61 then u = u + tonumber(flat[j + 1]) end
    end
    out[i] = tostring(u)
  else
    local v = redis.call('GET', key)
    if v then
      local r = 0
      if kind == 'b' then
        for _, m in ipairs(redis.call('ZRANGEBYSCORE', res, now, '+inf')) do
          r = r + tonumber(string.match(m, '|(.*)$'))
        end
      end
      out[i] = tostring(tonumber(v) + r)
    else
      out[i] = ''
    end
  end
end
return out
"""


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

    def _keys(self, check: Check) -> list[str]:
        key = self.tag + check.key
        return [key, self.tag + check.res_key if check.res_key else key]

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
        args: list[str] = []
        for c in checks:
            keys += self._keys(c)
            args += [c.kind, repr(now)]
        reply = await self._peek(keys=keys, args=args)
        return [float(v) if v not in (b"", "") else None for v in reply]

    async def aclose(self) -> None:
        await self.client.aclose()
