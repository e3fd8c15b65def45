//! `IN (…)` lists of a few fixed lengths.
//!
//! A MySQL connection prepares each distinct statement once and keeps the last 100; an `IN`
//! list of every length from 1 to 1,000 would make 1,000 statements of one query, each
//! prepared anew and then closed to make room. The close has no reply, and the next request
//! written right after it waits for the server's delayed acknowledgement (some 40 ms on Linux:
//! the client's socket does not set `TCP_NODELAY`). Padding a list to the next power of two
//! (repeating its last id, which changes no answer) keeps a query to about ten statements.

/// `ids`, padded to the next power of two by repeating the last one.
pub(crate) fn padded(ids: &[i64]) -> Vec<i64> {
    let mut out = ids.to_vec();
    if let Some(&last) = ids.last() {
        out.resize(ids.len().next_power_of_two(), last);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_grow_to_the_next_power_of_two_with_their_last_id() {
        assert!(padded(&[]).is_empty());
        assert_eq!(padded(&[7]), vec![7]);
        assert_eq!(padded(&[1, 2, 3]), vec![1, 2, 3, 3]);
        assert_eq!(padded(&(1..=1000).collect::<Vec<_>>()).len(), 1024);
    }
}
