-- Least-privilege CDC access to one demo database, run in it after its schema, as a table owner.
-- {role} and {dbname} are filled in as identifiers by demo/roles.py. The role itself (LOGIN
-- REPLICATION and its password) is created separately because roles are cluster-wide, and the
-- publication is created by demo/roles.py because its table list comes from demo/model.py.
GRANT CONNECT ON DATABASE {dbname} TO {role};
GRANT USAGE ON SCHEMA public TO {role};
-- The initial and incremental snapshots SELECT every captured table.
GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role};
-- Incremental snapshots: scv writes execute-snapshot signals, Debezium its window markers.
GRANT INSERT, UPDATE, DELETE ON public.scv_signal TO {role};
-- Heartbeats: Debezium upserts a row here so WAL advances on an idle database and the slot does not
-- hold back the server's WAL (the layout connectors/validate.py checks).
CREATE TABLE IF NOT EXISTS public.scv_heartbeat (
    source  text PRIMARY KEY,
    beat_at timestamptz NOT NULL
);
GRANT SELECT, INSERT, UPDATE ON public.scv_heartbeat TO {role};
