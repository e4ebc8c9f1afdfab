//! The six providers and their stable names: the catalog slug (URLs, GraphQL, `/webhooks/{slug}`)
//! and the provider key (`google-mail` for Gmail).

use std::fmt;

/// One of the providers the platform integrates with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProviderKind {
    /// HubSpot CRM.
    HubSpot,
    /// Salesforce CRM.
    Salesforce,
    /// Stripe payments.
    Stripe,
    /// Zendesk Support.
    Zendesk,
    /// Intercom.
    Intercom,
    /// Gmail (Google).
    Gmail,
}

impl ProviderKind {
    /// Every provider, in catalog order.
    pub const ALL: [Self; 6] = [
        Self::HubSpot,
        Self::Salesforce,
        Self::Stripe,
        Self::Zendesk,
        Self::Intercom,
        Self::Gmail,
    ];

    /// The catalog slug: `hubspot`, `salesforce`, `stripe`, `zendesk`, `intercom`, `gmail`.
    pub fn slug(self) -> &'static str {
        match self {
            Self::HubSpot => "hubspot",
            Self::Salesforce => "salesforce",
            Self::Stripe => "stripe",
            Self::Zendesk => "zendesk",
            Self::Intercom => "intercom",
            Self::Gmail => "gmail",
        }
    }

    /// The provider key stored with the catalog definition (`google-mail` for Gmail).
    pub fn provider_key(self) -> &'static str {
        match self {
            Self::Gmail => "google-mail",
            other => other.slug(),
        }
    }

    /// The display name.
    pub fn display_name(self) -> &'static str {
        match self {
            Self::HubSpot => "HubSpot",
            Self::Salesforce => "Salesforce",
            Self::Stripe => "Stripe",
            Self::Zendesk => "Zendesk",
            Self::Intercom => "Intercom",
            Self::Gmail => "Gmail",
        }
    }

    /// The provider with this catalog slug or provider key.
    pub fn from_slug(slug: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.slug() == slug || kind.provider_key() == slug)
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.display_name())
    }
}

#[cfg(test)]
mod tests;
