-- decide.lua: decide on one article and publish its event, atomically.
--
-- Replay check, exact-hash lookup, LSH candidate verification, the index insert and the
-- XADD all run inside one script, so two replicas racing with near-identical articles see
-- each other's writes (exactly one becomes unique), and no crash can leave an indexed
-- article without its event or an event without its article.
--
-- KEYS[1]  <ns>art:<id>          hash: decision, article, req, chash, canonical
-- KEYS[2]  <ns>hash:<chash>      string: canonical id with this exact body
-- KEYS[3]  articles stream
-- KEYS[4]  duplicates stream
-- KEYS[5]  <ns>sig:<id>          packed uint32 signature of an accepted article
-- KEYS[6..] one LSH bucket per band: zset of accepted ids scored by expiry (ms)
--
-- ARGV: ns, id, request hash, content hash, signature, threshold, window_ms, maxlen,
--       dry_run ("1"/"0"), article JSON, source, url ("" if none), max candidates per bucket
--
-- Returns {decision JSON, replayed (0/1)}.

local ns, id, req, chash, sig = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local threshold = tonumber(ARGV[6])
local window_ms = tonumber(ARGV[7])
local maxlen = ARGV[8]
local dry_run = ARGV[9] == "1"
local article_json, source, url = ARGV[10], ARGV[11], ARGV[12]
local per_bucket = tonumber(ARGV[13])
local art_key, hash_key, articles, duplicates, sig_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]

local t = redis.call("TIME")
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expires_ms = now_ms + window_ms

local function or_null(v)
  if v == nil or v == false then return cjson.null end
  return v
end

-- Fraction of equal positions of two packed uint32 signatures: the MinHash estimate of
-- their Jaccard similarity.
local function similarity(a, b)
  if not a or not b or #a ~= #b or #a == 0 then return 0 end
  local equal = 0
  for i = 1, #a, 4 do
    if string.sub(a, i, i + 3) == string.sub(b, i, i + 3) then equal = equal + 1 end
  end
  return equal / (#a / 4)
end

local function decision_json(status, relation, duplicate_of, sim, event_id)
  return cjson.encode({
    id = id, status = status, relation = or_null(relation),
    duplicate_of = or_null(duplicate_of), similarity = or_null(sim),
    replayed = false, event_id = or_null(event_id),
  })
end

local function article_event(event_type, status, relation, duplicate_of, sim)
  local decision = cjson.encode({
    status = status, relation = or_null(relation),
    duplicate_of = or_null(duplicate_of), similarity = or_null(sim),
  })
  -- The article JSON comes rendered by the service's pydantic model; splicing it in avoids
  -- decoding and re-encoding a large body on Redis's single thread.
  return '{"schema_version":1,"type":"' .. event_type .. '","id":' .. cjson.encode(id)
    .. ',"decision":' .. decision .. ',"article":' .. article_json .. '}'
end

local function store(decision, canonical)
  redis.call("HSET", art_key, "decision", decision, "article", article_json,
    "req", req, "chash", chash, "canonical", canonical)
  redis.call("PEXPIRE", art_key, window_ms)
end

-- Copies are indexed too, pointing at their canonical: a later copy that is close to an
-- earlier copy but further from the original still joins the cluster.
local function index_member(canonical)
  redis.call("SET", sig_key, sig, "PX", window_ms)
  if canonical == id then
    redis.call("SET", hash_key, id, "PX", window_ms)
  end
  for i = 6, #KEYS do
    redis.call("ZADD", KEYS[i], expires_ms, id)
    redis.call("ZREMRANGEBYSCORE", KEYS[i], "-inf", now_ms)
    redis.call("PEXPIRE", KEYS[i], window_ms)
  end
end

local function publish(stream, event_type, data)
  return redis.call("XADD", stream, "MAXLEN", "~", maxlen, "*",
    "type", event_type, "id", id, "data", data)
end

local function canonical_event(event_type, status, relation, duplicate_of, sim)
  if dry_run then return {decision_json(status, relation, duplicate_of, sim, nil), 0} end
  local event_id = publish(articles, event_type,
    article_event(event_type, status, relation, duplicate_of, sim))
  local decision = decision_json(status, relation, duplicate_of, sim, event_id)
  store(decision, id)
  index_member(id)
  return {decision, 0}
end

local function duplicate_event(relation, canonical, sim)
  if dry_run then return {decision_json("duplicate", relation, canonical, sim, nil), 0} end
  local data = cjson.encode({
    schema_version = 1, type = "article.duplicate", id = id, duplicate_of = canonical,
    similarity = sim, relation = relation, source = source, url = or_null(url ~= "" and url),
  })
  local event_id = publish(duplicates, "article.duplicate", data)
  local decision = decision_json("duplicate", relation, canonical, sim, event_id)
  store(decision, canonical)
  index_member(canonical)
  return {decision, 0}
end

-- 1. The same id again: a replay when nothing changed, a revision when a canonical changed.
local prior = redis.call("HMGET", art_key, "decision", "req", "chash")
if prior[1] then
  if prior[2] == req or prior[3] == chash then
    return {prior[1], 1}
  end
  local prior_decision = cjson.decode(prior[1])
  if prior_decision.status ~= "duplicate" then
    local sim = similarity(redis.call("GET", sig_key), sig)
    return canonical_event("article.updated", "updated", "revision", id, sim)
  end
  -- A former copy whose content changed is decided afresh below, like a new article.
end

-- 2. Exact: the same normalised body is already canonical.
local exact = redis.call("GET", hash_key)
if exact and exact ~= id and redis.call("EXISTS", ns .. "art:" .. exact) == 1 then
  return duplicate_event("exact", exact, 1)
end

-- 3. Near-duplicates: candidates from the buckets, each verified by its stored signature
-- and resolved to its cluster's canonical, which must still be in the window.
local function canonical_of(member)
  local canonical = redis.call("HGET", ns .. "art:" .. member, "canonical")
  if not canonical then return nil end
  if canonical ~= member and redis.call("EXISTS", ns .. "art:" .. canonical) == 0 then
    return nil
  end
  return canonical
end

local best_canonical, best_sim, best_member = nil, -1, nil
local seen = {}
for i = 6, #KEYS do
  local members = redis.call("ZREVRANGEBYSCORE", KEYS[i], "+inf", now_ms,
    "LIMIT", 0, per_bucket)
  for _, cand in ipairs(members) do
    if not seen[cand] and cand ~= id then
      seen[cand] = true
      local sim = similarity(redis.call("GET", ns .. "sig:" .. cand), sig)
      -- Ties go to the smaller id, so the answer does not depend on bucket order.
      if sim >= threshold and (sim > best_sim or (sim == best_sim and cand < best_member)) then
        local canonical = canonical_of(cand)
        if canonical then
          best_canonical, best_sim, best_member = canonical, sim, cand
        end
      end
    end
  end
end
if best_canonical then
  return duplicate_event("near_duplicate", best_canonical, best_sim)
end

-- 4. A new story.
return canonical_event("article.created", "unique", nil, nil, nil)
