//! The ordered list of resolvers: asked in turn, the first answer wins.

use super::Resolver;

/// Resolvers in the order they are asked (Twisted's `ResolverChain`).
#[derive(Default)]
pub struct Chain {
    resolvers: Vec<Box<dyn Resolver>>,
}

impl Chain {
    /// An empty chain: every query is answered REFUSED.
    pub fn new() -> Chain {
        Chain::default()
    }

    /// Appends a resolver: it is asked after every one already in the chain.
    pub fn with(mut self, resolver: impl Resolver + 'static) -> Chain {
        self.resolvers.push(Box::new(resolver));
        self
    }

    /// Appends a boxed resolver.
    pub fn push(&mut self, resolver: Box<dyn Resolver>) {
        self.resolvers.push(resolver);
    }

    /// The number of resolvers.
    pub fn len(&self) -> usize {
        self.resolvers.len()
    }

    /// Whether the chain has no resolver.
    pub fn is_empty(&self) -> bool {
        self.resolvers.is_empty()
    }

    /// The resolvers' names, in order (for the startup line).
    pub fn names(&self) -> Vec<&str> {
        self.resolvers.iter().map(|r| r.name()).collect()
    }

    /// Whether any resolver recurses, which sets RA in replies.
    pub fn recursion_available(&self) -> bool {
        self.resolvers.iter().any(|r| r.recursion_available())
    }

    pub(crate) fn get_mut(&mut self, index: usize) -> Option<&mut (dyn Resolver + 'static)> {
        self.resolvers.get_mut(index).map(|r| &mut **r)
    }
}
