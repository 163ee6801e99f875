-- The lines a sensor function writes through context.log during one evaluation, kept with its tick:
-- (time, level, message) per line, in the order written. Older ticks read as an empty list.

ALTER TABLE {db}.sensor_ticks
    ADD COLUMN IF NOT EXISTS logs Array(Tuple(time DateTime64(6, 'UTC'), level String, message String))
    CODEC(ZSTD(3));
