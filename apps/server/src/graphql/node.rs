//! Relay's object identification: a `Node` interface whose `nodeId` is a global id (opaque:
//! base64url of `Type:uuid`), and `node(id:)` to refetch any of them. The types keep their UUID
//! `id`, which the other queries and mutations take (Relay: `nodeInterfaceIdField: "nodeId"`).

use async_graphql::{ID, Interface};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;

use super::entities::Entity;
use super::errors::{Code, error};
use super::types::{IntegrationConnection, Workspace};

/// An object with a global id.
#[derive(Interface, Debug, Clone)]
#[graphql(field(
    name = "node_id",
    ty = "ID",
    desc = "Its global id (opaque), for `node(id:)`."
))]
pub enum Node {
    /// An entity.
    Entity(Entity),
    /// A workspace.
    Workspace(Workspace),
    /// A connected account (an integration connection).
    ConnectedAccount(IntegrationConnection),
}

/// The types with global ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// `Entity`.
    Entity,
    /// `Workspace`.
    Workspace,
    /// `ConnectedAccount`.
    ConnectedAccount,
}

impl NodeKind {
    fn name(self) -> &'static str {
        match self {
            Self::Entity => "Entity",
            Self::Workspace => "Workspace",
            Self::ConnectedAccount => "ConnectedAccount",
        }
    }
}

/// The global id of `kind` with `id`.
pub fn global_id(kind: NodeKind, id: Uuid) -> ID {
    ID(URL_SAFE_NO_PAD.encode(format!("{}:{id}", kind.name())))
}

/// The kind and UUID of a global id, or `BAD_USER_INPUT`.
pub fn parse_global_id(global: &str) -> async_graphql::Result<(NodeKind, Uuid)> {
    let bad = || {
        error(
            Code::BadUserInput,
            "`id` is not a global id this API issued",
        )
    };
    let bytes = URL_SAFE_NO_PAD.decode(global).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (name, id) = text.split_once(':').ok_or_else(bad)?;
    let kind = [
        NodeKind::Entity,
        NodeKind::Workspace,
        NodeKind::ConnectedAccount,
    ]
    .into_iter()
    .find(|kind| kind.name() == name)
    .ok_or_else(bad)?;
    Ok((kind, Uuid::parse_str(id).map_err(|_| bad())?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_ids_round_trip_and_foreign_text_is_refused() -> async_graphql::Result<()> {
        let id = Uuid::from_u128(7);
        for kind in [
            NodeKind::Entity,
            NodeKind::Workspace,
            NodeKind::ConnectedAccount,
        ] {
            assert_eq!(parse_global_id(&global_id(kind, id).0)?, (kind, id));
        }
        for bad in [
            "",
            "not base64!",
            "RW50aXR5",
            &URL_SAFE_NO_PAD.encode("User:x"),
        ] {
            assert!(parse_global_id(bad).is_err(), "{bad}");
        }
        Ok(())
    }
}
