-- init_meta.lua: record the fingerprint parameters beside a new index, or return the
-- recorded ones so the caller can refuse to mix signatures made another way.
--
-- KEYS[1]  <prefix>:index:meta
-- ARGV     field, value, field, value, ...
--
-- Returns the recorded meta as a flat field/value list.

if redis.call("EXISTS", KEYS[1]) == 0 then
  redis.call("HSET", KEYS[1], unpack(ARGV))
end
return redis.call("HGETALL", KEYS[1])
