//! From a [`crate::ProviderKind`] to its provider's adapter (`crate::adapter::Adapter`): one
//! `match`, statically, so every future stays `Send` and nothing is boxed.

/// Runs `$body` with `$adapter` bound to the `Adapter` of `$kind`.
macro_rules! dispatch {
    ($kind:expr, $adapter:ident => $body:expr) => {
        match $kind {
            $crate::ProviderKind::HubSpot => {
                use $crate::adapter::Adapter as _;
                let $adapter = $crate::hubspot::HubSpot;
                $body
            }
            $crate::ProviderKind::Salesforce => {
                use $crate::adapter::Adapter as _;
                let $adapter = $crate::salesforce::Salesforce;
                $body
            }
            $crate::ProviderKind::Stripe => {
                use $crate::adapter::Adapter as _;
                let $adapter = $crate::stripe::Stripe;
                $body
            }
            $crate::ProviderKind::Zendesk => {
                use $crate::adapter::Adapter as _;
                let $adapter = $crate::zendesk::Zendesk;
                $body
            }
            $crate::ProviderKind::Intercom => {
                use $crate::adapter::Adapter as _;
                let $adapter = $crate::intercom::Intercom;
                $body
            }
            $crate::ProviderKind::Gmail => {
                use $crate::adapter::Adapter as _;
                let $adapter = $crate::gmail::Gmail;
                $body
            }
        }
    };
}

pub(crate) use dispatch;
