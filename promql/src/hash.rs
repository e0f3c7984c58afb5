//! The hasher for label sets and their signatures. Evaluation hashes every series it groups,
//! matches or de-duplicates, so a fast non-cryptographic hash matters (Prometheus uses
//! xxHash for the same signatures); SipHash's resistance to crafted keys is not worth its
//! cost for label sets that come from one's own targets.

use std::hash::BuildHasher as _;

pub type BuildHasher = foldhash::fast::RandomState;
pub type HashMap<K, V> = std::collections::HashMap<K, V, BuildHasher>;
pub type HashSet<K> = std::collections::HashSet<K, BuildHasher>;

/// A hasher that gives the same value for the same input throughout the process: signatures
/// computed at different places must agree.
pub(crate) fn signature_hasher() -> impl std::hash::Hasher {
    foldhash::fast::FixedState::default().build_hasher()
}
