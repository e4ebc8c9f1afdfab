//! What a GraphQL document may cost, checked before async-graphql parses or validates it: a lexical
//! pass bounds its tokens and nesting (so neither the parser's recursion nor its time can be run up),
//! and a pass over the parsed document counts its selections, aliases and depth with every fragment
//! expanded, each fragment counted once and its total reused, so a document of fragments that
//! spread each other twice (whose expansion doubles per level) is measured in linear time and
//! refused before the validator walks it.

use std::collections::HashMap;

use async_graphql::Name;
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};

/// The limits of one document. Defaults fit the web app's largest query and the standard
/// introspection query many times over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CostLimits {
    /// Lexical tokens (names, punctuators, values).
    pub max_tokens: usize,
    /// Nesting of `{`, `(` and `[` in the text.
    pub max_nesting: usize,
    /// Field selections with every fragment expanded.
    pub max_selections: u64,
    /// Aliased fields with every fragment expanded.
    pub max_aliases: u64,
    /// Field depth with every fragment expanded.
    pub max_depth: u64,
}

impl Default for CostLimits {
    fn default() -> Self {
        Self {
            max_tokens: 15_000,
            max_nesting: 48,
            max_selections: 5_000,
            max_aliases: 64,
            max_depth: super::INTROSPECTION_MAX_DEPTH as u64,
        }
    }
}

/// Why a document is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CostError {
    /// Too many tokens.
    #[error("the query has more than {0} tokens")]
    Tokens(usize),
    /// Nested too deep in its text.
    #[error("the query nests more than {0} levels")]
    Nesting(usize),
    /// Too many selections once fragments are expanded.
    #[error("the query selects more than {0} fields once its fragments are expanded")]
    Selections(u64),
    /// Too many aliases once fragments are expanded.
    #[error("the query has more than {0} aliases once its fragments are expanded")]
    Aliases(u64),
    /// Too deep once fragments are expanded.
    #[error("the query is nested too deep: more than {0} levels once its fragments are expanded")]
    Depth(u64),
    /// A fragment spreads itself.
    #[error("fragment `{0}` spreads itself")]
    Cycle(String),
}

/// Counts tokens and nesting in `text` without parsing it.
pub fn check_text(text: &str, limits: &CostLimits) -> Result<(), CostError> {
    let bytes = text.as_bytes();
    let (mut tokens, mut nesting, mut index) = (0usize, 0usize, 0usize);
    while index < bytes.len() {
        let byte = bytes[index];
        match byte {
            b' ' | b'\t' | b'\n' | b'\r' | b',' | 0xEF | 0xBB | 0xBF => {
                index += 1;
                continue;
            }
            b'#' => {
                while index < bytes.len() && bytes[index] != b'\n' {
                    index += 1;
                }
                continue;
            }
            b'"' => {
                let block = bytes[index..].starts_with(b"\"\"\"");
                index += if block { 3 } else { 1 };
                while index < bytes.len() {
                    if block && bytes[index..].starts_with(b"\"\"\"") {
                        index += 3;
                        break;
                    }
                    if bytes[index] == b'\\' {
                        index += 2;
                        continue;
                    }
                    if !block && (bytes[index] == b'"' || bytes[index] == b'\n') {
                        index += 1;
                        break;
                    }
                    index += 1;
                }
            }
            b'{' | b'(' | b'[' => {
                nesting += 1;
                if nesting > limits.max_nesting {
                    return Err(CostError::Nesting(limits.max_nesting));
                }
                index += 1;
            }
            b'}' | b')' | b']' => {
                nesting = nesting.saturating_sub(1);
                index += 1;
            }
            b'.' if bytes[index..].starts_with(b"...") => index += 3,
            byte if byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-' => {
                while index < bytes.len()
                    && (bytes[index].is_ascii_alphanumeric()
                        || matches!(bytes[index], b'_' | b'.' | b'-' | b'+'))
                {
                    index += 1;
                }
            }
            _ => index += 1,
        }
        tokens += 1;
        if tokens > limits.max_tokens {
            return Err(CostError::Tokens(limits.max_tokens));
        }
    }
    Ok(())
}

/// A selection set's cost with fragments expanded.
#[derive(Debug, Clone, Copy, Default)]
struct Cost {
    selections: u64,
    aliases: u64,
    depth: u64,
}

impl Cost {
    fn add(self, other: Self) -> Self {
        Self {
            selections: self.selections.saturating_add(other.selections),
            aliases: self.aliases.saturating_add(other.aliases),
            depth: self.depth.max(other.depth),
        }
    }
}

struct Walker<'a> {
    document: &'a ExecutableDocument,
    fragments: HashMap<&'a str, Option<Cost>>,
}

impl<'a> Walker<'a> {
    fn selection_set(&mut self, set: &'a SelectionSet) -> Result<Cost, CostError> {
        let mut total = Cost::default();
        for selection in &set.items {
            let cost = match &selection.node {
                Selection::Field(field) => {
                    let children = self.selection_set(&field.node.selection_set.node)?;
                    Cost {
                        selections: children.selections.saturating_add(1),
                        aliases: children
                            .aliases
                            .saturating_add(u64::from(field.node.alias.is_some())),
                        depth: children.depth.saturating_add(1),
                    }
                }
                Selection::InlineFragment(fragment) => {
                    self.selection_set(&fragment.node.selection_set.node)?
                }
                Selection::FragmentSpread(spread) => {
                    self.fragment(&spread.node.fragment_name.node)?
                }
            };
            total = total.add(cost);
        }
        Ok(total)
    }

    fn fragment(&mut self, name: &'a Name) -> Result<Cost, CostError> {
        let key = name.as_str();
        match self.fragments.get(key) {
            Some(Some(cost)) => return Ok(*cost),
            Some(None) => return Err(CostError::Cycle(key.to_owned())),
            None => {}
        }
        // An unknown fragment costs nothing here; the validator reports it.
        let Some(fragment) = self.document.fragments.get(name) else {
            return Ok(Cost::default());
        };
        self.fragments.insert(key, None);
        let cost = self.selection_set(&fragment.node.selection_set.node)?;
        self.fragments.insert(key, Some(cost));
        Ok(cost)
    }
}

/// Measures every operation of `document` with its fragments expanded; each fragment is walked
/// once however often it is spread. Also walks fragments no operation uses, so a cycle among
/// them is refused here rather than by the validator.
pub fn check_document(document: &ExecutableDocument, limits: &CostLimits) -> Result<(), CostError> {
    let mut walker = Walker {
        document,
        fragments: HashMap::new(),
    };
    let mut total = Cost::default();
    for (_, operation) in document.operations.iter() {
        total = total.add(walker.selection_set(&operation.node.selection_set.node)?);
    }
    for name in document.fragments.keys() {
        walker.fragment(name)?;
    }
    if total.selections > limits.max_selections {
        return Err(CostError::Selections(limits.max_selections));
    }
    if total.aliases > limits.max_aliases {
        return Err(CostError::Aliases(limits.max_aliases));
    }
    if total.depth > limits.max_depth {
        return Err(CostError::Depth(limits.max_depth));
    }
    Ok(())
}
