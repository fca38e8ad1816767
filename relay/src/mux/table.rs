//! The open connections of one Windows-side process, with their limits:
//! ids are never 0 and never reused while open, and at most a limit are
//! open at once.

use std::collections::HashMap;

use super::MAX_CONNS;

/// Connections by id.
#[derive(Debug)]
pub struct Table<T> {
    map: HashMap<u32, T>,
    limit: usize,
}

impl<T> Table<T> {
    /// A table of at most `limit` connections (and never more than
    /// [`MAX_CONNS`]).
    pub fn new(limit: usize) -> Self {
        Table {
            map: HashMap::new(),
            limit: limit.clamp(1, MAX_CONNS),
        }
    }

    /// Opens connection `c`, or says why not.
    pub fn insert(&mut self, c: u32, v: T) -> Result<(), String> {
        if c == 0 {
            return Err("connection id 0 is reserved".into());
        }
        if self.map.contains_key(&c) {
            return Err(format!("connection id {c} is in use"));
        }
        if self.is_full() {
            return Err(format!("too many connections (at most {})", self.limit));
        }
        self.map.insert(c, v);
        Ok(())
    }

    /// Whether no connection can be opened now.
    pub fn is_full(&self) -> bool {
        self.map.len() >= self.limit
    }

    /// Connection `c`, if open.
    pub fn get(&self, c: u32) -> Option<&T> {
        self.map.get(&c)
    }

    /// Closes connection `c`.
    pub fn remove(&mut self, c: u32) -> Option<T> {
        self.map.remove(&c)
    }

    /// Closes every connection.
    #[cfg_attr(not(unix), allow(dead_code))]
    pub fn drain(&mut self) -> Vec<T> {
        self.map.drain().map(|(_, v)| v).collect()
    }
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Table::new(MAX_CONNS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_the_limit_are_kept() {
        let mut t = Table::new(3);
        assert!(t.insert(0, ()).unwrap_err().contains("reserved"));
        t.insert(1, ()).unwrap();
        assert!(t.insert(1, ()).unwrap_err().contains("in use"));
        t.insert(2, ()).unwrap();
        t.insert(u32::MAX, ()).unwrap();
        assert!(t.is_full());
        assert!(t.insert(4, ()).unwrap_err().contains("at most 3"));
        assert!(t.remove(2).is_some());
        assert!(t.remove(2).is_none());
        t.insert(4, ()).unwrap();
        assert_eq!(t.drain().len(), 3);
        assert!(t.get(1).is_none());
        // No limit beyond the protocol's.
        let mut t = Table::new(usize::MAX);
        for c in 1..=MAX_CONNS as u32 {
            t.insert(c, ()).unwrap();
        }
        assert!(t.insert(MAX_CONNS as u32 + 1, ()).is_err());
        assert_eq!(Table::<()>::new(0).limit, 1);
    }
}
