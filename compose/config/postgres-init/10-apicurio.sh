#!/bin/sh
# Compose only: the registry's database and role (the native stack creates the same in
# compose/native/services.py). The password comes from the environment, never from this file.
set -eu
psql -v ON_ERROR_STOP=1 -U postgres -v pw="$APICURIO_DB_PASSWORD" <<'SQL'
CREATE ROLE apicurio LOGIN PASSWORD :'pw';
CREATE DATABASE apicurio OWNER apicurio;
SQL
