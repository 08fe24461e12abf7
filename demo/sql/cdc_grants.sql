-- Least privilege for a demo source's Debezium user, run in that source's database after its schema.
-- {role} and {dbname} are filled in as identifiers by demo/roles.py. The role itself (LOGIN
-- REPLICATION and its password) is created separately because roles are cluster-wide.
GRANT CONNECT ON DATABASE {dbname} TO {role};
GRANT USAGE ON SCHEMA public TO {role};
-- The snapshot reads every table; the signal table is written by scv to trigger incremental snapshots.
GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role};
GRANT INSERT, UPDATE, DELETE ON public.scv_signal TO {role};
