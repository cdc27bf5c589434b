"""The Redis backend: the same checks as `MemoryCounters`, judged and applied by one Lua script, so every
replica sees one set of counters and no two requests can both take the last unit (no read-then-write).

Every key carries the hash tag `{prefix}` so a script's keys share one Redis Cluster slot. Expiry is set
relative to the caller's clock (an hour past the period's end), never as an absolute Redis time.
"""

from __future__ import annotations

from redis.asyncio import Redis

from llm_console.limits.counters import WINDOW_SLOTS, Check, Outcome, Settlement
from llm_console.limits.counters import amount_text as _num

ADMIT = """
local now = tonumber(ARGV[1])
local now_s = math.floor(now)
local member = ARGV[2]
local deadline = tonumber(ARGV[3])
local n = tonumber(ARGV[4])
local slots_n = tonumber(ARGV[5])
local missing = {}
for i = 1, n do
  local base = 5 + (i - 1) * 5
  if ARGV[base + 1] ~= 'w' then
    local key = KEYS[2 * i - 1]
    if redis.call('EXISTS', key) == 0 then
      if ARGV[base + 5] ~= '' then
        redis.call('SET', key, ARGV[base + 5])
        redis.call('EXPIRE', key, math.ceil(tonumber(ARGV[base + 4]) - now) + 3600)
      else
        missing[#missing + 1] = i - 1
      end
    end
  end
end
if #missing > 0 then return {'seed', missing} end
local used, oldest = {}, {}
for i = 1, n do
  local base = 5 + (i - 1) * 5
  local kind, limit, amount = ARGV[base + 1], tonumber(ARGV[base + 2]), tonumber(ARGV[base + 3])
  local expire_at = tonumber(ARGV[base + 4])
  local key, res = KEYS[2 * i - 1], KEYS[2 * i]
  local u, old = 0, 0
  if kind == 'w' then
    local flat = redis.call('HGETALL', key)
    local cutoff = now_s - slots_n + 1
    local slots = {}
    for j = 1, #flat, 2 do
      local s, c = tonumber(flat[j]), tonumber(flat[j + 1])
      if s < cutoff then
        redis.call('HDEL', key, flat[j])
      else
        u = u + c
        if c > 0 then
          slots[#slots + 1] = {s, c}
          if old == 0 or s < old then old = s end
        end
      end
    end
    if u + amount > limit then
      table.sort(slots, function(a, b) return a[1] < b[1] end)
      local need, freed, retry = u + amount - limit, 0, slots_n
      for _, sc in ipairs(slots) do
        freed = freed + sc[2]
        if freed >= need then retry = sc[1] + slots_n - now break end
      end
      return {'deny', i - 1, tostring(u), tostring(math.max(retry, 0.001))}
    end
  elseif kind == 'f' then
    u = tonumber(redis.call('GET', key) or '0')
    if u + amount > limit then
      return {'deny', i - 1, tostring(u), tostring(math.max(expire_at - now, 0.001))}
    end
  else
    local spent = tonumber(redis.call('GET', key) or '0')
    redis.call('ZREMRANGEBYSCORE', res, '-inf', now)
    local reserved = 0
    for _, m in ipairs(redis.call('ZRANGE', res, 0, -1)) do
      reserved = reserved + tonumber(string.match(m, '|(.*)$'))
    end
    u = spent + reserved
    if math.floor(u * 1e9 + 0.5) / 1e9 >= limit then
      local retry = 1
      if spent >= limit then retry = math.max(expire_at - now, 0.001) end
      return {'deny', i - 1, tostring(u), tostring(retry)}
    end
  end
  used[i] = tostring(u)
  oldest[i] = tostring(old)
end
for i = 1, n do
  local base = 5 + (i - 1) * 5
  local kind, amount = ARGV[base + 1], ARGV[base + 3]
  local key, res = KEYS[2 * i - 1], KEYS[2 * i]
  if kind == 'w' then
    redis.call('HINCRBYFLOAT', key, now_s, amount)
    redis.call('EXPIRE', key, slots_n + 1)
  elseif kind == 'f' then
    redis.call('INCRBYFLOAT', key, amount)
  else
    redis.call('ZADD', res, deadline, member .. '|' .. amount)
    redis.call('EXPIRE', res, math.ceil(tonumber(ARGV[base + 4]) - now) + 3600)
  end
end
return {'ok', used, oldest}
"""

SETTLE = """
for i = 1, #ARGV / 4 do
  local base = (i - 1) * 4
  local kind, slot, delta, member = ARGV[base + 1], ARGV[base + 2], ARGV[base + 3], ARGV[base + 4]
  local key, res = KEYS[2 * i - 1], KEYS[2 * i]
  if kind == 'w' then
    if redis.call('HEXISTS', key, slot) == 1 then redis.call('HINCRBYFLOAT', key, slot, delta) end
  else
    if kind == 'b' then redis.call('ZREM', res, member) end
    if tonumber(delta) ~= 0 and redis.call('EXISTS', key) == 1 then redis.call('INCRBYFLOAT', key, delta) end
  end
end
return #ARGV / 4
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
        self, checks: list[Check], now: float, member: str, deadline: float, seeds: dict[int, float]
    ) -> Outcome:
        keys: list[str] = []
        args: list[str] = [repr(now), member, repr(deadline), str(len(checks)), str(WINDOW_SLOTS)]
        for i, c in enumerate(checks):
            keys += self._keys(c)
            args += [c.kind, _num(c.limit), _num(c.amount), repr(c.expire_at), _num(seeds[i]) if i in seeds else ""]
        reply = await self._admit(keys=keys, args=args)
        tag = reply[0].decode() if isinstance(reply[0], bytes) else reply[0]
        if tag == "seed":
            return Outcome(False, missing=[int(i) for i in reply[1]])
        if tag == "deny":
            return Outcome(False, denied=int(reply[1]), retry_after_s=float(reply[3]), used=[float(reply[2])])
        return Outcome(True, used=[float(u) for u in reply[1]], oldest=[float(o) for o in reply[2]])

    def _settle_args(self, items: list[Settlement]) -> tuple[list[str], list[str]]:
        keys: list[str] = []
        args: list[str] = []
        for item in items:
            keys += [self.tag + item.key, self.tag + (item.res_key or item.key)]
            args += [item.kind, str(item.slot), _num(item.delta), item.member]
        return keys, args

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
