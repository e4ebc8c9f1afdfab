//! `just migrate` (the `migration` binary) on good and bad input: each bad input stops with one line
//! naming the problem and a non-zero exit, and changes nothing.

use std::process::{Command, Output};

use sea_orm::ConnectionTrait as _;
use tests::{Backend, TestDb};

/// Runs the migration binary built beside this test (`target/<profile>/migration`).
fn migrate(database_url: &str, args: &[&str]) -> anyhow::Result<Output> {
    let exe = std::env::current_exe()?;
    let binary = exe
        .parent()
        .and_then(std::path::Path::parent)
        .map(|profile_dir| profile_dir.join("migration"))
        .filter(|path| path.exists())
        .ok_or_else(|| {
            anyhow::anyhow!("the migration binary is not built; run the suite with `just test`")
        })?;
    Ok(Command::new(binary)
        .env("DATABASE_URL", database_url)
        .args(args)
        .output()?)
}

fn stderr_line(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).trim().to_owned()
}

#[tokio::test]
async fn up_status_down_and_fresh_work_on_both_backends() -> anyhow::Result<()> {
    let n_migrations = migration::Migrator::migrations_len();
    for backend in [Backend::Postgres, Backend::Sqlite] {
        let test_db = TestDb::empty(backend).await?;
        let up = migrate(&test_db.url, &[])?;
        assert!(up.status.success(), "{backend:?}: {}", stderr_line(&up));
        let status = migrate(&test_db.url, &["status"])?;
        let text = String::from_utf8_lossy(&status.stdout);
        assert_eq!(
            text.matches("applied  ").count(),
            n_migrations,
            "{backend:?}: {text}"
        );
        let down = migrate(&test_db.url, &["down", "2"])?;
        assert!(down.status.success(), "{backend:?}: {}", stderr_line(&down));
        assert!(
            String::from_utf8_lossy(&down.stdout)
                .contains(&format!("{} applied, 2 pending", n_migrations - 2))
        );
        let fresh = migrate(&test_db.url, &["fresh"])?;
        assert!(
            fresh.status.success(),
            "{backend:?}: {}",
            stderr_line(&fresh)
        );
        assert!(
            String::from_utf8_lossy(&fresh.stdout)
                .contains(&format!("{n_migrations} applied, 0 pending"))
        );
        let reset = migrate(&test_db.url, &["reset"])?;
        assert!(
            reset.status.success(),
            "{backend:?}: {}",
            stderr_line(&reset)
        );
    }
    Ok(())
}

#[test]
fn a_wrong_url_scheme_is_refused_in_one_line() -> anyhow::Result<()> {
    let output = migrate("mysql://root@127.0.0.1:3306/test", &[])?;
    assert!(!output.status.success());
    let line = stderr_line(&output);
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(
        line.contains("unsupported database URL scheme `mysql`"),
        "{line}"
    );
    Ok(())
}

#[test]
fn an_unreachable_database_is_named_without_its_password() -> anyhow::Result<()> {
    // Nothing listens on port 9 of loopback here, so the connection is refused.
    let output = migrate("postgres://admin:hunter2@127.0.0.1:9/platform", &[])?;
    assert!(!output.status.success());
    let line = stderr_line(&output);
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(
        line.contains("cannot connect to the database at 127.0.0.1:9/platform"),
        "{line}"
    );
    assert!(!line.contains("hunter2"), "the password leaked: {line}");
    Ok(())
}

#[tokio::test]
async fn a_database_at_a_newer_version_is_refused_and_left_alone() -> anyhow::Result<()> {
    for backend in [Backend::Postgres, Backend::Sqlite] {
        let test_db = TestDb::migrated(backend).await?;
        test_db
            .execute(
                "INSERT INTO seaql_migrations (version, applied_at) VALUES ('m20990101_000001_from_the_future', 0)",
                vec![],
            )
            .await?;
        let before = tests::dump(&test_db.db).await?;
        for args in [&[][..], &["down"][..], &["fresh"][..]] {
            let output = migrate(&test_db.url, args)?;
            assert!(!output.status.success(), "{backend:?} {args:?}");
            let line = stderr_line(&output);
            assert_eq!(line.lines().count(), 1, "{line}");
            assert!(
                line.contains("newer schema version")
                    && line.contains("m20990101_000001_from_the_future"),
                "{line}"
            );
        }
        assert_eq!(
            before,
            tests::dump(&test_db.db).await?,
            "{backend:?}: the refusal changed the schema"
        );
        let status = migration::schema_status(&test_db.db).await?;
        assert!(!status.is_current());
        test_db.db.execute_unprepared("SELECT 1").await?;
    }
    Ok(())
}
