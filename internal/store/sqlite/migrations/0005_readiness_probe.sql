-- The readiness probe writes (and deletes) a row here to learn whether a
-- commit that needs new pages succeeds (store.Store.Ready).
CREATE TABLE readiness_probe (
    id   INTEGER PRIMARY KEY,
    data BLOB NOT NULL
);
