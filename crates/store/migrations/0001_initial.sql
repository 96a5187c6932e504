-- Marks the file as Eddy's ("EDDY"); checked before migrating so a database
-- of another application is never changed.
PRAGMA application_id = 1162101849;

-- Connection profiles: one row per cluster the console can connect to.
CREATE TABLE profiles (
    id                INTEGER PRIMARY KEY,
    name              TEXT    NOT NULL UNIQUE,
    bootstrap_servers TEXT    NOT NULL,
    kind              TEXT    NOT NULL CHECK (kind IN ('local', 'remote')),
    read_only         INTEGER NOT NULL CHECK (read_only IN (0, 1)),
    created_ms        INTEGER NOT NULL,
    -- Security and client settings (SASL, TLS, ...) as a JSON object.
    options           TEXT    NOT NULL DEFAULT '{}' CHECK (
        CASE WHEN json_valid(options) THEN json_type(options) = 'object' ELSE 0 END
    )
);

-- Metric history is stored as series plus samples: the strings naming a
-- series are stored once, and a sample row is a few integers. The samples
-- tables are clustered on (series_id, time_ms), so a window query over one
-- series, and pruning by time, are range scans of the primary key.

-- One row per (cluster, consumer group, topic, partition).
CREATE TABLE lag_series (
    id             INTEGER PRIMARY KEY,
    cluster        TEXT    NOT NULL,
    consumer_group TEXT    NOT NULL,
    topic          TEXT    NOT NULL,
    partition      INTEGER NOT NULL,
    UNIQUE (cluster, consumer_group, topic, partition)
);

CREATE TABLE lag_samples (
    series_id  INTEGER NOT NULL REFERENCES lag_series (id) ON DELETE CASCADE,
    time_ms    INTEGER NOT NULL,
    committed  INTEGER NOT NULL,
    end_offset INTEGER NOT NULL,
    lag        INTEGER NOT NULL,
    PRIMARY KEY (series_id, time_ms)
) WITHOUT ROWID;

-- One row per (cluster, topic).
CREATE TABLE throughput_series (
    id      INTEGER PRIMARY KEY,
    cluster TEXT    NOT NULL,
    topic   TEXT    NOT NULL,
    UNIQUE (cluster, topic)
);

CREATE TABLE throughput_samples (
    series_id        INTEGER NOT NULL REFERENCES throughput_series (id) ON DELETE CASCADE,
    time_ms          INTEGER NOT NULL,
    messages_per_sec REAL    NOT NULL,
    bytes_per_sec    REAL    NOT NULL,
    PRIMARY KEY (series_id, time_ms)
) WITHOUT ROWID;
