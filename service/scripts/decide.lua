-- decide.lua: decide on one article and publish its event, atomically.
--
-- The replay and revision checks, the exact-hash lookup, LSH candidates verified against their
-- stored signatures, containment (excerpt and superset) from sampled anchors, the index insert
-- and the XADD all run inside one script, so two replicas racing with near-identical articles
-- see each other's writes (exactly one becomes unique), and no crash can leave an indexed
-- article without its event or an event without its article.
--
-- KEYS[1]  <ns>art:<id>       hash: decision, status, article, req, chash, canonical, sig,
--                             size (shingles), nanc (anchors), ukey (url digest)
-- KEYS[2]  <ns>hash:<chash>   string: the id published with this exact body
-- KEYS[3]  articles stream
-- KEYS[4]  duplicates stream
--
-- The index itself lives in a few large hashes per epoch rather than in keys per article:
-- <ns>lsh:<epoch> maps a band's field (its number, 2 bytes big-endian, then its digest) and
-- <ns>anc:<epoch> an anchor's digest to the ids indexed under it (space-separated, newest
-- last, capped). Digests are binary (8 and 4 bytes), half their hex: a field then takes the
-- allocator's 16- and 8-byte classes instead of 32 and 16, 0.8 KB less an article of the
-- ~5 KB the index holds. An epoch is half the window, an article is indexed in the current
-- one, and a lookup reads those of the three epochs a window can span that exist (an EXISTS
-- for one that does not). Entries linger past the window, harmlessly: a candidate counts only
-- while its article hash, which expires exactly at the window, exists.
--
-- An epoch hash no lookup reads any more is deleted with UNLINK by the decision that starts
-- the next epoch's hash, so Redis frees it in its background thread. Left to expire, it would
-- be freed on the main thread, which stops every client meanwhile: 1.7 s for a hash of 4M
-- fields (about 100k articles' anchors) on Redis 7 with its default lazyfree settings, and
-- proportionally longer for a busier epoch. Its TTL, one epoch later, is only the backstop
-- for an epoch in which no decision came.
--
-- Keeping the key count flat keeps the work of a decision flat as the index grows: a new
-- story reads its 32 bands and ~40 anchors in each epoch hash and adds them to the current
-- one. What still costs more in a larger index is memory, not work (bench/capacity.py): each
-- of those field lookups misses the CPU caches and TLB more often in a larger server, and
-- after a hash passes a power of two Redis rehashes it one step per field a command touches,
-- which for tens of thousands of decisions costs as much as the lookups themselves.
--
-- These keys, and the <ns>url:<digest> of an article, are named here from the server's clock
-- and arguments: with a Redis Cluster hash tag in the prefix they share the slot of KEYS.
--
-- ARGV  1 ns            2 id              3 request hash     4 content hash   5 signature
--       6 threshold     7 window_ms       8 stream maxlen    9 dry run "1"/"0"
--      10 article JSON 11 source         12 url ("" if none) 13 max ids per bucket
--      14 shingle count 15 containment threshold  16 url digest ("" if none)
--      17 number of bands  18 the band digests, binary, concatenated (all of one width)
--      19 anchor width     20 the anchor digests, binary, concatenated
--
-- Lists travel packed in one argument each: the client encodes every argument separately,
-- and at ~70 digests an article that encoding cost more of the event loop than the rest of
-- the request.
--
-- Returns {decision JSON, replayed (0/1)}.

local ns, id, req, chash, sig = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local threshold = tonumber(ARGV[6])
local window_ms = tonumber(ARGV[7])
local maxlen = ARGV[8]
local dry_run = ARGV[9] == "1"
local article_json, source, url = ARGV[10], ARGV[11], ARGV[12]
local per_bucket = tonumber(ARGV[13])
local size = tonumber(ARGV[14])
local containment = tonumber(ARGV[15])
local ukey = ARGV[16]
local nbands = tonumber(ARGV[17])
local art_key, hash_key, articles, duplicates = KEYS[1], KEYS[2], KEYS[3], KEYS[4]

-- An excerpt or superset needs this many anchors on its contained side: fewer is too small a
-- sample to tell a teaser from a shared stock phrase.
local MIN_ANCHORS = 3
-- The text an excerpt leaves out, and the new text of a superset, as a share of the larger
-- and of the contained article's shingles: below them, the two are near-duplicates. A copy
-- carrying leftover site chrome runs up to ~1.3x its original's shingles (bench/
-- dedup_quality.py), so an update must add more than that to count as one.
local MIN_DIFFERENCE = 0.2
local MIN_NEW_TEXT = 0.3
-- An anchor shared by more articles than this in the window is a stock phrase, not evidence.
local PER_ANCHOR = 16
-- Containment candidates verified per decision, the best-anchored first.
local MAX_CONTAINERS = 8
-- LSH candidates verified per decision, those sharing the most bands first.
local MAX_VERIFIED = 32

local bands, anchors = {}, {}
if nbands > 0 then
  local packed = ARGV[18]
  local width = #packed / nbands
  for i = 1, nbands do
    bands[i] = string.char(math.floor((i - 1) / 256), (i - 1) % 256)
      .. string.sub(packed, (i - 1) * width + 1, i * width)
  end
end
local anchor_width, packed_anchors = tonumber(ARGV[19]), ARGV[20]
if anchor_width > 0 then
  for at = 1, #packed_anchors, anchor_width do
    anchors[#anchors + 1] = string.sub(packed_anchors, at, at + anchor_width - 1)
  end
end

local t = redis.call("TIME")
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local epoch_ms = math.max(1, math.ceil(window_ms / 2))
local epoch = math.floor(now_ms / epoch_ms)
local function epoch_key(kind, back) return ns .. kind .. ":" .. (epoch - back) end
local url_key = ukey ~= "" and (ns .. "url:" .. ukey) or nil

local function or_null(v)
  if v == nil or v == false then return cjson.null end
  return v
end

-- Fraction of equal positions of two packed uint32 signatures: the MinHash estimate of
-- their Jaccard similarity. With `floor`, it gives up (answering -1) as soon as the estimate
-- cannot reach it: most LSH candidates are strangers, and they are told apart in half the
-- comparisons.
local function similarity(a, b, floor)
  if not a or not b or #a ~= #b or #a == 0 then return 0 end
  local n = #a / 4
  local allowed = floor and math.floor((1 - floor) * n + 1e-9) or n
  local equal, differ = 0, 0
  for i = 1, #a, 4 do
    if string.sub(a, i, i + 3) == string.sub(b, i, i + 3) then
      equal = equal + 1
    else
      differ = differ + 1
      if differ > allowed then return -1 end
    end
  end
  return equal / n
end

local function round3(x) return math.floor(x * 1000 + 0.5) / 1000 end

local function decision_json(status, relation, duplicate_of, sim, contained, event_id)
  return cjson.encode({
    id = id, status = status, relation = or_null(relation),
    duplicate_of = or_null(duplicate_of), similarity = or_null(sim),
    containment = or_null(contained), replayed = false, event_id = or_null(event_id),
  })
end

local function article_event(event_type, status, relation, duplicate_of, sim, contained)
  local decision = cjson.encode({
    status = status, relation = or_null(relation), duplicate_of = or_null(duplicate_of),
    similarity = or_null(sim), containment = or_null(contained),
  })
  -- The article JSON comes rendered by the service's pydantic model; splicing it in avoids
  -- decoding and re-encoding a large body on Redis's single thread.
  return '{"schema_version":1,"type":"' .. event_type .. '","id":' .. cjson.encode(id)
    .. ',"decision":' .. decision .. ',"article":' .. article_json .. '}'
end

local function store(decision, status, canonical)
  redis.call("HSET", art_key, "decision", decision, "status", status, "article", article_json,
    "req", req, "chash", chash, "canonical", canonical, "sig", sig, "size", size,
    "nanc", #anchors, "ukey", ukey)
  -- A re-decided article (a revision, a former copy) may have been counted before.
  redis.call("HDEL", art_key, "learned")
  redis.call("PEXPIRE", art_key, window_ms)
end

-- The ids under one field of an epoch hash, newest first.
local function members(value)
  local ids, n = {}, 0
  if value then
    for member in string.gmatch(value, "%S+") do n = n + 1; ids[n] = member end
    for i = 1, math.floor(n / 2) do ids[i], ids[n + 1 - i] = ids[n + 1 - i], ids[i] end
  end
  return ids
end

-- How many ids one field holds, without splitting it.
local function count(value)
  if not value then return 0 end
  local _, separators = string.gsub(value, " ", "")
  return separators + 1
end

local current_exists = {}  -- kind -> whether the current epoch's hash existed when read

-- Append id to each field of the current epoch hash (whose values were read as `current`),
-- keeping the newest `cap` ids per field.
local function append(kind, fields, current, cap)
  if #fields == 0 then return end
  local pairs_ = {}
  for i, f in ipairs(fields) do
    local value = current[i]
    local ids = members(value)
    local present = false
    for _, m in ipairs(ids) do if m == id then present = true break end end
    if not present then
      if #ids >= cap then
        local kept = {}
        for j = cap - 1, 1, -1 do kept[#kept + 1] = ids[j] end
        kept[#kept + 1] = id
        value = table.concat(kept, " ")
      else
        value = value and (value .. " " .. id) or id
      end
      pairs_[#pairs_ + 1] = f
      pairs_[#pairs_ + 1] = value
    end
  end
  local key = epoch_key(kind, 0)
  if not current_exists[kind] then
    -- This decision starts the epoch's hash: the one three epochs back is past every lookup.
    redis.call("UNLINK", epoch_key(kind, 3))
    current_exists[kind] = true
  end
  if #pairs_ > 0 then redis.call("HSET", key, unpack(pairs_)) end
  redis.call("PEXPIREAT", key, (epoch + 1) * epoch_ms + window_ms + epoch_ms)
end

-- What the fields hold in each epoch hash, [back][i] for the i-th field `back` epochs ago
-- (false when absent). An epoch hash that does not exist costs an EXISTS, not a lookup.
local function epoch_values(kind, fields)
  local values = {}
  for back = 0, 2 do
    local key = epoch_key(kind, back)
    local exists = #fields > 0 and redis.call("EXISTS", key) == 1
    if back == 0 then current_exists[kind] = exists end
    if exists then
      values[back] = redis.call("HMGET", key, unpack(fields))
    else
      values[back] = {}
    end
  end
  return values
end

local lsh_values, anc_values = nil, nil
local function lsh_lookup()
  if not lsh_values then lsh_values = epoch_values("lsh", bands) end
  return lsh_values
end
local function anc_lookup()
  if not anc_values then anc_values = epoch_values("anc", anchors) end
  return anc_values
end

-- Copies are indexed for LSH too, pointing at their canonical: a later copy that is close
-- to an earlier copy but further from the original still joins the cluster. Anchors are
-- indexed only for what is published as a story (new, updated), which is what an excerpt
-- or a superset is measured against.
local function index_member(published)
  if nbands > 0 then append("lsh", bands, lsh_lookup()[0], per_bucket) end
  if published then
    redis.call("SET", hash_key, id, "PX", window_ms)
    -- A later article at this url under another id is a revision of this story.
    if url_key then redis.call("SET", url_key, id, "PX", window_ms) end
    -- One more than PER_ANCHOR is kept, so a stock phrase stays recognisable as one.
    append("anc", anchors, anc_lookup()[0], PER_ANCHOR + 1)
  end
end

local function publish(stream, event_type, data)
  return redis.call("XADD", stream, "MAXLEN", "~", maxlen, "*",
    "type", event_type, "id", id, "data", data)
end

local function article_published(event_type, status, relation, canonical, sim, contained)
  local duplicate_of = relation and canonical or nil
  if dry_run then
    return {decision_json(status, relation, duplicate_of, sim, contained, nil), 0}
  end
  local event_id = publish(articles, event_type,
    article_event(event_type, status, relation, duplicate_of, sim, contained))
  local decision = decision_json(status, relation, duplicate_of, sim, contained, event_id)
  store(decision, status, canonical)
  index_member(true)
  return {decision, 0}
end

local function duplicate_event(relation, canonical, sim, contained)
  if dry_run then
    return {decision_json("duplicate", relation, canonical, sim, contained, nil), 0}
  end
  local data = cjson.encode({
    schema_version = 1, type = "article.duplicate", id = id, duplicate_of = canonical,
    similarity = sim, containment = or_null(contained), relation = relation,
    source = source, url = or_null(url ~= "" and url),
  })
  local event_id = publish(duplicates, "article.duplicate", data)
  local decision = decision_json("duplicate", relation, canonical, sim, contained, event_id)
  store(decision, "duplicate", canonical)
  index_member(false)
  return {decision, 0}
end

-- The cluster an indexed article belongs to: its canonical, which must still be in the window.
local function canonical_of(member)
  local canonical = redis.call("HGET", ns .. "art:" .. member, "canonical")
  if not canonical then return nil end
  if canonical ~= member and redis.call("EXISTS", ns .. "art:" .. canonical) == 0 then
    return nil
  end
  return canonical
end

-- 1. The same id again: a replay when nothing changed, a revision when a story changed.
local prior = redis.call("HMGET", art_key, "decision", "req", "chash", "status", "sig", "canonical")
if prior[1] then
  if prior[2] == req or prior[3] == chash then
    return {prior[1], 1}
  end
  if prior[4] ~= "duplicate" then
    local canonical = canonical_of(id) or id
    return article_published("article.updated", "updated", "revision", canonical,
      similarity(prior[5], sig), nil)
  end
  -- A former copy whose content changed is decided afresh below, like a new article.
end

-- 2. Exact: the same normalised body was published already.
local exact = redis.call("GET", hash_key)
if exact and exact ~= id then
  local canonical = canonical_of(exact)
  if canonical then return duplicate_event("exact", canonical, 1, 1) end
end

-- 3. The same normalised url under another id, with changed content: a revision of that story.
if url_key then
  local earlier = redis.call("GET", url_key)
  if earlier and earlier ~= id then
    local e = redis.call("HMGET", ns .. "art:" .. earlier, "status", "sig")
    local canonical = e[1] and e[1] ~= "duplicate" and canonical_of(earlier)
    if canonical then
      return article_published("article.updated", "updated", "revision", canonical,
        similarity(e[2], sig), nil)
    end
  end
end

-- 4. Near-duplicates: LSH candidates, each verified by its stored signature and resolved
-- to its cluster's canonical. A match between articles of quite different sizes is told
-- apart by the containment its similarity implies: with Jaccard J and shingle counts a and
-- b, the shared shingles number J(a+b)/(1+J).
if nbands > 0 then
  local best_canonical, best_sim, best_member, best_size = nil, -1, nil, nil
  -- Count the bands each candidate shares first, then verify the most promising: a true copy
  -- shares several (about 5 of 42 at the threshold), a stranger at most one or two, and a
  -- flood of low-entropy text could otherwise fill every bucket and make each decision verify
  -- thousands of signatures.
  local shared_bands, order = {}, {}
  local values = lsh_lookup()
  for back = 0, 2 do
    for b = 1, nbands do
      local value = values[back][b]
      if value then
        local ids = members(value)
        for j = 1, math.min(#ids, per_bucket) do
          local cand = ids[j]
          if cand ~= id then
            if not shared_bands[cand] then shared_bands[cand] = 0; order[#order + 1] = cand end
            shared_bands[cand] = shared_bands[cand] + 1
          end
        end
      end
    end
  end
  table.sort(order, function(a, b)
    if shared_bands[a] ~= shared_bands[b] then return shared_bands[a] > shared_bands[b] end
    return a < b
  end)
  for j = 1, math.min(#order, MAX_VERIFIED) do
    local cand = order[j]
    local c = redis.call("HMGET", ns .. "art:" .. cand, "sig", "size")
    local sim = similarity(c[1], sig, threshold)
    -- Ties go to the smaller id, so the answer does not depend on bucket order.
    if sim >= threshold and (sim > best_sim or (sim == best_sim and cand < best_member)) then
      local canonical = canonical_of(cand)
      if canonical then
        best_canonical, best_sim, best_member = canonical, sim, cand
        best_size = tonumber(c[2])
      end
    end
  end
  if best_canonical then
    -- An excerpt is one of the story, not of the copy that matched best: a second excerpt is
    -- close to the first, while it is the story it is cut from. A superset is one of the
    -- member matched: the copy of an update is a copy, not another update.
    local function contained(rel_sim, rel_size)
      if not rel_size or rel_size <= 0 or size <= 0 then return nil end
      return rel_sim * (size + rel_size) / (1 + rel_sim)
    end
    local story_sim, story_size = best_sim, best_size
    if best_member ~= best_canonical then
      local c = redis.call("HMGET", ns .. "art:" .. best_canonical, "sig", "size")
      story_sim, story_size = similarity(c[1], sig), tonumber(c[2])
    end
    for _, against in ipairs({{story_sim, story_size}, {best_sim, best_size}}) do
      local shared = contained(against[1], against[2])
      if shared and size <= (1 - MIN_DIFFERENCE) * against[2] and shared / size >= containment then
        return duplicate_event("excerpt", best_canonical, against[1],
          round3(math.min(1, shared / size)))
      end
    end
    local shared = contained(best_sim, best_size)
    if shared and size >= (1 + MIN_NEW_TEXT) * best_size and shared / best_size >= containment then
      return article_published("article.updated", "updated", "superset", best_canonical,
        best_sim, round3(math.min(1, shared / best_size)))
    end
    return duplicate_event("near_duplicate", best_canonical, best_sim, nil)
  end
end

-- 5. Containment: the anchors (sampled shingles) this article shares with each published
-- story estimate how much of one lies inside the other. Mostly inside an earlier, larger
-- story: an excerpt. Containing most of an earlier, smaller one plus substantial new text:
-- a superset, published as an update of that story.
if #anchors > 0 then
  local hits, order = {}, {}
  local values = anc_lookup()
  -- This article's anchors that can tell anything: not stock phrases.
  local informative = 0
  for i = 1, #anchors do
    local common, found = false, false
    for back = 0, 2 do
      local value = values[back][i]
      if value then
        found = true
        if count(value) > PER_ANCHOR then common = true end
      end
    end
    if not common then
      informative = informative + 1
    end
    if found and not common then
      local counted = {}
      for back = 0, 2 do
        local value = values[back][i]
        if value then
          for cand in string.gmatch(value, "%S+") do
            if cand ~= id and not counted[cand] then
              counted[cand] = true
              if not hits[cand] then hits[cand] = 0; order[#order + 1] = cand end
              hits[cand] = hits[cand] + 1
            end
          end
        end
      end
    end
  end
  table.sort(order, function(a, b)
    if hits[a] ~= hits[b] then return hits[a] > hits[b] end
    return a < b
  end)
  local best = nil
  for j = 1, math.min(#order, MAX_CONTAINERS) do
    local cand = order[j]
    local h = hits[cand]
    if h < MIN_ANCHORS then break end
    local c = redis.call("HMGET", ns .. "art:" .. cand, "status", "size", "nanc", "sig")
    local csize, cnanc = tonumber(c[2]), tonumber(c[3])
    if c[1] and c[1] ~= "duplicate" and csize and cnanc and cnanc > 0 then
      local inside = h / math.max(1, informative)  -- of this article, inside the candidate
      local covered = h / cnanc      -- of the candidate, inside this article
      local relation, score = nil, 0
      if informative >= MIN_ANCHORS and inside >= containment
          and size <= (1 - MIN_DIFFERENCE) * csize then
        relation, score = "excerpt", inside
      elseif cnanc >= MIN_ANCHORS and covered >= containment
          and size >= (1 + MIN_NEW_TEXT) * csize then
        relation, score = "superset", covered
      end
      if relation and (not best or score > best.score) then
        local canonical = canonical_of(cand)
        if canonical then
          best = {relation = relation, score = score, canonical = canonical,
                  sim = similarity(c[4], sig)}
        end
      end
    end
  end
  if best and best.relation == "excerpt" then
    return duplicate_event("excerpt", best.canonical, best.sim, round3(best.score))
  elseif best then
    return article_published("article.updated", "updated", "superset", best.canonical,
      best.sim, round3(best.score))
  end
end

-- 6. A new story.
return article_published("article.created", "unique", nil, id, nil, nil)
