//! Seed 002 V005: the six catalog definitions, inserted idempotently (the seed's plain `INSERT`
//! failed when re-run; this one leaves existing slugs alone).

use sea_orm_migration::prelude::*;

use crate::catalog;

/// Inserts the default catalog; `down` removes the default slugs.
#[derive(Debug, DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        catalog::seed_integration_catalog(manager.get_connection()).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let delete = Query::delete()
            .from_table(Alias::new("integration_definitions"))
            .and_where(Expr::col(Alias::new("slug")).is_in(catalog::default_slugs()))
            .to_owned();
        manager.get_connection().execute(&delete).await?;
        Ok(())
    }
}
