//! The LRU of files, oldest first: a doubly linked list threaded through the holders.
//!
//! Invariants: `on_lru` holders are exactly those reachable from `lru_head` through `lru_next`
//! (and from `lru_tail` through `lru_prev`), `lru_len` of them.

use super::World;
use crate::sim::slab::NONE;

impl World {
    pub fn lru_add(&mut self, h: u32) {
        if self.holders[h as usize].on_lru {
            return;
        }
        let t = self.lru_tail;
        {
            let hd = &mut self.holders[h as usize];
            hd.on_lru = true;
            hd.lru_prev = t;
            hd.lru_next = NONE;
        }
        if t != NONE {
            self.holders[t as usize].lru_next = h;
        } else {
            self.lru_head = h;
        }
        self.lru_tail = h;
        self.lru_len += 1;
    }

    pub fn lru_del(&mut self, h: u32) {
        let (p, n, on) = {
            let hd = &self.holders[h as usize];
            (hd.lru_prev, hd.lru_next, hd.on_lru)
        };
        if !on {
            return;
        }
        if p != NONE {
            self.holders[p as usize].lru_next = n;
        } else {
            self.lru_head = n;
        }
        if n != NONE {
            self.holders[n as usize].lru_prev = p;
        } else {
            self.lru_tail = p;
        }
        let hd = &mut self.holders[h as usize];
        hd.on_lru = false;
        hd.lru_prev = NONE;
        hd.lru_next = NONE;
        self.lru_len -= 1;
    }

    /// Mark a file recently used.
    pub fn lru_touch(&mut self, h: u32) {
        if self.holders[h as usize].on_lru && self.lru_tail != h {
            self.lru_del(h);
            self.lru_add(h);
        }
    }
}
