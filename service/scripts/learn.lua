-- learn.lua: count one unique article's segments for its source, and keep the source's
-- learned set (its template: segments recurring in enough of its recent articles) current.
--
-- Runs right after decide.lua for the same article, in the same pipeline. Only a unique
-- article counts: a syndicated copy repeats its original, not its source's template. The
-- article's hash records that it was counted, so a client retrying after a lost reply does
-- not count it twice.
--
-- KEYS[1]  <ns>art:<id>      the article, as decide.lua stored it (field "status")
-- KEYS[2]  <ns>src:<sd>      hash: "n", how many unique articles of the source were counted
-- KEYS[3]  <ns>learned:<sd>  zset: learned segment digest -> when it last qualified (ms)
--
-- Counts live in two rotating epoch hashes, <ns>seg:<sd>:<epoch>, field digest -> "count:first"
-- where first is the source's article number when the segment was first seen. A segment
-- qualifies when it was seen in at least min_articles articles and in at least min_share of
-- the source's articles since it first appeared: a new template is learned after
-- min_articles articles, while a stock phrase that recurs in one story in ten is not.
-- Segments not seen for two epochs are forgotten with their epoch hash, and a learned
-- segment that stops qualifying, or is not seen for one epoch, leaves the learned set.
--
-- ARGV: ns, source digest, epoch_ms, min_articles, min_share, max_fields, max_learned,
--       digest width, the digests concatenated (one argument: see decide.lua)
--
-- Returns 1 when the learned set changed, else 0.

local ns, sd = ARGV[1], ARGV[2]
local epoch_ms = tonumber(ARGV[3])
local min_articles = tonumber(ARGV[4])
local min_share = tonumber(ARGV[5])
local max_fields = tonumber(ARGV[6])
local max_learned = tonumber(ARGV[7])
local art_key, src_key, learned_key = KEYS[1], KEYS[2], KEYS[3]

local width, packed = tonumber(ARGV[8]), ARGV[9]
if packed == nil or #packed == 0 then return 0 end
if redis.call("HGET", art_key, "status") ~= "unique" then return 0 end
if redis.call("HSETNX", art_key, "learned", "1") == 0 then return 0 end

local t = redis.call("TIME")
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local epoch = math.floor(now_ms / epoch_ms)
local cur_key = ns .. "seg:" .. sd .. ":" .. epoch
local prev_key = ns .. "seg:" .. sd .. ":" .. (epoch - 1)

local n = redis.call("HINCRBY", src_key, "n", 1)
redis.call("PEXPIRE", src_key, 2 * epoch_ms)

local digests = {}
for at = 1, #packed, width do digests[#digests + 1] = string.sub(packed, at, at + width - 1) end
local cur = redis.call("HMGET", cur_key, unpack(digests))
local prev = redis.call("HMGET", prev_key, unpack(digests))
local held = redis.call("HLEN", cur_key)
if held == 0 then
  -- This article starts the source's epoch hash: the one two epochs back is past every read.
  -- Unlinked, it is freed in Redis's background thread; expiring, on the main thread (see
  -- decide.lua). Its TTL, an epoch later, is the backstop for a source that went quiet.
  redis.call("UNLINK", ns .. "seg:" .. sd .. ":" .. (epoch - 2))
end
local room = max_fields - held

local updates, qualified, dropped = {}, {}, {}
for i, d in ipairs(digests) do
  local stored = cur[i] or prev[i]
  local count, first = 0, n
  if stored then
    local c, f = string.match(stored, "^(%d+):(%d+)$")
    count, first = tonumber(c), tonumber(f)
  end
  count = count + 1
  -- A full epoch hash still counts what it holds; it only stops taking new segments, so a
  -- source that floods it cannot grow it without bound.
  if cur[i] or room > 0 then
    if not cur[i] then room = room - 1 end
    updates[#updates + 1] = d
    updates[#updates + 1] = count .. ":" .. first
  end
  if count >= min_articles and count >= min_share * (n - first + 1) then
    qualified[#qualified + 1] = now_ms
    qualified[#qualified + 1] = d
  else
    dropped[#dropped + 1] = d
  end
end

if #updates > 0 then
  redis.call("HSET", cur_key, unpack(updates))
  redis.call("PEXPIREAT", cur_key, (epoch + 3) * epoch_ms)
end
local changed = 0
if #qualified > 0 then changed = changed + redis.call("ZADD", learned_key, unpack(qualified)) end
if #dropped > 0 then changed = changed + redis.call("ZREM", learned_key, unpack(dropped)) end
changed = changed + redis.call("ZREMRANGEBYSCORE", learned_key, "-inf", now_ms - epoch_ms)
local size = redis.call("ZCARD", learned_key)
if size > max_learned then
  changed = changed + redis.call("ZREMRANGEBYRANK", learned_key, 0, size - max_learned - 1)
end
redis.call("PEXPIRE", learned_key, epoch_ms)
-- Whether the learned set gained or lost a member: what readers caching it must know.
return changed > 0 and 1 or 0
