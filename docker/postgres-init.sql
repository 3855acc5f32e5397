-- Runs once, when the postgres volume is first created: a database and role
-- for hydra-mcp's own data, beside Hydra's. CHANGE-ME: the password here and
-- in docker/secrets/database_url (the app's DATABASE_URL, a Docker secret).
CREATE ROLE hydra_mcp LOGIN PASSWORD 'CHANGE-ME-app-db-password';
CREATE DATABASE hydra_mcp OWNER hydra_mcp;

-- Ory Kratos's own database (profile "kratos" in docker-compose.yml; unused
-- otherwise). CHANGE-ME: the password here and in the kratos DSN.
CREATE ROLE kratos LOGIN PASSWORD 'CHANGE-ME-kratos-db-password';
CREATE DATABASE kratos OWNER kratos;
