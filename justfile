# The platform's commands. `just --list` shows this menu; CI runs the same recipes.

set shell := ["bash", "-euo", "pipefail", "-c"]

# PostgreSQL that tests and benchmarks create their throwaway databases on.
export TEST_POSTGRES_URL := env_var_or_default("TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")

# List the recipes.
default:
    @just --list

# Run the server on DATABASE_URL, or on the embedded SQLite default (migrated on start) when unset.
run:
    cargo run -p server

# Migrate DATABASE_URL (or the embedded SQLite default): up | down [N] | status | fresh | reset | refresh.
migrate *args:
    cargo run -q -p migration -- {{args}}

# Run the whole test suite: unit and end-to-end tests on PostgreSQL and SQLite, the Node and
# headless-Chromium client checks against a live server, plus doc tests.
test: tools
    cargo build --workspace --bins --locked
    cargo nextest run --workspace --locked --no-fail-fast
    cargo test --workspace --doc

# Check formatting and lints as CI does.
lint:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets --locked -- -D warnings
    RUSTDOCFLAGS="-D missing_docs -D rustdoc::broken_intra_doc_links" cargo doc -p providers --no-deps --locked

# Regenerate entity/ from a freshly migrated PostgreSQL database with sea-orm-cli.
entities: tools
    cargo run -q -p tests --bin regenerate-entities

# The performance suite on a fresh PostgreSQL database (release builds, < 10 min): page read vs
# PostGraphile and the SQL limit, webhook intake, sync ingest vs COPY, migrations. Writes
# bench/results/latest.json and latest.md.
bench:
    bash bench/run.sh

# A reduced suite for development (10,000 entities, 3 s runs); writes bench/results/quick.{json,md}.
bench-quick:
    bash bench/run.sh --quick

# How the figures move with work (release builds, ~10 min): one 300,000-record sync at a flat
# rate with a neighbour's page beside it, 200 small + 4 big tenants at once on 4 workers, and the
# page and ingest at 100,000 and 1,000,000 entities. Writes bench/results/scale.{json,md}.
bench-scale:
    bash bench/scale.sh

# Fill 1,000,000 entities on PostgreSQL, apply the provenance migrations and print the seconds taken.
bench-migrate:
    cargo run -q -p tests --bin bench-migrate

# Install the tools the recipes use, if missing: sea-orm-cli (entity generation) and the Node
# packages of the client checks (`npm ci` when tests/clients/package-lock.json is newer).
[private]
tools:
    @[[ "$(sea-orm-cli --version 2>/dev/null)" == "sea-orm-cli 2.0.4" ]] || cargo install sea-orm-cli@2.0.4 --locked --no-default-features --features codegen,sqlx-postgres,runtime-tokio
    @[[ -f tests/clients/node_modules/.package-lock.json && ! tests/clients/package-lock.json -nt tests/clients/node_modules/.package-lock.json ]] || npm ci --prefix tests/clients --no-audit --no-fund --loglevel=error

# Re-export the GraphQL schema to apps/server/schema.graphql after changing the API.
schema:
    UPDATE_SCHEMA=1 cargo nextest run -p tests --test graphql the_exported_schema_matches_the_code
